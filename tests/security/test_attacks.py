"""The attacks of issue 10 against a live `pbgm serve` (two gunicorn workers), on SQLite
and PostgreSQL, each with its neighbours. Every test here failed on the code before
the fix; the route walk of `test_routes.py` repeats the fault classes on every endpoint."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import pytest

from tests.api.conftest import EXAMPLES, Reply, b64
from tests.security.conftest import GROUP_A, GROUP_B, Live

pytestmark = pytest.mark.slow

ADMIN = "/api/v1/admin"
SUBJECT = {"Id": "s", "Attribute": [{"AttributeId": "role", "Value": "operator"}]}


def decide(live: Live, caller: str, body: Any, **params: str) -> Reply:
    return live.as_caller(caller, "POST", "/api/v1/decisions", body, params=params)


def a_new_account(live: Live, scopes: list[str]) -> tuple[str, str]:
    client_id = f"svc-{secrets.token_hex(4)}"
    made = live.as_caller(
        "svc-admin", "POST", f"{ADMIN}/service-accounts", {"client_id": client_id, "scopes": scopes}
    )
    assert made.status == 201, made.body
    return client_id, made.json["client_secret"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- 1. one request must not hold a worker -------------------------------------------


def references(count: int) -> dict[str, Any]:
    return {
        "Request": {
            "AccessSubject": SUBJECT,
            "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"] * count}]},
        }
    }


def test_a_reference_repeated_250000_times_is_refused_at_once_in_parallel(live: Live):
    body = json.dumps(references(250_000)).encode()
    assert 1_000_000 < len(body) < 1_048_576 + 250_000
    body = json.dumps(references(200_000)).encode()  # within the 1 MiB body limit
    answers: list[Reply] = []

    def attack() -> None:
        answers.append(live.as_caller("svc-voltage", "POST", "/api/v1/decisions", raw=body))

    attackers = [threading.Thread(target=attack) for _ in range(2)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join()
    assert [(a.status, a.code) for a in answers] == [(422, "validation_failed")] * 2
    assert answers[0].json["problems"][0]["code"] == "too_many_references"
    assert live.call("GET", "/healthz").status == 200


@pytest.mark.parametrize(
    ("what", "body", "code"),
    [
        ("a reference naming one id twice", references(2), "duplicate_reference"),
        (
            "more references than a batch holds",
            {"Request": {"AccessSubject": SUBJECT,
                         "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"]}] * 101}}},
            "batch_too_large",
        ),
        (
            "100 references to one category of 2,000 values",
            {"Request": {
                "AccessSubject": {"Id": "s", "Attribute": [
                    {"AttributeId": "role", "Value": list(range(2000))}]},
                "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"]}] * 100}}},
            "request_too_complex",
        ),
        (
            "an Id longer than any reference needs",
            {"Request": {"AccessSubject": {**SUBJECT, "Id": "s" * 201},
                         "MultiRequests": {"RequestReference": [{"ReferenceId": ["s"]}]}}},
            "invalid_id",
        ),
        (
            "a product of repeated categories past the batch",
            {"Request": {"AccessSubject": [SUBJECT] * 20, "Resource": [SUBJECT] * 20}},
            "batch_too_large",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_every_part_of_a_xacml_request_is_bounded(live: Live, what: str, body: Any, code: str):
    reply = decide(live, "svc-voltage", body)
    assert (reply.status, reply.code) == (422, "validation_failed"), what
    assert code in {p["code"] for p in reply.json["problems"]}, what


def test_one_attribute_id_repeated_in_one_category_is_read_in_linear_time(live: Live):
    attributes = [{"AttributeId": "role", "Value": "x"}] * 20_000
    body = {"Request": {"AccessSubject": {"Attribute": attributes}}}
    reply = decide(live, "svc-voltage", body)
    assert reply.status == 200 and reply.json["Response"][0]["Decision"]


def test_an_error_answer_lists_at_most_100_problems(live: Live):
    reply = decide(live, "svc-voltage", {"requests": [{"subject": 1}] * 100})
    assert reply.status == 422
    assert len(reply.json["problems"]) == 100
    batch = {"requests": [{"nonsense": 1, "more": 2}] * 100}
    many = decide(live, "svc-voltage", batch)
    assert len(many.json["problems"]) == 100 and many.json["problems_omitted"] == 100


# --- 2. a token belongs to one instance of its account ----------------------------------


def test_a_deleted_accounts_token_stays_dead_after_re_creation(live: Live):
    client_id, secret = a_new_account(live, ["policies:read", "decisions:write"])
    old = live.login(client_id, secret).json["access_token"]
    assert live.call("GET", "/api/v1/policies", headers=bearer(old)).status == 200
    gone = live.as_caller("svc-admin", "DELETE", f"{ADMIN}/service-accounts/{client_id}")
    assert gone.status == 204
    again = live.as_caller(
        "svc-admin", "POST", f"{ADMIN}/service-accounts",
        {"client_id": client_id, "scopes": ["decisions:write"]},
    )  # fmt: skip
    assert again.status == 201
    for path, method in (("/api/v1/policies", "GET"), ("/api/v1/decisions", "POST")):
        reply = live.call(method, path, b"{}", {**bearer(old), "Content-Type": "application/json"})
        assert (reply.status, reply.code) == (401, "token_revoked"), path


def test_re_enabling_an_account_revives_none_of_its_tokens(live: Live):
    client_id, secret = a_new_account(live, ["policies:read"])
    old = live.login(client_id, secret).json["access_token"]
    path = f"{ADMIN}/service-accounts/{client_id}"
    assert live.as_caller("svc-admin", "PATCH", path, {"enabled": False}).status == 200
    assert live.as_caller("svc-admin", "PATCH", path, {"enabled": True}).status == 200
    reply = live.call("GET", "/api/v1/policies", headers=bearer(old))
    assert (reply.status, reply.code) == (401, "token_revoked")
    new = live.login(client_id, secret).json["access_token"]
    assert live.call("GET", "/api/v1/policies", headers=bearer(new)).status == 200


# --- 3. nobody can lock a client out --------------------------------------------------


def test_thirty_wrong_secrets_lock_out_neither_the_owner_nor_others(live: Live):
    client_id, secret = a_new_account(live, ["policies:read"])
    statuses = {live.login(client_id, "wrong").status for _ in range(30)}
    assert statuses == {401, 429}
    assert live.login(client_id, secret).status == 200
    assert live.login("svc-market").status == 200


def test_the_client_address_behind_the_trusted_proxy_is_the_forwarded_one(live: Live):
    client_id, secret = a_new_account(live, ["policies:read"])
    # 15 attempts: one of the two workers sees at least 8, and backs off after 5
    statuses = [
        live.login(client_id, "wrong", forwarded_for="203.0.113.7").status for _ in range(15)
    ]
    assert 429 in statuses
    assert live.login(client_id, "wrong", forwarded_for="203.0.113.8").status == 401
    audit = live.as_caller("svc-admin", "GET", f"{ADMIN}/audit", params={"object_id": client_id})
    addresses = {
        e["details"].get("remote_addr")
        for e in audit.json["entries"]
        if e["action"] == "token.refuse"
    }
    assert addresses == {"203.0.113.7", "203.0.113.8"}
    assert live.login(client_id, secret, forwarded_for="203.0.113.7").status == 200


# --- 4. lifecycle calls are authorized against the version they act on -----------------


def test_publishing_an_old_version_of_another_group_is_refused(live: Live):
    policy_id = f"moved-{secrets.token_hex(3)}"
    document = {"id": policy_id, "type": "operational_limits", "policy_group": GROUP_B,
                "rules": [{"id": "b-permits", "effect": "Permit"}],
                "content": {"power": {"p_min_kw": 0, "p_max_kw": 1}}}  # fmt: skip
    assert live.as_caller("svc-admin", "POST", f"{ADMIN}/policies", document).status == 201
    path = f"{ADMIN}/policies/{b64(policy_id)}"
    moved = {**document, "policy_group": GROUP_A, "rules": []}
    reply = live.as_caller("svc-admin", "PUT", path, moved, headers={"If-Match": '"v1"'})
    assert reply.status == 200
    by_a = live.as_caller("svc-limits-admin", "POST", f"{path}/publish", {"version": 1})
    assert (by_a.status, by_a.code) == (403, "permission_denied")
    history = live.as_caller("svc-limits-admin", "GET", f"{path}/versions")
    assert history.status == 403  # version 1 shows group B's rules
    by_global = live.as_caller("svc-admin", "POST", f"{path}/publish", {"version": 1})
    assert (by_global.status, by_global.json["problems"][0]["code"]) == (
        422,
        "version_in_other_group",
    )
    assert live.as_caller("svc-limits-admin", "POST", f"{path}/publish", {}).status == 200


# --- 5. decisions only against what the caller may read --------------------------------


def test_decisions_reveal_no_group_the_caller_cannot_read(live: Live):
    request = json.loads((EXAMPLES / "requests" / "kibernet-reads-pmu-data.json").read_text())
    request = {k: v for k, v in request.items() if k in ("subject", "resource", "action")}
    other = decide(live, "svc-voltage", request, policy_group=GROUP_B)
    missing = decide(live, "svc-voltage", request, policy_group="no-such-group")
    assert (other.status, other.code) == (missing.status, missing.code) == (404, "not_found")
    everything = decide(live, "svc-voltage", request)
    assert everything.status == 200
    assert everything.json["decision"] == "NotApplicable"
    assert "kibernet-data-access" not in everything.body.decode()
    reader = decide(live, "svc-admin", request)  # no read grant on `data-sharing` either
    assert "kibernet-data-access" not in reader.body.decode()


# --- 6. numbers -----------------------------------------------------------------------


HUGE = int("9" * 4000)
EXAMPLES_OFFER = EXAMPLES / "flexoffers" / "offer-bess-01-valid.json"


def test_a_4000_digit_flexoffer_and_schedule_are_refused_not_500(live: Live):
    offer = json.loads((EXAMPLES_OFFER).read_text())
    offer["id"] = f"fo-{secrets.token_hex(4)}"
    huge = {**offer, "totalEnergyConstraint": {"lower": 0, "upper": HUGE}}
    reply = live.as_caller("svc-market", "POST", "/api/v1/flexoffers", huge)
    assert (reply.status, reply.code) == (400, "number_out_of_range")
    assert live.as_caller("svc-market", "POST", "/api/v1/flexoffers", offer).status == 201
    schedule = {"energyAmount": [HUGE]}
    path = f"/api/v1/flexoffers/{b64(offer['id'])}/schedule"
    reply = live.as_caller("svc-market", "POST", path, schedule)
    assert (reply.status, reply.code) == (400, "number_out_of_range")


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("GET", f"{ADMIN}/audit", {"before_id": "2147483648"}, None, 400),
        ("GET", f"{ADMIN}/audit", {"before_id": "9" * 30}, None, 400),
        ("GET", f"{ADMIN}/audit", {"limit": "9" * 30}, None, 400),
        ("PATCH", f"{ADMIN}/grants/2147483648", None, {"enabled": False}, 404),
        ("DELETE", f"{ADMIN}/grants/{'9' * 40}", None, None, 404),
        ("POST", f"{ADMIN}/policies/{b64('limits-bess-01')}/publish", None,
         {"version": 2147483648}, 422),
        ("POST", f"{ADMIN}/policies/{b64('limits-bess-01')}/rollback", None,
         {"version": 2**63}, 422),
        ("GET", "/api/v1/policies", {"since_revision": "9" * 30}, None, 400),
    ],
)  # fmt: skip
def test_numbers_beyond_the_columns_are_4xx_on_postgresql_too(
    live: Live, method: str, path: str, params: Any, body: Any, status: int
):
    reply = live.as_caller("svc-admin", method, path, body, params=params)
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"


# --- 7. ids are global, and a taken id names no owner ---------------------------------


def test_a_taken_policy_id_is_409_without_naming_its_group(live: Live):
    content = {"power": {"p_min_kw": 0, "p_max_kw": 1}}
    document = {"id": "kibernet-data-access", "type": "operational_limits",
                "policy_group": GROUP_A, "content": content}  # fmt: skip
    reply = live.as_caller("svc-limits-admin", "POST", f"{ADMIN}/policies", document)
    assert (reply.status, reply.code) == (409, "already_exists")
    assert "unique across every policy group" in reply.json["detail"]
    assert GROUP_B not in reply.body.decode()


# --- 8. the decision log is bounded ------------------------------------------------------


def test_a_decision_with_a_large_attribute_is_logged_cut_and_marked(live: Live):
    request = {"subject": {"id": "op-anna", "note": "x" * 900_000},
               "resource": {"asset_id": "bess-01"}, "action": {"id": "write"}}  # fmt: skip
    assert decide(live, "svc-voltage", request).status == 200
    cut: list[Any] = []
    deadline = time.monotonic() + 10  # the log is written off the request path
    while not cut and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = live.as_caller(
            "svc-admin", "GET", f"{ADMIN}/audit", params={"object_id": "request", "limit": "5"}
        ).json["entries"]
        cut = [
            e for e in entries if e["details"]["decisions"][0].get("request_bytes", 0) > 900_000
        ]  # this call's entry (other tests' decisions may be newer)
    (logged,) = cut[0]["details"]["decisions"]
    assert logged["request_truncated"] is True
    assert len(json.dumps(logged["request"])) <= 2048


# --- 9. the smaller ones ---------------------------------------------------------------


def test_metrics_need_a_token_with_the_metrics_scope(live: Live):
    assert live.call("GET", "/metrics").status == 401
    client_id, secret = a_new_account(live, ["metrics:read"])
    token = live.login(client_id, secret).json["access_token"]
    reply = live.call("GET", "/metrics", headers=bearer(token))
    assert reply.status == 200 and b"pbgm_http_requests_total" in reply.body


def test_the_repository_and_key_files_are_private(live: Live):
    private = list(live.keys.iterdir())
    assert len(private) >= 2  # keys.json and the key itself
    if live.db.startswith("sqlite"):  # PostgreSQL keeps its files in its own directory
        private += [live.directory / "pbgm.db"]
    for path in private:
        assert path.stat().st_mode & 0o077 == 0, path
