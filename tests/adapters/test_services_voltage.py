"""The voltage-control service on an in-process bus: limits from policies, sources, inputs.

The plant is the full AC power flow of `controls.testing`; the service only knows the
linear model, as in the field. Policies are the example bundle's (`limits-bess-01`,
`limits-pv-inv-01`) plus a feeder band policy written here.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path

import pytest

from adapters.services._inputs import Timing
from adapters.services.voltage import (
    Asset,
    VoltageService,
    source_from_config,
    voltage_limits,
)
from controls.testing import lv_feeder, power_flow
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.policy.documents import load_file

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies" / "policies"
FEEDER = lv_feeder()
LINES = [[ln.parent, ln.child, ln.r_ohm, ln.x_ohm] for ln in FEEDER.lines]
ASSETS = {
    "bess-01": {"node": 4, "kind": "ess"},
    "pv-inv-01": {"node": 6, "kind": "dg", "curtailable": True},
}
PV_KW = {5: 40.0, 6: 40.0, 8: 40.0}
SLACK_PU = 1.02
VOLTAGE_TOPIC = "/voltage_control/measuremnts/voltage"
PV_TOPIC = "/voltage_control/measuremnts/pv"


def band_policy(v_max: float = 1.08, version: int = 1, **voltage: float) -> dict:
    return {
        "id": "limits-feeder-3",
        "asset_id": "feeder-3",
        "version_note": version,
        "content": {
            "asset_kind": "feeder",
            "voltage": {
                "v_nominal_v": 400,
                "v_min_pu": 0.9,
                "v_max_pu": 1.1,
                "v_target_max_pu": v_max,
                **voltage,
            },
        },
    }


def example(name: str) -> dict:
    return load_file(POLICIES / name)


def service_config(active: str = "databus", **changes) -> dict:
    document = copy.deepcopy(example("voltage-control-config.yaml"))
    content = document["content"]
    content["data_sources"]["other"] = {
        "kind": "mqtt",
        "format": "json.edgeflex",
        "topics": {
            "voltage_measurements": "/feeder-4/voltage",
            "pv_input_measurements": "/feeder-4/pv",
        },
    }
    content["data_sources"]["db"] = {"kind": "database", "format": "json.edgeflex", "query": "v"}
    content["data_sources"]["bare-rest"] = {
        "kind": "rest",
        "format": "json",
        "url": "https://x.example",
    }
    content["active_source"] = active
    content.update(changes)
    return document


@pytest.fixture
def bus():
    bus = MemoryBus()
    yield bus
    bus.close()


def make_service(bus, **config) -> VoltageService:
    section = {"feeder": {"v_nominal_v": 400, "lines": LINES}, "assets": ASSETS}
    section.update(band_from="feeder-3", **config)
    return VoltageService(bus, section)


@pytest.fixture
def service(bus):
    service = make_service(bus)
    service.apply_limits(example("limits-bess-01.json"))
    service.apply_limits(example("limits-pv-inv-01.json"))
    service.apply_limits(band_policy())
    service.start()
    yield service
    service.close()


class Outputs:
    """Everything the service publishes, decoded, by topic."""

    def __init__(self, bus) -> None:
        self.by_topic: dict[str, list[dict]] = {}
        bus.subscribe("/voltage_control/control/#", self.take)
        bus.subscribe("/voltage_control/status", self.take)

    def take(self, message) -> None:
        self.by_topic.setdefault(message.topic, []).append(json.loads(message.payload))

    def last(self, topic: str) -> dict:
        return self.by_topic[topic][-1]


def measure(bus, outputs: Outputs | None, *, voltage_topic=VOLTAGE_TOPIC, pv_topic=PV_TOPIC):
    """The plant's voltages under the last published set-points, published as inputs."""
    p, q = dict(PV_KW), {}
    if outputs is not None:
        control = "/voltage_control/control/"
        if control + "active_power" in outputs.by_topic:
            for key, value in outputs.last(control + "active_power")["active_power"].items():
                node = int(key[5:])
                p[node] = min(value, PV_KW[node])
        if control + "active_power_ESS" in outputs.by_topic:
            for key, value in outputs.last(control + "active_power_ESS")[
                "active_power_ESS"
            ].items():
                p[int(key[5:])] = p.get(int(key[5:]), 0.0) + value
        if control + "reactive_power" in outputs.by_topic:
            q = {
                int(k[5:]): v
                for k, v in outputs.last(control + "reactive_power")["reactive_power"].items()
            }
    voltages = power_flow(FEEDER, p, q, v_slack_pu=SLACK_PU)
    created = now_ms()
    body = {"voltage_measurements": {f"node_{n}": v for n, v in voltages.items()}}
    bus.publish(voltage_topic, json.dumps({**body, "created": created}).encode())
    pv = {"pv_input_measurements": {"node_6": PV_KW[6]}, "created": created}
    bus.publish(pv_topic, json.dumps(pv).encode())
    return voltages


