"""`pbgm loader run --config FILE`: keep a service's policies current from the command line.

The configuration is the one of `pbgm.loader` (see `examples/loader.yaml`); its
`bus` section opens the bus (`pbgm.bus.open_bus`, MQTT through the `pbgm.bus`
entry point or a `factory`) for `mqtt_topic` deliveries and change notices.
Two callbacks are built in for `deliver_to`: `log` (one log line per new copy)
and `stdout` (the copy as one JSON line on stdout).

Runs until SIGTERM or SIGINT, then stops cleanly (exit 0). With `--once` it
fetches every policy once, delivers, prints the status of each and exits:

====  ==================================================================
0     every policy is fresh (confirmed by the server just now)
7     the server could not be used: some policy is served from the cache
      or missing
4     some update was refused by validation (the previous copy is kept)
5     some policy was not found or may not be read
1     any other failure
====  ==================================================================
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pbgm.bus import Bus, open_bus
from pbgm.cli._app import Env, log_options, main, metrics_options, pass_env, start_logging, table
from pbgm.loader import LoadedPolicy, PolicyLoader, PolicyState, load_config
from pbgm.ops.endpoint import bus_counters, start_endpoint

log = logging.getLogger("pbgm.loader")

_NOT_READABLE = ("not_found", "permission_denied")


def _log_sink(loaded: LoadedPolicy) -> None:
    log.info(
        "delivered `%s` version %s (%s, %.0f s old)",
        loaded.name,
        loaded.version,
        loaded.source,
        loaded.age_s,
    )


def _stdout_sink(loaded: LoadedPolicy) -> None:
    click.echo(loaded.to_json().decode())


SINKS = {"log": _log_sink, "stdout": _stdout_sink}


def once_status(states: dict[str, PolicyState]) -> int:
    """The exit status of `--once`: 0 when all are fresh, else the worst state's."""
    kinds = {state.state for state in states.values()}
    if kinds <= {"fresh"}:
        return 0
    if kinds & {"unreachable", "pending"}:
        return 7
    if "rejected" in kinds:
        return 4
    failed = [state for state in states.values() if state.state == "failed"]
    return 5 if all(s.last_error in _NOT_READABLE for s in failed) else 1


@main.group()
def loader() -> None:
    """The policy loader: a service's policies, current and cached (`pbgm.loader`)."""


@loader.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Loader configuration (YAML or JSON).",
)
@click.option("--once", is_flag=True, help="Fetch once, print the status, exit (0: all fresh).")
@log_options
@metrics_options
@pass_env
def loader_run(
    env: Env,
    config_path: Path,
    once: bool,
    log_level: str | None,
    log_format: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Fetch, validate, cache and deliver the configured policies until stopped."""
    start_logging(env, log_level, log_format)
    config = load_config(config_path)
    with _bus(config.bus) as bus:
        policy_loader = PolicyLoader(config, sinks=SINKS, bus=bus)
        if once:
            states = policy_loader.refresh_now()
            _emit(env, states)
            click.get_current_context().exit(once_status(states))
        endpoint = start_endpoint(
            metrics_port,
            "loader",
            counters=lambda: {**loader_counters(policy_loader), **bus_counters(bus)},
            gauges=lambda: loader_gauges(policy_loader),
            ready=lambda: all(s.version is not None for s in policy_loader.status().values()),
            host=metrics_host,
        )
        try:
            _run_until_signalled(policy_loader)
        finally:
            if endpoint is not None:
                endpoint.close()


def loader_counters(policy_loader: PolicyLoader) -> dict[str, float]:
    """The counters of every policy, added up (`fetches`, `updates`, ...)."""
    total: dict[str, float] = {}
    for state in policy_loader.status().values():
        for name, value in state.counters.items():
            total[name] = total.get(name, 0) + value
    return total


def loader_gauges(policy_loader: PolicyLoader) -> dict[str, float]:
    """How many policies, how many fresh, the age of the oldest copy, the newest version."""
    states = list(policy_loader.status().values())
    ages = [s.age_s for s in states if s.age_s is not None]
    versions = [s.version for s in states if s.version is not None]
    return {
        "policies": len(states),
        "policies_fresh": sum(1 for s in states if s.fresh),
        "policy_age_seconds": max(ages, default=0.0),
        "policy_version": max(versions, default=0),
    }


@contextmanager
def _bus(settings: Any) -> Iterator[Bus | None]:
    if settings is None:
        yield None
        return
    bus = open_bus(settings)
    try:
        yield bus
    finally:
        bus.close()


def _run_until_signalled(policy_loader: PolicyLoader) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        policy_loader.start()
        log.info("loader running: %d policies", len(policy_loader.status()))
        stop.wait()
    finally:
        policy_loader.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for state in policy_loader.status().values():
        log.info("final: `%s` %s, version %s", state.name, state.state, state.version)


def _emit(env: Env, states: dict[str, PolicyState]) -> None:
    rows = [state.as_dict() for state in states.values()]
    columns = ["name", "state", "source", "version", "age_s", "last_error"]
    env.emit(rows, table(rows, columns))
