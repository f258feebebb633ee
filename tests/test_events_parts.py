"""The parts of the event service: samples and windows, transformations, triggers, config."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.auth.secrets import hash_secret
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.events import (
    Delivery,
    Downsampler,
    EventServiceConfig,
    PolicyCache,
    Sample,
    SignalNames,
    TopicHistory,
    TriggerState,
    aggregate,
    downsample,
    flatten,
    rename_topic,
    sample_time,
    slope,
    transform_handlers,
    trigger_of,
)
from pbgm.functions import parse_topic_filter
from pbgm.model import Obligation
from pbgm.policy.syntax import parse_policy
from pbgm.store.base import ServiceAccount
from pbgm.testing import make_request, memory_store, policy_document

ROOT = Path(__file__).resolve().parent.parent
TRIGGER = ROOT / "examples" / "policies" / "policies" / "inertia-on-rocof.json"


def history_of(points: list[tuple[float, float | None, float | None]]) -> TopicHistory:
    history = TopicHistory(max_age_s=60, max_samples=1000)
    for t, f, p in points:
        history.add(Sample(t, {}, f, p))
    return history


# --- samples and derived values -------------------------------------------------------------


@given(
    rate=st.floats(-5, 5, allow_nan=False),
    offset=st.floats(45, 55),
    n=st.integers(3, 60),
    step=st.floats(0.001, 0.1),
)
@settings(max_examples=150, deadline=None)
def test_the_slope_of_a_straight_line_is_its_rate(
    rate: float, offset: float, n: int, step: float
) -> None:
    t0 = 1.77e9  # epoch seconds: the history works relative to the newest sample
    history = history_of([(t0 + k * step, offset + rate * k * step, None) for k in range(n)])
    found = history.rocof(window_s=n * step)
    assert found == pytest.approx(rate, rel=1e-3, abs=1e-3)  # epoch floats: ~0.2 us steps


def test_rocof_needs_enough_samples_and_a_varying_time() -> None:
    assert history_of([(0.0, 50.0, None), (0.02, 50.1, None)]).rocof(1.0) is None
    assert history_of([(k * 0.02, 50.0, None) for k in range(10)]).rocof(1.0, 20) is None
    assert slope([(1.0, 2.0), (1.0, 3.0), (1.0, 4.0)]) is None
    assert slope([]) is None


def test_delta_p_sees_a_step_inside_its_window() -> None:
    points = [(k * 0.02, None, 0.0 if k < 20 else -0.5) for k in range(40)]
    history = history_of(points)
    assert history.delta_p(window_s=0.5) == pytest.approx(-0.5)
    assert history.delta_p(window_s=0.1) == pytest.approx(0.0)  # only after the step


def test_the_history_refuses_old_samples_and_forgets_beyond_its_age() -> None:
    history = TopicHistory(max_age_s=1.0, max_samples=100)
    assert history.add(Sample(10.0, {}))
    assert not history.add(Sample(10.0, {}))
    assert not history.add(Sample(9.0, {}))
    for k in range(1, 31):
        history.add(Sample(10.0 + k * 0.1, {}))
    assert len(history) == 11  # the last second, both ends included
    assert [round(s.t, 1) for s in history.since(12.8)] == [12.8, 12.9, 13.0]


@pytest.mark.parametrize(
    ("what", "payload", "names", "expected"),
    [
        ("named fields", {"frequency": 49.9, "active_power": 2.0}, (None, None), (49.9, 2.0)),
        (
            "VILLASnode signal names",
            {"edgePMU3 frequency": 50.1, "x active_power": 1.5},
            (None, None),
            (50.1, 1.5),
        ),
        ("configured names", {"f": 50.2, "p": 3.0}, ("f", "p"), (50.2, 3.0)),
        ("p_mw", {"p_mw": 4.0}, (None, None), (None, 4.0)),
        (
            "booleans and text are no numbers",
            {"frequency": True, "active_power": "1"},
            (None, None),
            (None, None),
        ),
        (
            "SOGNO v4 readings (W to MW)",
            {
                "readings": [
                    {"measurand": "frequency", "data": 50.0},
                    {"measurand": "frequency", "data": 50.2},
                    {"measurand": "activepower", "data": 2e6},
                    {"measurand": "activepower", "data": 1e6},
                    {"measurand": "voltmagnitude", "data": 230.0},
                ]
            },
            (None, None),
            (50.1, 3.0),
        ),
    ],
)
def test_frequency_and_power_are_found_in_the_payload(
    what: str, payload: dict[str, Any], names: tuple[Any, Any], expected: tuple[Any, Any]
) -> None:
    found = SignalNames(*names).extract(payload)
    for got, want in zip(found, expected, strict=True):
        assert got == (None if want is None else pytest.approx(want))


@pytest.mark.parametrize(
    ("what", "payload", "expected"),
    [
        ("json.edgeflex `created` in ms", {"created": 1_500}, 1.5),
        ("time_value `time`", {"time": "1970-01-01T00:00:02Z"}, 2.0),
        ("SOGNO `timestamp`", {"timestamp": "1970-01-01T00:00:03+00:00"}, 3.0),
        ("a naive time is not trusted", {"time": "1970-01-01T00:00:02"}, 99.0),
        ("no time at all", {"value": 1}, 99.0),
    ],
)
def test_the_sample_time_comes_from_the_payload_when_it_has_one(
    what: str, payload: dict[str, Any], expected: float
) -> None:
    assert sample_time(payload, arrival=99.0) == expected


def test_flatten_keeps_scalars_and_bags_and_names_nested_values_by_path() -> None:
    payload = {
        "a": 1,
        "tags": ["x", "y"],
        "voltage_measurements": {"node_1": 1.01, "deep": {"er": {"still": {"too": 1}}}},
        "readings": [{"data": 1}],
    }
    assert flatten(payload) == {
        "a": 1,
        "tags": ("x", "y"),
        "voltage_measurements.node_1": 1.01,
    }


# --- transformations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "topic", "source", "to", "expected"),
    [
        (
            "the literal levels are replaced",
            "/location_10003/30025/amp",
            "/location_10003/#",
            "/sww/feeder-3",
            "/sww/feeder-3/30025/amp",
        ),
        ("a `+` level is kept", "/a/b/c", "/a/+/c", "/z", "/z/b/c"),
        ("a topic the filter misses is kept", "/other/x", "/location_10003/#", "/sww", "/other/x"),
        ("no `from` renames every topic", "/a/b", None, "/z", "/z"),
        ("an exact filter renames that topic", "/a/b", "/a/b", "/z", "/z"),
    ],
)
def test_rename_topic(what: str, topic: str, source: str | None, to: str, expected: str) -> None:
    parsed = None if source is None else parse_topic_filter(source)
    assert rename_topic(topic, parsed, to) == expected


def test_aggregate_combines_numbers_and_keeps_the_last_of_anything_else() -> None:
    group = [{"time": "t1", "v": 1, "unit": "V"}, {"time": "t2", "v": 3, "unit": "kV"}]
    assert aggregate(group, "mean") == {"time": "t2", "v": 2.0, "unit": "kV"}
    assert aggregate(group, "min")["v"] == 1
    assert aggregate(group, "max")["v"] == 3
    assert aggregate(group, "last") == group[-1]


@given(
    times=st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=80).map(sorted),
    interval=st.floats(0.5, 50),
)
@settings(max_examples=150, deadline=None)
def test_downsampled_buckets_cover_every_sample_once_and_start_an_interval_apart(
    times: list[float], interval: float
) -> None:
    timed = [(t, {"at": t}) for t in times]
    starts = [fields["at"] for _, fields in downsample(timed, interval, "min")]
    ends = [fields["at"] for _, fields in downsample(timed, interval, "max")]
    assert (starts[0], ends[-1]) == (times[0], times[-1])
    assert all(end - start < interval for start, end in zip(starts, ends, strict=True))
    assert all(b - a >= interval for a, b in itertools.pairwise(starts))
    assert all(a <= b for a, b in zip(ends, starts[1:], strict=False))


@given(
    times=st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=80, unique=True).map(
        sorted
    ),
    interval=st.floats(0.5, 50),
)
@settings(max_examples=150, deadline=None)
def test_a_downsampled_stream_sends_exactly_the_messages_an_interval_after_the_last_sent(
    times: list[float], interval: float
) -> None:
    sampler = Downsampler()
    sent = [t for t in times if sampler.offer(t, {"at": t}, interval, "last") is not None]
    expected, last = [], -math.inf
    for t in times:
        if t >= last + interval:
            expected.append(t)
            last = t
    assert sent == expected


def test_the_transform_handlers_collect_what_the_obligations_ask() -> None:
    delivery = Delivery()
    handlers = transform_handlers(delivery)
    request = make_request()
    handlers["drop-fields"](Obligation("drop-fields", {"fields": ("secret",)}), request)
    handlers["round"](Obligation("round", {"decimals": 1}), request)
    handlers["downsample"](Obligation("downsample", {"min_interval_s": 10}), request)
    handlers["rename-topic"](Obligation("rename-topic", {"to": "/z"}), request)
    assert delivery.fields({"secret": 1, "v": 1.234, "t": 5}) == {"v": 1.2, "t": 5}
    assert delivery.topic("/a") == "/z"
    assert delivery.samples([(0.0, {"v": 1.0}), (5.0, {"v": 3.0}), (12.0, {"v": 5.0})]) == [
        {"t": 5.0, "v": 3.0},
        {"t": 12.0, "v": 5.0},
    ]


@pytest.mark.parametrize(
    ("what", "obligation"),
    [
        ("fields that are not names", Obligation("keep-fields", {"fields": (1, 2)})),
        ("decimals out of range", Obligation("round", {"decimals": 40})),
        ("a zero interval", Obligation("downsample", {"min_interval_s": 0})),
        ("an unknown method", Obligation("downsample", {"min_interval_s": 1, "method": "median"})),
        ("a `from` that is no filter", Obligation("rename-topic", {"to": "/z", "from": "/a/#/b"})),
    ],
)
def test_a_transform_obligation_with_bad_attributes_raises(
    what: str, obligation: Obligation
) -> None:
    with pytest.raises(InvalidInputError):
        transform_handlers(Delivery())[obligation.id](obligation, make_request())


# --- triggers -------------------------------------------------------------------------------


def _example_trigger(**content: Any) -> Any:
    import json

    document = json.loads(TRIGGER.read_text())
    document["content"].update(content)
    return trigger_of(parse_policy(document))


def _excursion(t0: float = 0.0, seconds: float = 3.0) -> TopicHistory:
    """50 fps: flat until 1 s, then -0.3 Hz/s and a 0.5 MW drop (5 % of 10 MW)."""
    history = TopicHistory(60, 10_000)
    for k in range(round(seconds * 50)):
        t = k * 0.02
        f = 50.0 if t < 1 else 50.0 - 0.3 * (t - 1)
        history.add(Sample(t0 + t, {}, f, 0.0 if t < 1 else -0.5))
    return history


def test_the_example_trigger_reads_its_policy() -> None:
    trigger = _example_trigger()
    assert trigger.policy_id == "inertia-on-rocof"
    assert trigger.service == "inertia-estimation"
    assert trigger.s_base_mw == 10.0
    assert [c.variable for c in trigger.conditions] == ["rocof", "delta_p"]
    assert [a.id for a in trigger.actions] == ["run_service", "return_data", "publish_notification"]
    assert trigger.watches("/edgeflex/pmu1/ch0")
    assert not trigger.watches("/edgeflex/pmu1/ch1")


def test_a_trigger_fires_once_after_its_hold_off() -> None:
    trigger, state = _example_trigger(), TriggerState()
    fired = [
        h.newest.t
        for h in _prefixes(_excursion())
        if state.check(trigger, "/t", h, None, now=0.0) and h.newest is not None
    ]
    assert len(fired) == 1
    assert 2.0 <= fired[0] <= 2.3  # armed soon after 1 s, hold-off 1 s


@pytest.mark.parametrize(
    ("what", "content", "now_second", "fires_again"),
    [
        ("within the cooldown", {"cooldown_s": 300}, 100.0, False),
        ("after the cooldown", {"cooldown_s": 300}, 400.0, True),
        ("at the hourly limit", {"cooldown_s": 0, "max_runs_per_hour": 1}, 100.0, False),
        ("below the hourly limit", {"cooldown_s": 0, "max_runs_per_hour": 2}, 100.0, True),
    ],
)
def test_cooldown_and_hourly_limit(
    what: str, content: dict[str, Any], now_second: float, fires_again: bool
) -> None:
    trigger, state = _example_trigger(**content), TriggerState()
    first = [state.check(trigger, "/t", h, None, 0.0) for h in _prefixes(_excursion())]
    second = [state.check(trigger, "/t", h, None, now_second) for h in _prefixes(_excursion(t0=50))]
    assert first.count(True) == 1
    assert second.count(True) == (1 if fires_again else 0)


def _prefixes(full: TopicHistory) -> Iterator[TopicHistory]:
    """One history growing sample by sample: as a trigger sees it."""
    history = TopicHistory(60, 10_000)
    for sample in full.since(-1e9):
        history.add(sample)
        yield history


def test_a_disabled_trigger_never_fires() -> None:
    trigger, state = _example_trigger(enabled=False), TriggerState()
    assert not any(state.check(trigger, "/t", h, None, 0.0) for h in _prefixes(_excursion()))


def test_a_percentage_condition_without_a_base_power_does_not_hold() -> None:
    trigger = dataclasses.replace(_example_trigger(), s_base_mw=None)
    state = TriggerState()
    assert not any(state.check(trigger, "/t", h, None, 0.0) for h in _prefixes(_excursion()))
    state = TriggerState()
    assert any(state.check(trigger, "/t", h, 10.0, 0.0) for h in _prefixes(_excursion()))


# --- configuration --------------------------------------------------------------------------

MINIMAL = {"subscriptions": [{"topic": "/a/#", "kind": "measurement"}], "policies": ["p.json"]}


def test_the_example_configuration_loads() -> None:
    config = EventServiceConfig.load(ROOT / "examples" / "events.yaml")
    assert [s.kind for s in config.subscriptions] == [
        "measurement",
        "measurement",
        "data_request",
        "grid_state",
    ]
    assert config.policies == (ROOT / "examples" / "policies",)
    assert config.jwt is not None and config.jwt.keys_dir == ROOT / "examples" / "keys"
    assert config.services["inertia-estimation"]["method"] == "least_squares"


def test_defaults_of_a_minimal_configuration() -> None:
    config = EventServiceConfig.from_mapping(MINIMAL, base_dir=Path("/srv"))
    [subscription] = config.subscriptions
    assert (subscription.codec, subscription.policy_group, subscription.qos) == (
        "json.edgeflex",
        "grid-services",
        1,
    )
    assert config.policies == (Path("/srv/p.json"),)
    assert config.reply_topic_prefix == "/pbgm/replies/"


@pytest.mark.parametrize(
    ("what", "change", "path"),
    [
        ("an unknown key", {"subscription": []}, "$.subscription"),
        ("no subscriptions", {"subscriptions": []}, "$.subscriptions"),
        (
            "an unknown kind",
            {"subscriptions": [{"topic": "/a", "kind": "alarm"}]},
            "$.subscriptions[0].kind",
        ),
        (
            "a bad topic filter",
            {"subscriptions": [{"topic": "/a/#/b", "kind": "grid_state"}]},
            "$.subscriptions[0].topic",
        ),
        (
            "a typo in a subscription",
            {"subscriptions": [{"topic": "/a", "kind": "grid_state", "codex": "json"}]},
            "$.subscriptions[0].codex",
        ),
        (
            "a bad QoS",
            {"subscriptions": [{"topic": "/a", "kind": "grid_state", "qos": 3}]},
            "$.subscriptions[0].qos",
        ),
        ("a negative window", {"rocof_window_ms": -1}, "$.rocof_window_ms"),
        ("a boolean for a number", {"history_s": True}, "$.history_s"),
        ("both store and policies", {"store": "sqlite:///x.db"}, "$.policies"),
        ("jwt without a key source", {"jwt": {"issuer": "i", "audience": "a"}}, "$.jwt"),
        (
            "jwt with two key sources",
            {"jwt": {"issuer": "i", "audience": "a", "keys_dir": "k", "jwks_file": "j"}},
            "$.jwt",
        ),
        ("services that are not mappings", {"services": {"x": 1}}, "$.services.x"),
    ],
)
def test_a_bad_configuration_names_the_setting(
    what: str, change: dict[str, Any], path: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        EventServiceConfig.from_mapping({**MINIMAL, **change})
    assert raised.value.message.startswith(f"`{path}`")


# --- the policy cache -----------------------------------------------------------------------


class FailingStore:
    """A store whose every read fails after `fail` is set."""

    def __init__(self, store: Any) -> None:
        self.store, self.fail = store, False

    def __getattr__(self, name: str) -> Any:
        if self.fail:
            raise OSError("database gone")
        return getattr(self.store, name)


def test_the_cache_keeps_its_policies_and_denies_accounts_while_the_store_fails() -> None:
    doc = policy_document("p", rules=[{"id": "r", "effect": "Permit"}])
    memory = memory_store(policies=[doc])
    memory.add_service_account(ServiceAccount("svc-a", hash_secret("s")), actor="test")
    store = FailingStore(memory)
    ticks = iter(range(1000))
    cache = PolicyCache(store, refresh_s=0.5, monotonic=lambda: float(next(ticks)))
    assert cache.decider("test").decide(make_request()).allowed
    store.fail = True
    cache.refresh()
    assert cache.decider("test").decide(make_request()).allowed  # the last good set
    assert cache.enabled("svc-a") is False  # fail closed
    assert cache.groups_of("svc-a") == ()
    store.fail = False
    assert cache.enabled("svc-a") is True  # the failure was not remembered
    memory.set_service_account_enabled("svc-a", False, actor="test")
    assert cache.enabled("svc-a") is True  # remembered until the revision moves
    cache.refresh()
    assert cache.enabled("svc-a") is False


def test_the_cache_needs_a_store_or_a_decision_point() -> None:
    with pytest.raises(ConfigurationError):
        PolicyCache(None)