_last_ms = [0]


def now_ms() -> int:
    """This clock in ms, strictly increasing between calls (samples must be newer)."""
    _last_ms[0] = max(_last_ms[0] + 1, round(time.time() * 1000))
    return _last_ms[0]


def run_loop(bus, service, outputs, steps: int) -> dict[int, float]:
    for _ in range(steps):
        measure(bus, outputs)
        assert service.step()
    return measure(bus, outputs)


# --- policies -> limits ----------------------------------------------------------------

BESS = example("limits-bess-01.json")["content"]
PV = example("limits-pv-inv-01.json")["content"]
TWO = (Asset("bess-01", 4, "ess"), Asset("pv-inv-01", 6, "dg", True))


def feeder(**voltage) -> dict:
    return {"asset_id": "feeder-3", **band_policy(**voltage)["content"]}


@pytest.mark.parametrize(
    ("what", "policies", "expected"),
    [
        (
            "the control target narrows the band",
            {"f": feeder(v_max=1.05, v_target_min_pu=0.95)},
            (0.95, 1.05),
        ),
        (
            "without targets the band itself",
            {"f": {"voltage": {"v_nominal_v": 400, "v_min_pu": 0.92, "v_max_pu": 1.06}}},
            (0.92, 1.06),
        ),
        (
            "a node's band narrows it further",
            {"f": {**feeder(v_max=1.06), "nodes": {"node_6": {"v_max_pu": 1.04}}}},
            (0.9, 1.04),
        ),
    ],
)
def test_band_mapping(what, policies, expected):
    limits = voltage_limits(policies, (), "f")
    assert (limits.v_min, limits.v_max) == pytest.approx(expected), what


def test_asset_limits_come_from_each_assets_policy():
    limits = voltage_limits({"f": feeder(), "b": BESS, "p": PV}, TWO, "feeder-3")
    assert (limits.ess[4].p_min_kw, limits.ess[4].p_max_kw) == (-250, 250)
    assert (limits.ess[4].energy_kwh, limits.ess[4].soc_min, limits.ess[4].soc_max) == (
        500,
        0.1,
        0.9,
    )
    assert (limits.dg[6].q_min_kvar, limits.dg[6].q_max_kvar, limits.dg[6].p_max_kw) == (
        -48,
        48,
        100,
    )
    assert limits.dg[6].curtailable


def test_node_limits_of_the_band_policy_stand_in_for_a_missing_asset_policy():
    band = {**feeder(), "nodes": {"node_4": {"p_min_kw": -30, "p_max_kw": 30}}}
    limits = voltage_limits({"f": band}, TWO, "feeder-3")
    assert (limits.ess[4].p_min_kw, limits.ess[4].p_max_kw) == (-30, 30)
    assert 6 not in limits.dg  # no limits at all: the asset is not controlled


@pytest.mark.parametrize(
    ("what", "policies", "code"),
    [
        ("no band policy yet", {"b": BESS}, "limits_incomplete"),
        ("band above the safe envelope", {"f": feeder(v_max=1.2, v_max_pu=1.3)}, "invalid_limits"),
        ("band below the safe envelope", {"f": feeder(v_min_pu=0.8)}, "invalid_limits"),
        ("band without a voltage section", {"f": {"asset_id": "feeder-3"}}, "invalid_limits"),
        (
            "storage without a power range",
            {"f": feeder(), "b": {"asset_id": "bess-01", "power": {"q_max_kvar": 5}}},
            "invalid_limits",
        ),
        (
            "storage that cannot idle",
            {"f": feeder(), "b": {"asset_id": "bess-01", "power": {"p_min_kw": 5, "p_max_kw": 9}}},
            "invalid_limits",
        ),
    ],
)
def test_unusable_limits_are_refused(what, policies, code):
    with pytest.raises(InvalidInputError) as caught:
        voltage_limits(policies, TWO, "feeder-3")
    assert caught.value.code == code, what


