"""Issue 10 in process: the lifecycle checks against the versions acted on, the decision
log bounds, the default rate limit by Flask-Limiter, the proxy's client address, the
XACML reader's bounds and the secret file's mode. The same attacks run against a live
gunicorn server in `tests/security/`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pbgm.api import Settings
from pbgm.api._audit import MAX_CALL_BYTES, bounded_entries, bounded_request
from pbgm.api._xacml import MAX_VALUES, parse_xacml
from pbgm.cli import main
from pbgm.errors import ValidationError
from pbgm.model import Permission, PolicyStatus
from pbgm.store import Grant
from tests.api.conftest import Server, World, b64, make_world

ADMIN = "/api/v1/admin"


def moved_policy(world: World) -> str:
    """`moved` was written in group B (`data-sharing`, version 1, published) and moved to
    group A (`operational-limits`, version 2) after being retired."""
    document = {
        "id": "moved",
        "type": "operational_limits",
        "policy_group": "data-sharing",
        "rules": [{"id": "b-permits", "effect": "Permit"}],
        "content": {"power": {"p_min_kw": 0, "p_max_kw": 1}},
    }
    from pbgm.pap import PolicyAdministrationPoint

    admin = PolicyAdministrationPoint(world.store)
    admin.create(document, actor="test")
    admin.publish("moved", actor="test")
    admin.retire("moved", actor="test")
    admin.update(
        "moved",
        {**document, "policy_group": "operational-limits", "rules": []},
        expected_version=1,
        actor="test",
    )
    return f"{ADMIN}/policies/{b64('moved')}"


@pytest.mark.parametrize(
    ("what", "method", "suffix", "body"),
    [
        ("publish version 1 (group B)", "POST", "/publish", {"version": 1}),
        ("roll back to version 1 (group B)", "POST", "/rollback", {"version": 1}),
        ("read the history, which shows version 1", "GET", "/versions", None),
    ],
)
def test_a_group_admin_cannot_act_on_a_version_of_another_group(
    world: World, what: str, method: str, suffix: str, body: Any
):
    path = moved_policy(world)
    before = world.export()
    reply = world.call(method, path + suffix, caller="svc-limits-admin", json_body=body)
    assert (reply.status, reply.code) == (403, "permission_denied"), what
    assert world.export()[1:] == before[1:]
    assert world.call(method, path + suffix, caller="svc-admin", json_body=body).status != 403


def test_retiring_is_authorized_against_the_published_versions_group(world: World):
    path = moved_policy(world)
    from pbgm.pap import PolicyAdministrationPoint

    PolicyAdministrationPoint(world.store).rollback("moved", 1, actor="test", publish=True)
    assert world.store.get_policy("moved").policy_group == "data-sharing"
    reply = world.call("POST", path + "/retire", caller="svc-limits-admin", json_body={})
    assert reply.status == 403


def test_no_version_of_another_group_is_published_not_even_by_a_global_admin(world: World):
    path = moved_policy(world)
    reply = world.call("POST", path + "/publish", caller="svc-admin", json_body={"version": 1})
    assert reply.status == 422
    assert reply.json["problems"][0]["code"] == "version_in_other_group"
    assert world.store.get_policy("moved").status is PolicyStatus.RETIRED
    assert (
        world.call("POST", path + "/publish", caller="svc-limits-admin", json_body={}).status == 200
    )


def test_a_published_policy_is_not_moved_to_another_group(world: World):
    from pbgm.pap import PolicyAdministrationPoint

    record = world.store.get_policy("limits-bess-01")
    document = {**record.document, "policy_group": "data-sharing"}
    with pytest.raises(ValidationError) as caught:
        PolicyAdministrationPoint(world.store).update(
            "limits-bess-01", document, expected_version=record.version, actor="test"
        )
    assert caught.value.problems[0].code == "published_in_other_group"


def test_a_taken_policy_id_is_409_naming_no_group(world: World):
    document = {
        "id": "kibernet-data-access",
        "type": "operational_limits",
        "policy_group": "operational-limits",
        "content": {"power": {"p_min_kw": 0, "p_max_kw": 1}},
    }
    reply = world.call("POST", f"{ADMIN}/policies", caller="svc-limits-admin", json_body=document)
    assert (reply.status, reply.code) == (409, "already_exists")
    assert reply.json["detail"] == (
        "policy id `kibernet-data-access` is taken: policy ids are unique across every policy group"
    )


# --- the decision log ------------------------------------------------------------------


def test_a_small_request_is_logged_as_it_is():
    request = {"subject": {"id": "op-anna"}}
    assert bounded_request(request, 2048) == (request, None)


def test_a_large_request_is_cut_to_its_bound_and_marked():
    request = {"subject": {"id": "op-anna", "note": "x" * 900_000, "bag": list(range(100))}}
    [entry] = bounded_entries([{"request": request, "decision": "Permit"}], max_request=2048)
    assert entry["decision"] == "Permit" and entry["request_truncated"] is True
    assert entry["request_bytes"] > 900_000 and len(json.dumps(entry["request"])) <= 2048
    assert entry["request"]["subject"]["id"] == "op-anna"
    assert entry["request"]["subject"]["note"].endswith("...")


def test_a_batch_logs_at_most_its_call_budget_of_requests():
    request = {"subject": {"id": "x" * 60}, "resource": {"n": "y" * 1800}}
    entries = [{"request": request, "decision": "Deny"} for _ in range(100)]
    bounded = bounded_entries(entries, max_request=2048)
    assert sum(len(json.dumps(e["request"])) for e in bounded) <= MAX_CALL_BYTES
    assert all(e["decision"] == "Deny" for e in bounded)
    assert bounded[-1]["request"] == {} and bounded[-1]["request_truncated"] is True


def test_a_decision_call_with_huge_attributes_writes_a_bounded_audit_entry(world: World):
    request = {
        "subject": {"id": "op-anna", "note": "x" * 500_000},
        "resource": {"asset_id": "bess-01"},
        "action": {"id": "write"},
    }
    assert (
        world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=request).status
        == 200
    )
    assert world.services.decision_log.flush(5)  # written off the request path
    entry = world.store.list_audit(limit=1)[0]
    assert entry.action == "decision" and len(json.dumps(entry.details)) < 4096


# --- the rate limit --------------------------------------------------------------------


def test_a_rate_limit_is_on_by_default():
    assert Settings().rate_limit == "600/minute"
    from pbgm.api.settings import settings_from

    assert settings_from({"rate_limit": "0"}).rate_limit == ""
    assert settings_from({"rate_limit": 100}).rate_limit == "100/minute"
    assert settings_from({"rate_limit": "10/second;500/hour"}).rate_limit == "10/second;500/hour"


def test_the_rate_limit_counts_per_client_and_spares_public_endpoints(
    server: Server, key_dir: Path
):
    world = make_world(server, key_dir, rate_limit="2/minute")
    statuses = [
        world.call("GET", "/api/v1/policies", caller="svc-voltage").status for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert world.call("GET", "/api/v1/policies", caller="svc-market").status == 200
    assert {world.call("GET", "/healthz").status for _ in range(5)} == {200}


# --- the proxy's client address ---------------------------------------------------------


def test_with_a_trusted_proxy_the_forwarded_address_is_the_clients(server: Server, key_dir: Path):
    world = make_world(server, key_dir, proxy_hops=1)
    form = "grant_type=client_credentials&client_id=svc-voltage&client_secret=wrong"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-For": "198.51.100.4",
    }
    world.call("POST", "/api/v1/token", body=form, headers=headers)
    entry = world.store.list_audit(limit=1)[0]
    assert entry.action == "token.refuse" and entry.details["remote_addr"] == "198.51.100.4"


def test_without_a_trusted_proxy_a_forwarded_address_is_ignored(world: World):
    form = "grant_type=client_credentials&client_id=svc-voltage&client_secret=wrong"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-For": "198.51.100.4",
    }
    world.call("POST", "/api/v1/token", body=form, headers=headers)
    assert world.store.list_audit(limit=1)[0].details["remote_addr"] == "127.0.0.1"


# --- the XACML reader ----------------------------------------------------------------


def test_250000_references_to_one_id_are_refused_before_any_work():
    body = {
        "Request": {
            "AccessSubject": {"Id": "s", "Attribute": []},
            "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"] * 250_000}]},
        }
    }
    with pytest.raises(ValidationError) as caught:
        parse_xacml(body, max_batch=100)
    assert [p.code for p in caught.value.problems] == ["too_many_references"]


def test_the_values_of_all_requests_are_counted_before_they_are_built():
    values = MAX_VALUES // 100
    body = {
        "Request": {
            "AccessSubject": {
                "Id": "s",
                "Attribute": [{"AttributeId": "a", "Value": list(range(values))}],
            },
            "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"]}] * 100},
        }
    }
    with pytest.raises(ValidationError) as caught:
        parse_xacml(body, max_batch=100)
    assert [p.code for p in caught.value.problems] == ["request_too_complex"]


def test_an_attribute_repeated_in_one_category_forms_one_bag():
    attributes = [{"AttributeId": "role", "Value": i} for i in range(5)]
    call = parse_xacml({"Request": {"AccessSubject": {"Attribute": attributes}}}, max_batch=1)
    assert list(call.requests[0].subject["role"]) == [0, 1, 2, 3, 4]


# --- files ------------------------------------------------------------------------------


def test_a_secret_file_that_existed_is_made_private(tmp_path: Path):
    secret_file = tmp_path / "svc.secret"
    secret_file.write_text("old")
    secret_file.chmod(0o644)
    db = f"sqlite:///{tmp_path / 'pbgm.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db, "db", "upgrade"]).exit_code == 0
    result = runner.invoke(
        main, ["--db", db, "service-account", "add", "svc", "--secret-file", str(secret_file)]
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pbgm.db").stat().st_mode) == 0o600


def test_a_secret_file_is_not_written_through_a_symlink(tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "svc.secret"
    os.symlink(target, link)
    db = f"sqlite:///{tmp_path / 'pbgm.db'}"
    runner = CliRunner()
    runner.invoke(main, ["--db", db, "db", "upgrade"])
    result = runner.invoke(
        main, ["--db", db, "service-account", "add", "svc", "--secret-file", str(link)]
    )
    assert result.exit_code != 0
    assert target.read_text() == "keep"


def test_a_write_grant_on_a_group_lets_its_holder_decide_against_it(world: World):
    world.store.add_grant(
        Grant("service", "svc-voltage", "policy_group", "data-sharing", Permission.WRITE),
        actor="test",
    )
    reply = world.call(
        "POST",
        "/api/v1/decisions",
        caller="svc-voltage",
        json_body={"subject": {"id": "x"}},
        params={"policy_group": "data-sharing"},
    )
    assert (reply.status, reply.json["decision"]) == (200, "Deny")  # deny-unless-permit
