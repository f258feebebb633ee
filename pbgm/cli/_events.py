"""`pbgm events run --config FILE`: the event service, until SIGTERM or SIGINT.

The configuration (`examples/events.yaml`) names the bus, the subscriptions and the
policies: `store:` (a repository URL), or `policies:` (files loaded in process), or
neither, and then the global `--db` repository is used. On SIGTERM or SIGINT the
service unsubscribes, waits for the grid services it started, closes the bus and
prints its counters and its bus's (prefixed `bus_`: received, dropped, unmatched...),
as JSON with `--json`; the exit status is then 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from pbgm.cli._app import Env, log_options, main, metrics_options, pass_env, start_logging
from pbgm.events import EventServiceConfig, open_event_service
from pbgm.ops.endpoint import bus_counters, bus_ready, numbers, start_endpoint

log = logging.getLogger(__name__)


@main.group()
def events() -> None:
    """The event service: bus events in, policy decisions, obligations out."""


@events.command("run")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Event service configuration (YAML or JSON).",
)
@log_options
@metrics_options
@pass_env
def events_run(
    env: Env,
    config_file: Path,
    log_level: str | None,
    log_format: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the event service until SIGTERM or SIGINT."""
    start_logging(env, log_level, log_format)
    config = EventServiceConfig.load(config_file)
    store = env.store if not (config.store or config.policies) else None
    service = open_event_service(config, store=store)
    stop = threading.Event()
    previous = {s: signal.signal(s, _setter(stop)) for s in (signal.SIGTERM, signal.SIGINT)}
    endpoint = None
    try:
        service.start()
        endpoint = start_endpoint(
            metrics_port,
            config.service_id,
            counters=lambda: {**numbers(service.stats()), **bus_counters(service.bus)},
            gauges=lambda: numbers({"policy_revision": service.policies.revision}),
            ready=lambda: bus_ready(service.bus),
            host=metrics_host,
        )
        log.info("event service `%s` running", config.service_id)
        click.echo(f"event service `{config.service_id}` running", err=True)
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if endpoint is not None:
            endpoint.close()
        service.close()
        bus_stats = getattr(service.bus, "stats", None)
        at_exit = bus_stats() if callable(bus_stats) else {}
        service.bus.close()
    stats = {**service.stats(), **{f"bus_{k}": v for k, v in at_exit.items()}}
    env.emit(stats, [f"{name}: {value}" for name, value in sorted(stats.items())])


def _setter(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received, stopping", signal.Signals(signum).name)
        stop.set()

    return handle