# --- the service on the bus ------------------------------------------------------------


def test_closed_loop_brings_the_feeder_inside_the_band(bus, service):
    outputs = Outputs(bus)
    open_loop = measure(bus, None)
    assert max(open_loop.values()) > 1.06
    service.apply_limits(band_policy(v_max=1.05))
    voltages = run_loop(bus, service, outputs, steps=4)
    assert max(voltages.values()) <= 1.05 + 1e-3
    assert outputs.last("/voltage_control/status")["limits"]["v_max_pu"] == 1.05
    assert set(outputs.by_topic) >= {
        "/voltage_control/control/reactive_power",
        "/voltage_control/control/active_power_ESS",
    }


def test_a_limits_change_takes_effect_at_the_next_step(bus, service):
    outputs = Outputs(bus)
    before = run_loop(bus, service, outputs, steps=3)
    assert max(before.values()) > 1.05  # the loose band (1.08) leaves the rise alone
    service.apply_limits(band_policy(v_max=1.04))
    measure(bus, outputs)
    assert service.step()
    status = outputs.last("/voltage_control/status")
    assert status["limits"] == {"v_min_pu": 0.9, "v_max_pu": 1.04, "revision": 2}
    assert max(measure(bus, outputs).values()) <= 1.04 + 1e-3


def test_refused_limits_keep_the_last_good_ones(bus, service):
    good = service.controller.limits
    with pytest.raises(InvalidInputError):
        service.apply_limits(band_policy(v_max=1.2, v_max_pu=1.3))
    with pytest.raises(InvalidInputError):  # a 230 V base does not fit the 400 V feeder model
        service.apply_limits(band_policy(v_nominal_v=230))
    assert service.controller.limits is good
    assert service.counters["limits_refused"] == 2
    measure(bus, None)
    assert service.step()


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        b'{"voltage_measurements": {"node_x": 1}}',
        b'{"voltage_measurements": {"node_4": "high"}}',
        b'{"voltage_measurements": {"node_4": NaN}}',
    ],
)
def test_malformed_payloads_are_counted_and_the_service_keeps_running(bus, service, payload):
    outputs = Outputs(bus)
    bus.publish(VOLTAGE_TOPIC, payload)
    assert service.counters["malformed"] == 1
    assert not service.step()  # nothing usable arrived
    measure(bus, outputs)
    assert service.step()


def test_a_node_outside_the_feeder_is_left_out_and_counted(bus, service):
    measure(bus, None)
    flat = {"node_99": 1.0, "created": now_ms()}  # the flat form, naming no feeder node
    bus.publish(VOLTAGE_TOPIC, json.dumps(flat).encode())
    assert service.step()  # the last good inputs still count
    assert service.counters["unknown_nodes"] == 1
    assert service.counters["step_errors"] == 0
    mixed = {"node_99": 1.0, "node_4": 1.01, "created": now_ms()}
    bus.publish(VOLTAGE_TOPIC, json.dumps(mixed).encode())
    assert service.step()
    assert service.counters["unknown_nodes"] == 2


def test_switching_the_data_source_resubscribes_without_a_restart(bus, service):
    service.apply_service_config(service_config("databus"))
    outputs = Outputs(bus)
    measure(bus, outputs)
    assert service.step()
    service.apply_service_config(service_config("other"))
    assert service.source.name == "other"
    assert not service.step()  # the old source's inputs were dropped
    received = service.counters["received"]
    measure(bus, outputs)  # on the old topics: nobody listens any more
    assert service.counters["received"] == received
    measure(bus, outputs, voltage_topic="/feeder-4/voltage", pv_topic="/feeder-4/pv")
    assert service.step()
    assert outputs.last("/voltage_control/status")["source"] == "other"


