"""The KIBERNet poller against the stand-in platform over a real socket, deciding with
pbgm's PDP over a repository (nothing of pbgm mocked): what it publishes, what policy
changes do to it, denials and obligations, failures, staleness and recovery."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time

import pytest

from adapters.kibernet import MASK, Plan
from pbgm.errors import ConfigurationError
from tests.kibernet.conftest import SUBJECT, data_access, with_rule_obligations


def test_a_poll_publishes_each_format_after_a_permit(kibernet, rig):
    run = rig()
    assert run.poller.poll_once() == {"published": 3}
    [voltage] = run.inbox.on("/kib/voltage")
    assert voltage["node_3"] == 1.02 and voltage["node_4"] == 1.04
    assert isinstance(voltage["created"], int)  # json.edgeflex: one flat sample per topic
    [meter] = run.inbox.on("/kib/meter")
    assert meter["value"] == 12.5 and meter["time"].endswith("Z")
    assert meter["meter_serial"] == "SN-0042"  # nothing dropped: no obligation asks it
    assert run.metric("kibernet", "published") == 3


def test_a_reading_not_newer_than_the_last_is_not_sent_again(kibernet, rig):
    run = rig()
    run.poller.poll_once()
    assert run.poller.poll_once() == {"unchanged": 3}
    assert len(run.inbox.on("/kib/voltage")) == 1
    kibernet.set("F3.N3.U", 1.05)
    assert run.poller.poll_once() == {"published": 1, "unchanged": 2}
    assert run.inbox.on("/kib/voltage")[-1] == {
        "node_3": 1.05,
        "created": run.inbox.on("/kib/voltage")[-1]["created"],
    }


def test_a_denied_data_point_is_not_read_published_but_counted_and_audited(kibernet, rig):
    document = data_access(kibernet.url)
    document["content"]["data_points"]["secret-tariff"] = {
        "path": "/datapoints/TARIFF/latest",
        "topic": "/kib/tariff",
    }
    kibernet.set("TARIFF", 0.31)
    run = rig(document)
    assert run.poller.poll_once() == {"published": 3, "denied": 1}
    assert run.inbox.on("/kib/tariff") == []
    assert kibernet.requests["/datapoints/TARIFF/latest"] == 0  # decided before reading
    assert run.metric("kibernet", "denied") == 1
    [entry] = [e for e in run.store.list_audit() if e.action == "kibernet.deny"]
    assert entry.details["data_point"] == "secret-tariff"
    assert entry.details["decision"] == "Deny" and entry.details["subject"] == SUBJECT


def test_a_subject_outside_the_group_reads_nothing(kibernet, rig):
    run = rig(groups=["operators"])
    assert run.poller.poll_once() == {"denied": 3}
    assert run.inbox.items == []
    assert sum(kibernet.requests.values()) == 0


def test_obligations_drop_mask_and_rename_what_is_published(kibernet, rig):
    document = with_rule_obligations(
        data_access(kibernet.url),
        {"id": "drop-fields", "attributes": {"fields": ["customer_id"]}},
        {"id": "mask-fields", "attributes": {"fields": ["meter_serial"]}},
        {"id": "rename-topic", "attributes": {"from": "/kib/#", "to": "/dso/kib"}},
    )
    run = rig(document)
    assert run.poller.poll_once() == {"published": 3}
    [meter] = run.inbox.on("/dso/kib/meter")
    assert "customer_id" not in meter
    assert meter["meter_serial"] == MASK and meter["unit"] == "kW"
    assert run.inbox.on("/dso/kib/voltage")[0]["node_4"] == 1.04
    assert run.inbox.on("/kib/meter") == []


def test_downsampling_holds_readings_within_the_interval(kibernet, rig):
    document = with_rule_obligations(
        data_access(kibernet.url),
        {"id": "downsample", "attributes": {"min_interval_s": 3600, "method": "last"}},
    )
    run = rig(document)
    assert run.poller.poll_once() == {"published": 3}  # the first one passes
    kibernet.set("M4.P", 13.0)
    assert run.poller.poll_once() == {"held": 1, "unchanged": 2}
    assert len(run.inbox.on("/kib/meter")) == 1


def test_an_unknown_obligation_publishes_nothing_and_is_counted(kibernet, rig):
    document = with_rule_obligations(
        data_access(kibernet.url), {"id": "encrypt-with-quantum-key", "attributes": {}}
    )
    run = rig(document)
    assert run.poller.poll_once() == {"obligation_refused": 3}
    assert run.inbox.items == []
    assert sum(kibernet.requests.values()) == 0
    assert run.metric("kibernet", "obligation_refused") == 3
    audited = [e for e in run.store.list_audit() if e.action == "kibernet.deny"]
    assert {e.details["reason"] for e in audited} == {
        "no handler for obligation `encrypt-with-quantum-key`"
    }


def test_a_policy_change_reconfigures_the_running_poller(kibernet, rig):
    run = rig()
    run.poller.start()
    try:
        run.inbox.wait(lambda: len(run.inbox.on("/kib/voltage")) == 1)
        with kibernet_two() as other:
            other.set("F3.N5.U", 0.98)
            changed = data_access(other.url)
            changed["content"]["data_points"] = {
                "n5": {"id": "F3.N5.U", "path": "/datapoints/{id}/latest",
                       "topic": "/kib/feeder5", "format": "json.edgeflex", "signal": "node_5"},
            }  # fmt: skip
            changed["content"]["polling"]["interval_s"] = 2
            started = time.monotonic()
            run.change(changed)
            run.inbox.wait(lambda: run.inbox.on("/kib/feeder5") != [], timeout=3)
            assert time.monotonic() - started < 1.0  # at once, not at the next period
            assert run.inbox.on("/kib/feeder5")[0]["node_5"] == 0.98
            assert run.poller.plan is not None and run.poller.plan.interval_s == 2
            reads_of_old = sum(kibernet.requests.values())
            time.sleep(0.5)
            assert sum(kibernet.requests.values()) == reads_of_old  # the old one is left
    finally:
        run.poller.stop()
    assert run.poller.stats()["config_applied"] == 2


def kibernet_two():
    from adapters.kibernet.standin import KibernetStandIn

    return KibernetStandIn()


def test_a_policy_the_poller_cannot_follow_keeps_the_last_good_plan(kibernet, rig):
    run = rig()
    bad = data_access(kibernet.url)
    bad["content"]["endpoints"]["kibernet"]["auth"] = {
        "method": "basic",
        "username": "pbgm",
        "secret_ref": "kibernet/password",
    }
    with pytest.raises(ConfigurationError) as caught:
        run.poller.apply(bad)
    assert caught.value.code == "unsupported_auth"
    assert run.poller.poll_once() == {"published": 3}
    assert run.poller.stats()["config_refused"] == 1


def test_a_peer_down_marks_the_last_good_values_stale_and_recovery_resumes(kibernet, rig, caplog):
    run = rig()
    run.poller.poll_once()
    kibernet.down()
    caplog.set_level(logging.INFO, logger="adapters.kibernet")
    time.sleep(0.05)
    assert run.poller.poll_once() == {"failed": 3}
    assert len(run.inbox.on("/kib/voltage")) == 1  # nothing re-sent as if it were new
    [status] = run.inbox.on("/kib/status")
    stale = status["stale"]["n3"]
    assert stale["value"] == 1.02 and stale["reason"] == "peer_unavailable"
    assert stale["age_s"] >= 0.05 and stale["topic"] == "/kib/voltage"
    assert "peer_unavailable" in caplog.text and "stale" in caplog.text
    run.poller.poll_once()
    assert caplog.text.count("of `kibernet`: ") == 3  # logged once per data point
    assert run.inbox.on("/kib/status")[-1]["stale"]["n3"]["age_s"] > stale["age_s"]
    kibernet.up()
    kibernet.set("F3.N3.U", 1.01)
    assert run.poller.poll_once() == {"published": 1, "unchanged": 2}
    assert run.inbox.on("/kib/voltage")[-1]["node_3"] == 1.01
    assert run.inbox.on("/kib/status")[-1]["stale"] == {}  # all answer again
    assert run.poller.stale() == {}
    assert "answers again" in caplog.text


def test_a_slow_peer_times_out_and_nothing_is_invented(kibernet, rig):
    run = rig()
    run.poller.poll_once()
    kibernet.slow(1.5)  # the endpoint's timeout is 1 s
    kibernet.set("F3.N3.U", 1.07)
    started = time.monotonic()
    outcome = run.poller.poll_once()
    assert outcome == {"failed": 3}
    assert time.monotonic() - started < 20
    assert run.poller.stale()["n3"]["reason"] == "peer_timeout"
    assert run.poller.stale()["n3"]["value"] == 1.02
    assert [v["node_3"] for v in run.inbox.on("/kib/voltage")] == [1.02]


def test_a_data_point_with_no_good_value_yet_is_stale_without_a_value(kibernet, rig):
    kibernet.fail("F3.N4.U", 500)
    run = rig()
    assert run.poller.poll_once() == {"published": 2, "failed": 1}
    stale = run.poller.stale()["n4"]
    assert stale == {"topic": "/kib/voltage", "reason": "peer_unavailable"}
    assert run.inbox.on("/kib/voltage")[0] == {
        "node_3": 1.02,
        "created": run.inbox.on("/kib/voltage")[0]["created"],
    }


@pytest.mark.parametrize("fault", ["malformed", "oversized", "no value", "naive time"])
def test_a_malformed_or_oversized_answer_is_refused_with_its_reason(kibernet, rig, caplog, fault):
    document = data_access(kibernet.url)
    document["content"]["endpoints"]["kibernet"]["max_response_bytes"] = 4096
    run = rig(document)
    if fault == "malformed":
        kibernet.malformed("M4.P")
    elif fault == "oversized":
        kibernet.oversized("M4.P", 10_000)
    elif fault == "no value":
        kibernet.set("M4.P", 1.0)
        document["content"]["data_points"]["meter"]["value"] = "reading.value"
        run.poller.apply(document)
    else:
        document["content"]["data_points"]["meter"]["time"] = "naive"
        kibernet.set("M4.P", 1.0, naive="2026-01-01T00:00:00")
        run.poller.apply(document)
    caplog.set_level(logging.WARNING, logger="adapters.kibernet")
    assert run.poller.poll_once() == {"published": 2, "refused_answer": 1}
    assert run.inbox.on("/kib/meter") == []
    expected = {
        "malformed": "not JSON",
        "oversized": "larger than 4096 bytes",
        "no value": "no `reading.value`",
        "naive time": "`naive` is not an ISO 8601 time with a zone",
    }[fault]
    assert expected in caplog.text
    assert run.metric("kibernet", "refused_answer") == 1


def test_a_retry_after_beyond_the_wait_is_honoured_across_polls(kibernet, rig):
    run = rig()
    kibernet.fail("*", 429, retry_after=30)
    assert run.poller.poll_once() == {"failed": 1, "rate_limited": 2}  # then it waits
    asked = sum(kibernet.requests.values())
    kibernet.clear()
    assert run.poller.poll_once() == {"rate_limited": 3}
    assert sum(kibernet.requests.values()) == asked
    assert run.poller.stale()["n3"]["reason"] == "peer_busy"


def test_a_passing_5xx_is_retried_within_the_read(kibernet, rig):
    kibernet.fail("F3.N3.U", 503, times=1)
    run = rig()
    assert run.poller.poll_once() == {"published": 3}
    assert kibernet.requests["/datapoints/F3.N3.U/latest"] == 2


def test_the_endpoint_rate_limit_skips_reads_beyond_it(kibernet, rig):
    document = data_access(kibernet.url)
    document["content"]["polling"]["interval_s"] = 60
    document["content"]["rate_limit"] = {"requests_per_minute": 4}
    run = rig(document)
    assert run.poller.poll_once() == {"published": 3}
    kibernet.set("F3.N3.U", 1.03)
    assert run.poller.poll_once() == {"published": 1, "rate_limited": 2}
    assert sum(kibernet.requests.values()) == 4
    assert run.metric("kibernet", "rate_limited") == 2


def test_a_rate_limit_obligation_narrows_the_subject_s_reads(kibernet, rig):
    document = with_rule_obligations(
        data_access(kibernet.url),
        {"id": "rate-limit", "attributes": {"requests_per_minute": 2}},
    )
    run = rig(document)
    assert run.poller.poll_once() == {"published": 2, "rate_limited": 1}


def test_a_query_template_reads_the_latest_sample_since_the_last_one(kibernet, rig):
    document = data_access(kibernet.url)
    document["content"]["data_points"] = {
        "meter": {"id": "M4.P", "path": "/measurements", "select": "data",
                  "query": {"point": "{id}", "from": "{since}"}, "topic": "/kib/meter"},
    }  # fmt: skip
    run = rig(document)
    kibernet.set("M4.P", 13.5)
    assert run.poller.poll_once() == {"published": 1}
    assert run.inbox.on("/kib/meter")[-1]["value"] == 13.5
    assert run.poller.poll_once() == {"failed": 1}  # an empty series: nothing new
    assert run.poller.stale()["meter"]["reason"] == "no_data"


def test_sogno_v4_readings_of_one_device_go_out_together(kibernet, rig):
    document = data_access(kibernet.url)
    points = document["content"]["data_points"]
    for name, component in (("n3", "BUS3"), ("n4", "BUS4")):
        points[name].update(format="sogno_v4", topic="/kib/sogno")
        points[name].pop("signal")
        points[name]["sogno"] = {"device": "kib", "component": component,
                                 "measurand": "voltmagnitude"}  # fmt: skip
    run = rig(document)
    run.poller.poll_once()
    [message] = run.inbox.on("/kib/sogno")
    assert message["device"] == "kib" and message["timestamp"].endswith("Z")
    assert [(r["component"], r["data"], r["phase"]) for r in message["readings"]] == [
        ("BUS3", 1.02, "A"),
        ("BUS4", 1.04, "A"),
    ]


def test_the_plan_reads_a_secret_name_from_the_secrets_directory(kibernet, tmp_path):
    document = data_access(kibernet.url)
    document["content"]["endpoints"]["kibernet"]["auth"] = {
        "method": "api_key",
        "secret_ref": "kibernet/api-key",
    }
    plan = Plan.from_document(copy.deepcopy(document), tmp_path)
    auth = plan.endpoints["kibernet"].settings["auth"]
    assert auth == {
        "mode": "api_key",
        "key": {"file": str(tmp_path / "kibernet" / "api-key")},
        "header": "X-API-Key",
    }


PEER = "http://127.0.0.1:9"  # never called: plans are only read here


def _changed(path: tuple[str, ...], value: object) -> dict:
    document = data_access(PEER)
    *parents, key = path
    at = document["content"]
    for name in parents:
        at = at[name]
    if value is None:
        del at[key]
    else:
        at[key] = value
    return document


@pytest.mark.parametrize(
    ("what", "path", "value", "says"),
    [
        ("a wildcard data point topic", ("data_points", "n3", "topic"), "/kib/#",
         "data point `n3`: `topic`"),
        ("an empty data point topic", ("data_points", "meter", "topic"), "",
         "data point `meter`: `topic`"),
        ("a data point topic with NUL", ("data_points", "n4", "topic"), "/kib/\0v",
         "data point `n4`: `topic`"),
        ("a wildcard status topic", ("status_topic",), "/kib/+/status", "`status_topic`"),
        ("a NaN polling interval", ("polling", "interval_s"), float("nan"),
         "`polling.interval_s`"),
        ("a polling interval as text", ("polling", "interval_s"), "1", "`polling.interval_s`"),
        ("a negative jitter", ("polling", "jitter_s"), -1, "`polling.jitter_s`"),
        ("a NaN jitter", ("polling", "jitter_s"), float("nan"), "`polling.jitter_s`"),
        ("no reads a minute", ("rate_limit",), {"requests_per_minute": 0},
         "`rate_limit.requests_per_minute`"),
        ("a negative burst", ("rate_limit",), {"requests_per_minute": 60, "burst": -5},
         "`rate_limit.burst`"),
    ],
)  # fmt: skip
def test_a_plan_setting_the_poller_would_fail_on_is_refused_naming_it(what, path, value, says):
    """Taken before, each failed every publish or read, or spun the poller's thread."""
    with pytest.raises(ConfigurationError) as caught:
        Plan.from_document(_changed(path, value))
    assert says in caught.value.message, what
    assert caught.value.code == "invalid_plan"


