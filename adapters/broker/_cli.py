"""`pbgm-broker`: keep the broker's access control equal to the repository's policies.

    pbgm-broker sync --config broker.yaml           # until SIGTERM; prints its counters
    pbgm-broker sync --config broker.yaml --once    # one full apply, then exit
    pbgm-broker plan --config broker.yaml           # the plan as JSON (no passwords)
    pbgm-broker password svc-kibernet --config broker.yaml

(also `python -m adapters.broker ...`). The repository is the configuration's `store`
or `--db URL`. Exit statuses are pbgm's (`pbgm.cli.exit_status`): 0 on success, 9 for a
configuration error, and the error's status when the broker cannot be used.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from adapters.broker._config import BrokerConfig
from adapters.broker._credentials import broker_password, read_secret
from adapters.broker._mosquitto import MosquittoDynsec
from adapters.broker._plan import AccessPlan, NamedGrants
from adapters.broker._sync import BrokerSync, PlanSettings
from pbgm.errors import ConfigurationError, PbgmError
from pbgm.store.base import Store

CONFIG = click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The broker sync configuration (YAML or JSON).",
)
DB = click.option("--db", "db", default=None, help="Repository URL (else the config's `store`).")


def _settings(config: BrokerConfig) -> PlanSettings:
    secret = read_secret(config.password_secret_file)
    named: dict[str, NamedGrants] = dict(config.named)
    return PlanSettings(
        relay_principal=config.relay_principal,
        relay_prefix=config.relay_prefix,
        named=named,
        password=lambda principal: broker_password(secret, principal),
    )


def _store(config: BrokerConfig, db: str | None) -> Store:
    from pbgm.store.factory import open_store

    url = db or config.store
    if not url:
        raise ConfigurationError("name the repository: `store` in the config or `--db URL`")
    return open_store(url)


def plan_json(plan: AccessPlan) -> dict[str, Any]:
    """The plan as JSON for review: clients, enabled, grants; never a password."""
    return {
        "relay_prefix": plan.relay_prefix,
        "clients": [
            {
                "username": c.username,
                "enabled": c.enabled,
                "grants": [
                    {"kind": g.kind, "topic": g.topic, "allow": g.allow, "priority": g.priority}
                    for g in c.grants
                ],
            }
            for c in plan.clients
        ],
    }


@contextmanager
def _admin_bus(config: BrokerConfig) -> Iterator[Any]:
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus(config.bus)
    try:
        yield bus
    finally:
        bus.close()


def _guarded(action: Callable[[], None]) -> None:
    try:
        action()
    except PbgmError as error:
        from pbgm.cli import exit_status, report

        report(error, as_json=False)
        sys.exit(exit_status(error))


@click.group(name="pbgm-broker")
def main() -> None:
    """Broker-side enforcement of pbgm's data_access policies (Mosquitto dynamic security)."""


@main.command("sync")
@CONFIG
@DB
@click.option("--once", is_flag=True, help="Apply the plan once and exit.")
def sync_command(config_file: Path, db: str | None, once: bool) -> None:
    """Apply the plan, then keep the broker in sync until SIGTERM or SIGINT."""

    def run() -> None:
        config = BrokerConfig.load(config_file)
        store = _store(config, db)
        with _admin_bus(config) as bus:
            control = MosquittoDynsec(bus)
            sync = BrokerSync(
                store, control, _settings(config), refresh_s=config.refresh_s,
                recheck_s=config.recheck_s, bus=bus, notices_topic=config.notices_topic,
            )  # fmt: skip
            if once:
                applied = sync.sync(force=True)
                done = {"commands": 0, "conflicts": []} if applied is None else {
                    "commands": applied.commands, "conflicts": applied.conflicts,
                }  # fmt: skip
                click.echo(json.dumps(done))
                return
            stop = threading.Event()
            previous = {s: signal.signal(s, lambda *_: stop.set()) for s in
                        (signal.SIGTERM, signal.SIGINT)}  # fmt: skip
            try:
                sync.start()
                click.echo("broker sync running", err=True)
                stop.wait()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                sync.stop()
                control.close()
            click.echo(json.dumps(sync.stats(), sort_keys=True))

    _guarded(run)


@main.command("plan")
@CONFIG
@DB
def plan_command(config_file: Path, db: str | None) -> None:
    """Print what the broker would enforce now, as JSON (no passwords)."""

    def run() -> None:
        from adapters.broker._directory import read_directory
        from pbgm.model import utc_now

        config = BrokerConfig.load(config_file)
        store = _store(config, db)
        now = utc_now()
        sync = BrokerSync(store, _NoBroker(), _settings(config))
        plan = sync.plan_of(read_directory(store, now).directory, now)
        click.echo(json.dumps(plan_json(plan), indent=2))

    _guarded(run)


@main.command("password")
@click.argument("principal")
@CONFIG
def password_command(principal: str, config_file: Path) -> None:
    """Print PRINCIPAL's broker password (give it to the principal, once, privately)."""

    def run() -> None:
        config = BrokerConfig.load(config_file)
        click.echo(broker_password(read_secret(config.password_secret_file), principal))

    _guarded(run)


class _NoBroker:
    def apply(self, plan: AccessPlan) -> Any:
        raise ConfigurationError("no broker")

    def close(self) -> None:
        pass


if __name__ == "__main__":
    main(prog_name="pbgm-broker")