@pytest.mark.parametrize(
    ("what", "changes", "code"),
    [
        (
            "a rest source without the poller's topics",
            {"active_source": "bare-rest"},
            "unsupported_source",
        ),
        ("a database source", {"active_source": "db"}, "unsupported_source"),
        ("an undefined source", {"active_source": "nowhere"}, "invalid_config"),
        ("another service's configuration", {"service": "frequency-control"}, "invalid_config"),
    ],
)
def test_unusable_service_config_keeps_the_current_source(bus, service, what, changes, code):
    service.apply_service_config(service_config("databus"))
    with pytest.raises(InvalidInputError) as caught:
        service.apply_service_config(service_config(**changes))
    assert caught.value.code == code, what
    assert service.source.name == "databus"
    assert source_from_config(service_config()["content"], "voltage-control").name == "databus"


def test_stale_inputs_give_zero_setpoints_once(bus, service):
    config = service_config(
        fallback={"on_missing_input": "zero_setpoints", "input_timeout_s": 0.05}
    )
    service.apply_service_config(config)
    outputs = Outputs(bus)
    measure(bus, outputs)
    assert service.step()
    time.sleep(0.1)
    assert service.step()  # the zero set-points
    assert not service.step()  # once only
    assert outputs.last("/voltage_control/control/reactive_power") == {
        "reactive_power": {"node_6": 0.0}
    }
    assert outputs.last("/voltage_control/control/active_power_ESS") == {
        "active_power_ESS": {"node_4": 0.0}
    }
    assert service.counters["stale"] == 2


def test_new_limits_wake_the_loop_at_once(bus, service):
    service.ticker.period_s = 30.0
    outputs = Outputs(bus)
    measure(bus, outputs)
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        _wait(lambda: "/voltage_control/status" in outputs.by_topic)
        changed = time.monotonic()
        service.apply_limits(band_policy(v_max=1.04))
        _wait(lambda: outputs.last("/voltage_control/status")["limits"]["v_max_pu"] == 1.04)
        assert time.monotonic() - changed < 1.0
    finally:
        service.stop()
        runner.join(5)
    assert not runner.is_alive()


def test_bad_local_configuration_is_reported():
    with pytest.raises(ConfigurationError):
        VoltageService(MemoryBus(), {"feeder": {"lines": [[0, 1]]}})
    with pytest.raises(ConfigurationError):
        VoltageService(MemoryBus(), {"feeder": {"lines": LINES}, "assets": {"x": {"node": 1}}})