def test_a_plan_made_in_code_is_checked_as_a_policy_s():
    plan = Plan.from_document(data_access(PEER))
    point = plan.points[0]
    with pytest.raises(ConfigurationError, match="data point `n3`: `topic`"):
        dataclasses.replace(point, topic="/kib/+")
    with pytest.raises(ConfigurationError, match="`status_topic`"):
        dataclasses.replace(plan, status_topic="")
    with pytest.raises(ConfigurationError, match=r"`polling\.interval_s`"):
        dataclasses.replace(plan, interval_s=0)
    with pytest.raises(ConfigurationError, match=r"`rate_limit\.burst`"):
        dataclasses.replace(plan.endpoints["kibernet"], burst=0)


def test_good_plan_settings_are_taken():
    document = _changed(("polling",), {"endpoint": "kibernet", "interval_s": 2, "jitter_s": 0.5})
    document["content"]["rate_limit"] = {"requests_per_minute": 120, "burst": 5}
    plan = Plan.from_document(document)
    assert (plan.interval_s, plan.jitter_s, plan.status_topic) == (2.0, 0.5, "/kib/status")
    assert (plan.endpoints["kibernet"].requests_per_minute, plan.endpoints["kibernet"].burst) == (
        120,
        5,
    )
    assert {p.topic for p in plan.points} == {"/kib/voltage", "/kib/meter"}
    assert Plan.from_document(_changed(("status_topic",), None)).status_topic == (
        "/pbgm/kibernet/status"
    )
