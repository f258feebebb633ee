"""`pbgm-service`: run one control service from its config file until SIGTERM.

    pbgm-service voltage   --config voltage.yaml
    pbgm-service frequency --config frequency.yaml
    pbgm-service pmu       --config pmu.yaml
    pbgm-service relay     --config relay.yaml
    pbgm-service kibernet  --config kibernet.yaml

(also `python -m adapters.cli ...`). Inertia estimation has no command here: it is not a
standing loop but a grid service the event service starts per RoCoF event
(`adapters.services.inertia`, run inside `pbgm events run`).

The config format is in `adapters.services._runner` and each service's module. Exit
statuses are pbgm's (`pbgm.cli.exit_status`): 0 after a clean stop on SIGTERM/SIGINT,
9 for a configuration error, 1 for anything unexpected.
Errors are printed as `error: <code>: <message>`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from pbgm.errors import PbgmError

SERVICES = {
    "voltage": ("adapters.services.voltage", "Voltage control on the edgeFLEX topics."),
    "frequency": ("adapters.services.frequency", "VPP fast frequency response or AGC."),
    "pmu": ("adapters.services.pmu", "C37.118.2 frames from UDP onto the bus."),
    "relay": ("adapters.services.relay", "The bus relay: data between topics on a Permit."),
    "kibernet": ("adapters.kibernet._service", "Poll a KIBERNet-like REST API under policy."),
}


def _run(module_name: str, config: Path, metrics: tuple[int, str] | None = None) -> int:
    from adapters.services._runner import run_service

    module = importlib.import_module(module_name)
    factory = getattr(module, "make_service", None)
    if factory is None:
        raise click.UsageError(f"`{module_name}` cannot be run as a service")
    return run_service(factory, config, metrics=metrics)


def _command(name: str, module_name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.option(
        "--config",
        "config",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The service config file (JSON or YAML).",
    )
    @click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        help="Serve /metrics, /healthz and /readyz on this port (default: none).",
    )
    @click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address of the metrics port (0.0.0.0 for every interface).",
    )
    def command(config: Path, metrics_port: int | None, metrics_host: str) -> None:
        metrics = (metrics_port, metrics_host) if metrics_port else None
        try:
            status = _run(module_name, config, metrics)
        except PbgmError as error:
            from pbgm.cli import exit_status, report

            report(error, as_json=False)
            sys.exit(exit_status(error))
        sys.exit(status)

    return command


@click.group(name="pbgm-service")
def main() -> None:
    """Run a pbgm service: voltage, frequency, pmu or relay."""


for _name, (_module, _help) in SERVICES.items():
    main.add_command(_command(_name, _module, _help))


if __name__ == "__main__":
    main(prog_name="pbgm-service")