@pytest.mark.parametrize(
    ("what", "config", "says"),
    [
        ("a wildcard status topic", {"status_topic": "/voltage_control/#"},
         "`voltage.status_topic`"),
        ("an empty status topic (null is none)", {"status_topic": ""}, "`voltage.status_topic`"),
        ("a status topic that is no text", {"status_topic": 1}, "`voltage.status_topic`"),
        ("an inverted envelope", {"envelope_pu": [1.15, 0.85]}, "`voltage.envelope_pu`"),
        ("a NaN envelope", {"envelope_pu": [float("nan"), 1.1]}, "`voltage.envelope_pu`"),
        ("an envelope of words", {"envelope_pu": ["low", "high"]}, "`voltage.envelope_pu`"),
        ("an envelope of one bound", {"envelope_pu": [0.9]}, "`voltage.envelope_pu`"),
        ("no band policy named", {"band_from": None}, "`voltage.band_from`"),
        ("an empty band policy name", {"band_from": ""}, "`voltage.band_from`"),
        ("a zero sample age", {"max_input_age_s": 0}, "`max_input_age_s`"),
        ("a NaN clock skew", {"max_clock_skew_s": float("nan")}, "`max_clock_skew_s`"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_refused_at_start_naming_it(bus, what, config, says):
    """Taken before, each failed every status publish or refused every band policy."""
    section = {"feeder": {"v_nominal_v": 400, "lines": LINES}, "band_from": "feeder-3", **config}
    with pytest.raises(ConfigurationError) as refused:
        VoltageService(bus, section)
    assert says in refused.value.message, what


@pytest.mark.parametrize(
    ("made", "says"),
    [({"max_age_s": 0}, "`max_age_s`"), ({"max_skew_s": float("nan")}, "`max_skew_s`")],
)
def test_a_timing_made_in_code_is_checked_by_the_file_s_rule(made, says):
    with pytest.raises(ConfigurationError) as refused:
        Timing(**made)
    assert says in refused.value.message


def test_good_settings_are_taken_and_a_null_status_topic_publishes_none(bus):
    service = make_service(
        bus, status_topic="/feeder-3/status", envelope_pu=[0.9, 1.1], max_input_age_s=30
    )
    assert (service.status_topic, service.envelope) == ("/feeder-3/status", (0.9, 1.1))
    assert service.gate.timing == Timing(30.0, 5.0)
    assert make_service(bus, status_topic=None).status_topic is None


def _wait(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_refused_policy_file_is_logged_and_the_service_goes_on(bus, caplog):
    from adapters.services._runner import deliver_policy

    service = make_service(bus)
    assert not deliver_policy(service, "limits", band_policy(v_max=1.2, v_max_pu=1.3))
    assert not deliver_policy(service, "nowhere", band_policy())
    assert not deliver_policy(service, "limits", {"id": "no-content"})
    assert deliver_policy(service, "limits", band_policy())
    assert service.controller is not None and service.counters["limits_refused"] == 1
    assert "refused" in caplog.text and "no sink `nowhere`" in caplog.text


# --- hostile, stale, replayed and implausible inputs ----------------------------------

DAY_MS = 86_400_000


def publish(bus, body: dict, *, created: int | None = None, topic: str = VOLTAGE_TOPIC) -> None:
    stamped = {**body, "created": now_ms() if created is None else created}
    bus.publish(topic, json.dumps(stamped).encode())


def voltages(value: float, node: int = 8) -> dict:
    return {"voltage_measurements": {f"node_{node}": value}}


def published_numbers_are_finite(outputs: Outputs) -> bool:
    for bodies in outputs.by_topic.values():
        for body in bodies:
            if "Infinity" in json.dumps(body) or "NaN" in json.dumps(body):
                return False
    return True


def test_the_service_loop_survives_a_finite_number_no_solver_can_take(bus, service):
    """`1e308` once made scipy's linprog raise and ended the process: now the sample
    is refused at the edge and the loop runs on."""
    outputs = Outputs(bus)
    service.ticker.period_s = 0.01
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        publish(bus, voltages(1e308))
        publish(bus, voltages(-1e308, node=4))
        _wait(lambda: service.counters["implausible"] == 2)
        measure(bus, outputs)
        _wait(lambda: "/voltage_control/status" in outputs.by_topic)
        assert runner.is_alive()
    finally:
        service.stop()
        runner.join(5)
    assert service.counters["step_errors"] == 0
    assert published_numbers_are_finite(outputs)


HOSTILE = [
    ("the largest float", b'{"voltage_measurements": {"node_8": 1e308}, "created": %d}'),
    ("ten per unit", b'{"voltage_measurements": {"node_8": 10.0}, "created": %d}'),
    ("a negative voltage", b'{"voltage_measurements": {"node_8": -1.0}, "created": %d}'),
    ("a float that overflows", b'{"voltage_measurements": {"node_8": 1e999}, "created": %d}'),
    ("a duplicate key", b'{"voltage_measurements": {"node_8": 1, "node_8": 2}, "created": %d}'),
    ("a huge node number", b'{"voltage_measurements": {"node_99999999999": 1.0}, "created": %d}'),
    ("the slack node only", b'{"voltage_measurements": {"node_0": 1.0}, "created": %d}'),
    ("a list of voltages", b'{"voltage_measurements": [1.0, 1.0], "created": %d}'),
    ("null values", b'{"voltage_measurements": {"node_8": null}, "created": %d}'),
    ("no nodes at all", b'{"voltage_measurements": {}, "created": %d}'),
    ("a time in text", b'{"voltage_measurements": {"node_8": 1.0}, "created": "now", "x": %d}'),
    ("a PV power of 1e308", b'{"pv_input_measurements": {"node_6": 1e308}, "created": %d}'),
]


@pytest.mark.parametrize(("what", "template"), HOSTILE)
def test_any_input_leaves_the_last_good_inputs_in_force(bus, service, what, template):
    outputs = Outputs(bus)
    measure(bus, outputs)
    assert service.safe_step()
    before = service.held_inputs()
    topic = PV_TOPIC if b"pv_input" in template else VOLTAGE_TOPIC
    bus.publish(topic, template % now_ms())
    assert service.held_inputs() == before, what
    assert service.safe_step(), what
    assert service.counters["step_errors"] == 0, what
    assert published_numbers_are_finite(outputs), what


def test_a_year_old_sample_is_refused(bus, service):
    publish(bus, voltages(1.2), created=now_ms() - 365 * DAY_MS)
    assert service.counters["too_old"] == 1
    assert not service.step()  # nothing to act on: no full absorption on old data


def test_a_sample_from_the_future_is_refused(bus, service):
    publish(bus, voltages(1.05), created=now_ms() + DAY_MS)
    assert service.counters["from_future"] == 1
    assert not service.step()


def test_an_older_sample_after_a_newer_one_does_not_win(bus, service):
    newer = now_ms()
    publish(bus, voltages(1.04), created=newer)
    publish(bus, voltages(1.09), created=newer - 500)
    assert service.counters["out_of_order"] == 1
    assert service.held_inputs()["voltage_measurements"].values == {8: 1.04}


def test_a_replayed_sample_after_the_fallback_does_not_switch_power_back_on(bus, service):
    service.apply_service_config(
        service_config(fallback={"on_missing_input": "zero_setpoints", "input_timeout_s": 0.05})
    )
    outputs = Outputs(bus)
    measure(bus, outputs)
    assert service.step()
    replay = outputs_of_feeder_now = json.dumps(
        {"voltage_measurements": {"node_8": 1.09}, "created": now_ms()}
    ).encode()
    bus.publish(VOLTAGE_TOPIC, replay)
    assert service.step()
    time.sleep(0.1)
    assert service.step()  # stale: zero set-points, once
    zeros = outputs.last("/voltage_control/control/active_power_ESS")
    assert zeros == {"active_power_ESS": {"node_4": 0.0}}
    steps = service.counters["steps"]
    bus.publish(VOLTAGE_TOPIC, outputs_of_feeder_now)  # the same sample again
    assert service.counters["out_of_order"] == 1
    assert not service.step()  # still stale: nothing switched back on
    assert service.counters["steps"] == steps


def test_a_json_edgeflex_source_requires_the_time_of_each_sample(bus, service):
    service.apply_service_config(service_config("databus"))  # format: json.edgeflex
    bus.publish(VOLTAGE_TOPIC, json.dumps(voltages(1.0)).encode())
    assert service.counters["no_timestamp"] == 1
    assert not service.step()


def test_plausible_ranges_follow_the_band_policy(bus, service):
    publish(bus, voltages(1.35))  # inside 0.9-1.1 widened by 0.3 pu
    assert service.counters["implausible"] == 0
    service.apply_limits(band_policy(v_max=1.04, v_max_pu=1.05))  # now 0.6-1.35
    publish(bus, voltages(1.36))
    assert service.counters["implausible"] == 1
    assert service.held_inputs()["voltage_measurements"].values == {8: 1.35}


def test_a_failed_step_is_counted_and_runs_the_fallback(bus):
    from adapters.services._runner import LoopService

    class Failing(LoopService):
        name = "failing"
        fallbacks = 0

        def step(self) -> bool:
            raise ValueError("the optimiser gave up")

        def on_step_failure(self) -> None:
            self.fallbacks += 1

    failing = Failing(bus, 0.01)
    runner = threading.Thread(target=failing.run)
    runner.start()
    try:
        _wait(lambda: failing.counters["step_errors"] >= 3)
        assert runner.is_alive()
    finally:
        failing.stop()
        runner.join(5)
    assert failing.fallbacks == failing.counters["step_errors"]
    assert failing.stats()["step_errors"] == failing.counters["step_errors"]


# --- starting without policies ------------------------------------------------------------


def test_a_service_without_its_policies_says_so_loudly(bus, caplog):
    from adapters.services._runner import check_policies

    service = make_service(bus)
    with caplog.at_level("ERROR", logger="adapters.services"):
        check_policies(service, None)
    assert "no policy for `feeder-3` yet (no `loader` is configured)" in caplog.text


def test_with_require_policies_a_service_without_them_refuses_to_start(tmp_path):
    from adapters.services._runner import run_service
    from adapters.services.voltage import make_service as factory

    config = {
        "require_policies": True,
        "voltage": {"feeder": {"v_nominal_v": 400, "lines": LINES}, "band_from": "feeder-3"},
    }
    path = tmp_path / "voltage.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigurationError) as raised:
        run_service(factory, path)
    assert raised.value.code == "no_policies"


def test_a_service_with_its_policies_starts_quietly(bus, service, caplog):
    from adapters.services._runner import check_policies

    with caplog.at_level("ERROR", logger="adapters.services"):
        check_policies(service, None, require=True)
    assert caplog.text == ""
