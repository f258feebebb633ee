"""What broker-side enforcement costs the relay and the event service.

The same two paths (`pbgm relay`: `adapters.relay.Relay` deciding and forwarding each
measurement; `event service`), measured as in `benchmarks.bus` (generator, middle and
counter each in a process of its own; burst, drain and CPU per event), on two brokers
that differ in one thing only:

- `plain`: mosquitto at the benchmark's best settings, anonymous clients, no ACLs;
- `dynsec`: the same plus the dynamic-security plugin with the plan pbgm compiles
  (`adapters.broker`, applied by `BrokerSync` through `MosquittoDynsec`): every client
  authenticated with its derived password, default deny, each publish and each delivery
  checked against its client's ACLs; the relay's output readable only by its consumer.

Rounds are interleaved (plain, dynsec, plain, dynsec) so that the machine's load
falls on both alike; the ratios dynsec / plain are the means over rounds.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.bus_broker import own_broker
from benchmarks.bus_load import Endpoint
from benchmarks.bus_measure import measure_path
from benchmarks.bus_middles import CONSUMER, RELAY_OUT, relay_policy

PATHS = ("pbgm relay", "event service")
ROLES = {
    "generator": "bench-generator",
    "counter": CONSUMER,
    "events": "bench-events",
    "pbgm-relay": "pbgm-relay",
}
BEST_SETTINGS = "max_inflight_messages 0\npersistence false\n"


@contextmanager
def dynsec_broker() -> Iterator[Endpoint]:
    """A mosquitto with the plugin and pbgm's plan applied; the endpoint with each role's
    credentials."""
    from adapters.broker import (
        BrokerSync,
        MosquittoDynsec,
        NamedGrants,
        PlanSettings,
        broker_password,
    )
    from adapters.mqtt import open_mqtt_bus
    from pbgm.testing import memory_store
    from tests.adapters.broker.dynsec_broker import DynsecBroker

    secret = secrets.token_bytes(32)
    named = {
        ROLES["generator"]: NamedGrants(publish=("bench/in/#",)),
        ROLES["events"]: NamedGrants(subscribe=("bench/in/#",), publish=("bench/out/#",)),
        CONSUMER: NamedGrants(subscribe=("bench/out/events",)),
    }
    with tempfile.TemporaryDirectory() as scratch:
        broker = DynsecBroker(Path(scratch), extra=BEST_SETTINGS).start()
        try:
            admin = open_mqtt_bus(broker.admin_config())
            try:
                control = MosquittoDynsec(admin)
                settings = PlanSettings(
                    relay_principal=ROLES["pbgm-relay"], relay_prefix=RELAY_OUT, named=named,
                    password=lambda name: broker_password(secret, name),
                )  # fmt: skip
                store = memory_store(policies=[relay_policy()])
                applied = BrokerSync(store, control, settings).sync(force=True)
                assert applied is not None and applied.ok, applied
                credentials = {
                    role: (name, broker_password(secret, name)) for role, name in ROLES.items()
                }
                yield {"port": broker.port, "credentials": credentials}
            finally:
                admin.close()
        finally:
            broker.stop()


@contextmanager
def plain_broker() -> Iterator[Endpoint]:
    with own_broker() as port:
        yield port


def enforcement(rounds: int, steady: int, burst: int) -> dict[str, Any]:
    """Both paths at QoS 1 on both brokers, `rounds` interleaved rounds; and the ratios."""
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "dynsec": []}
    for _ in range(rounds):
        for kind, broker in (("plain", plain_broker), ("dynsec", dynsec_broker)):
            with broker() as endpoint:
                runs[kind].append(
                    {path: measure_path(path, 1, endpoint, None, steady, burst) for path in PATHS}
                )
    return {"runs": runs, "summary": summarise(runs)}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in PATHS:
        row: dict[str, Any] = {}
        for key, pick in (
            ("events_per_s", lambda r: r["burst"]["events_per_s"]),
            ("drain_events_per_s", lambda r: r["drain"]["events_per_s"]),
            ("events_per_cpu_s", lambda r: r["drain"]["events_per_cpu_s"]),
        ):
            plain = [pick(r[path]) for r in runs["plain"]]
            dynsec = [pick(r[path]) for r in runs["dynsec"]]
            ratio = round(statistics.fmean(dynsec) / statistics.fmean(plain), 3)
            row[key] = {"plain": plain, "dynsec": dynsec, "dynsec / plain": ratio}
        row["lost"] = {
            kind: sum(m["sent"] - m["received"] for r in runs[kind]
                      for k, m in r[path].items() if k != "counters")
            for kind in runs
        }  # fmt: skip
        out[path] = row
    return out


def print_enforcement(results: dict[str, Any]) -> None:
    print("broker-side enforcement (QoS 1): dynsec / plain")
    for path, row in results["summary"].items():
        cells = [
            f"{key} {row[key]['dynsec / plain']:.3f} "
            f"({_pair(row[key]['dynsec'])} vs {_pair(row[key]['plain'])})"
            for key in ("events_per_s", "drain_events_per_s", "events_per_cpu_s")
        ]
        print(f"  {path}: " + "; ".join(cells) + f"; lost {row['lost']}")


def _pair(values: list[float]) -> str:
    return " / ".join(f"{v:.0f}" for v in values)
