"""The middles under test of the bus benchmark, each the main of a process of its own.

A middle receives the generator's measurements from the broker and publishes what the
counter subscribes to; the paths differ only in it, so the differences between paths are
what each middle costs. `pbgm` and `adapters` are imported inside the processes, after
`_use_source`, so that `--source DIR` can put another source tree's versions under test;
this module must not import them at its top.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bus_load import (
    Endpoint,
    bus_settings,
    paho_client,
    seq_of_notification,
    seq_of_sample,
    stop,
)

PATHS = ("raw one hop", "raw relay", "MqttBus relay", "pbgm relay", "event service")
RELAY_OUT = "bench/out/relay/"
CONSUMER = "bench-consumer"
BUS_QUEUES = {"inbound_queue_size": 1_000_000, "queue_size": 1_000_000}  # a whole burst waits


def _use_source(source: str | None) -> None:
    if source:
        sys.path.insert(0, source)


def _raw_relay_main(
    port: Endpoint, qos: int, source: str | None, ready: Any, finished: Any
) -> None:
    relay = paho_client("relay", port)
    relay.on_message = lambda c, u, m: c.publish("bench/out/raw", m.payload, qos=qos)
    relay.subscribe("bench/in/+/ch0", qos=qos)
    time.sleep(0.3)
    ready.put(_thread_ids())
    finished.get()
    stop(relay)
    ready.put({})


def _bus_relay_main(
    port: Endpoint, qos: int, source: str | None, ready: Any, finished: Any
) -> None:
    """The adapter alone: `MqttBus` handler thread republishing each message."""
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus({**BUS_QUEUES, **bus_settings(port, "relay"), "client_id": "bench-relay"})
    bus.subscribe("bench/in/+/ch0", lambda m: bus.publish("bench/out/bus", m.payload, qos=qos))
    time.sleep(0.3)
    ready.put(_thread_ids())
    finished.get()
    counters = {"bus": bus.stats()}
    bus.close()
    ready.put(counters)


def bench_policy(qos: int = 1) -> dict[str, Any]:
    """A `service_trigger` policy that notifies on every measurement above 45 Hz."""
    from pbgm.testing import permit, policy_document

    notify = {"id": "publish_notification", "attributes": {"topic": "bench/out/events", "qos": qos}}
    return policy_document(
        "bench-notify-every-sample",
        policy_type="service_trigger",
        policy_group="bench",
        rules=[
            permit(
                "notify",
                target={"action": {"id": "publish"}, "resource": {"kind": "measurement"}},
                condition={"apply": "greater-than", "args": [{"attr": "resource.frequency"}, 45]},
                obligations=[notify],
            )
        ],
        content={
            "event": {
                "topics": ["bench/never"],
                "conditions": [{"variable": "x", "operator": "greater_than", "threshold": 1}],
            },
            "actions": [{"kind": "publish_notification", "topic": "bench/never"}],
            "cooldown_s": 0,
        },
    )


def event_service(bus: Any, qos: int) -> Any:
    """The event service of the benchmark on `bus`, not started."""
    from pbgm.events import EventService, EventServiceConfig
    from pbgm.testing import memory_store

    subscription = {
        "topic": "bench/in/+/ch0", "kind": "measurement", "device_level": 2, "qos": qos,
    }  # fmt: skip
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [subscription], "policy_group": "bench", "refresh_ms": 60_000}
    )
    return EventService(config, bus=bus, store=memory_store(policies=[bench_policy(qos)]))


def relay_policy() -> dict[str, Any]:
    """A `data_access` policy letting the consumer read the measurements, no obligation."""
    from pbgm.testing import permit, policy_document

    is_consumer = {"apply": "equal", "args": [{"attr": "subject.id"}, CONSUMER]}
    return policy_document(
        "bench-consumer-reads",
        policy_group="bench",
        rules=[permit("reads", target={"action": {"id": "subscribe"}}, condition=is_consumer)],
        content={"data": {"topics": ["bench/in/#"]}, "consumers": {"subjects": [CONSUMER]}},
    )


def _pbgm_relay_main(
    port: Endpoint, qos: int, source: str | None, ready: Any, finished: Any
) -> None:
    """`adapters.relay.Relay`: decode, decide (the PDP), forward on a Permit."""
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus
    from adapters.relay import Relay, Route
    from pbgm.testing import decision_point, memory_store

    settings = {**BUS_QUEUES, **bus_settings(port, "pbgm-relay"), "client_id": "bench-pbgm"}
    bus = open_mqtt_bus(settings)
    store = memory_store(policies=[relay_policy()])
    route = Route("bench/in/+/ch0", CONSUMER, RELAY_OUT + CONSUMER, qos=qos)
    relay = Relay(bus, decision_point(store, "bench"), [route], store=store, refresh_s=60)
    relay.start()
    time.sleep(0.3)
    ready.put(_thread_ids())
    finished.get()
    counters = {"relay": relay.stats(), "bus": bus.stats()}
    relay.close()
    bus.close()
    ready.put(counters)


def _events_main(port: Endpoint, qos: int, source: str | None, ready: Any, finished: Any) -> None:
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus({**BUS_QUEUES, **bus_settings(port, "events"), "client_id": "bench-events"})
    with event_service(bus, qos) as service:
        time.sleep(0.3)
        ready.put(_thread_ids())
        finished.get()
        counters = {"events": service.stats(), "bus": bus.stats()}
    bus.close()
    ready.put(counters)


def _thread_ids() -> dict[str, int]:
    import threading

    return {t.name: t.native_id for t in threading.enumerate() if t.native_id is not None}


MIDDLES: dict[str, tuple[Callable[..., None] | None, str, Callable[[bytes], int]]] = {
    "raw one hop": (None, "bench/in/+/ch0", seq_of_sample),
    "raw relay": (_raw_relay_main, "bench/out/raw", seq_of_sample),
    "MqttBus relay": (_bus_relay_main, "bench/out/bus", seq_of_sample),
    "pbgm relay": (_pbgm_relay_main, f"{RELAY_OUT}{CONSUMER}/#", seq_of_sample),
    "event service": (_events_main, "bench/out/events", seq_of_notification),
}
