"""The GUI's flows through Flask's test client: sign-in and sessions, the editor
with its problems and conflicts, the lifecycle, try-it, import, principals, the
audit log, FlexOffers, and hostile input (fast; the browser tests repeat the
main scenarios in Chromium)."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

import pytest

from pbgm.access import encode_id
from pbgm.errors import NotFoundError
from pbgm.model import PolicyStatus
from tests.admin.conftest import EXAMPLES, PASSWORD, Gui, url_of

LIMITS = {
    "id": "limits-bess-02",
    "policy_group": "operational-limits",
    "asset_id": "bess-02",
    "description": "Envelope of the second battery",
    "rule_combining": "deny-overrides",
    "rules": json.dumps([{"id": "read", "effect": "Permit", "target": {"action": {"id": "read"}}}]),
    "content.voltage.v_nominal_v": "230",
    "content.voltage.v_min_pu": "0.9",
    "content.voltage.v_max_pu": "1.1",
    "content.power.p_min_kw": "-100",
    "content.power.p_max_kw": "100",
}


def text(reply: Any) -> str:
    return reply.get_data(as_text=True)


def problem_paths(page: str) -> list[str]:
    return re.findall(r"<li><code>([^<]*)</code> <span class=\"code\">", page)


# --- sign-in and sessions ---------------------------------------------------------------


def test_sign_in_and_out(gui: Gui):
    client = gui.client()
    wrong = client.sign_in("root", "wrong password")
    assert wrong.status_code == 401 and "wrong user name or password" in text(wrong)
    assert gui.store.list_audit(limit=1)[0].action == "gui.sign_in_failed"
    reply = client.sign_in("root")
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/"
    assert "Repository revision" in text(client.get("/admin/"))
    assert client.post("/admin/sign-out").status_code == 302
    assert client.get("/admin/").status_code == 302


def test_unknown_and_disabled_users_and_users_without_password_cannot_sign_in(gui: Gui):
    assert gui.client().sign_in("ghost").status_code == 401
    assert gui.client().sign_in("op-anna").status_code == 401  # imported: no password
    gui.store.set_user_enabled("reader", False, actor="t")
    assert gui.client().sign_in("reader").status_code == 401


def test_the_session_cookie_is_httponly_lax_scoped_and_secure_under_tls(gui: Gui):
    client = gui.client()
    client.get("/admin/sign-in")
    reply = client.post("/admin/sign-in", {"name": "root", "password": PASSWORD})
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie
    tls = gui.client()
    tls.get("/admin/sign-in", base_url="https://localhost")
    form = {"name": "root", "password": PASSWORD}
    referer = {"Referer": "https://localhost/admin/sign-in"}  # checked on TLS (CSRF)
    assert tls.post("/admin/sign-in", form, base_url="https://localhost").status_code == 400
    reply = tls.post("/admin/sign-in", form, base_url="https://localhost", headers=referer)
    assert reply.status_code == 302 and "Secure" in reply.headers["Set-Cookie"]


def test_pages_carry_security_headers(gui: Gui):
    reply = gui.client("root").get("/admin/policies")
    csp = reply.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp
        and "frame-ancestors 'none'" in csp
    )
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "<script" not in text(reply).replace(
        '<script src="/admin/static/admin.js" defer></script>', ""
    )


def test_a_session_idle_too_long_expires(gui: Gui):
    client = gui.client("root")
    gui.clock.advance(minutes=14)
    assert client.get("/admin/").status_code == 200
    gui.clock.advance(minutes=14)
    assert client.get("/admin/").status_code == 200  # used 14 minutes ago: still alive
    gui.clock.advance(minutes=16)
    reply = client.get("/admin/policies")
    assert reply.status_code == 302 and "/admin/sign-in" in reply.headers["Location"]
    assert "your session expired" in text(client.get("/admin/sign-in"))


def test_a_new_password_ends_the_other_sessions(gui: Gui):
    other = gui.client("reader")
    root = gui.client("root")
    root.get("/admin/users")
    reply = root.post(
        "/admin/users/reader/password",
        {"password": "another long one", "password_again": "another long one"},
    )
    assert reply.status_code == 302
    assert other.get(url_of("kibernet-data-access")).status_code == 302
    assert gui.client().sign_in("reader", "another long one").status_code == 302


def test_failed_sign_ins_slow_down_that_source_but_never_lock_the_user_out(gui: Gui):
    attacker = gui.client()
    here = {"environ_base": {"REMOTE_ADDR": "10.0.0.66"}}
    for _ in range(3):
        assert attacker.sign_in("root", "guess", **here).status_code == 401
    blocked = attacker.sign_in("root", PASSWORD, **here)
    assert blocked.status_code == 429 and "wait 1 s" in text(blocked)
    gui.clock.advance(seconds=1)
    assert attacker.sign_in("root", "guess", **here).status_code == 401
    assert "wait 2 s" in text(attacker.sign_in("root", "guess", **here))  # it doubles
    rightful = gui.client().sign_in("root", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert rightful.status_code == 302
    gui.clock.advance(seconds=2)
    assert attacker.sign_in("root", PASSWORD, **here).status_code == 302


def test_sign_in_redirects_only_inside_the_gui(gui: Gui):
    client = gui.client()
    client.get("/admin/sign-in")
    for target, expected in (
        ("/admin/users", "/admin/users"),
        ("https://evil.example/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/api/v1/policies", "/admin/"),
    ):
        client.post("/admin/sign-out")
        client.get("/admin/sign-in")
        reply = client.post(
            "/admin/sign-in", {"name": "root", "password": PASSWORD, "next": target}
        )
        assert reply.headers["Location"] == expected


# --- the editor --------------------------------------------------------------------------


def test_the_editor_is_generated_from_the_schema_and_labels_every_input(gui: Gui):
    page = text(gui.client("root").get("/admin/policies/new?type=operational_limits"))
    for name in (
        "content.voltage.v_min_pu",
        "content.power.q_max_kvar",
        "content.frequency.droop_pct",
        "rules",
    ):
        dom_id = "f-" + name.replace(".", "-")
        assert f'id="{dom_id}" name="{name}"' in page
        assert f'<label for="{dom_id}">' in page
    inputs = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page)
    labelled = set(re.findall(r'<label for="([^"]+)"', page))
    assert set(inputs) <= labelled


def test_create_shows_every_problem_next_to_its_field_then_saves(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    bad = {**LIMITS, "content.voltage.v_min_pu": "1.2", "content.power.p_max_kw": "lots",
           "rules": '[{"id": "r", "effect": "Maybe"}]', "valid_from": "yesterday"}  # fmt: skip
    reply = client.post("/admin/policies/new", {**bad, "policy_type": "operational_limits"})
    page = text(reply)
    assert reply.status_code == 422 and "nothing was saved" in page
    paths = problem_paths(page)
    assert "$.content.power.p_max_kw" in paths  # not a number: found before validation
    assert "$.rules[0].effect" in paths
    assert "$.valid_from" in paths
    assert any(p.startswith("$.content.voltage") for p in paths)  # min above max
    assert 'value="lots"' in page and "yesterday" in page  # nothing typed is lost
    assert 'id="f-content-power-p_max_kw-problems"' in page
    assert "Traceback" not in page
    with pytest.raises(NotFoundError):  # not stored
        gui.store.get_policy("limits-bess-02")
    reply = client.post(
        "/admin/policies/new",
        {**LIMITS, "policy_type": "operational_limits", "reason": "new battery"},
    )
    assert reply.status_code == 302 and reply.headers["Location"] == url_of("limits-bess-02")
    record = gui.store.get_policy("limits-bess-02")
    assert record.status is PolicyStatus.DRAFT and record.updated_by == "root"
    assert record.document["content"] == {
        "voltage": {"v_nominal_v": 230, "v_min_pu": 0.9, "v_max_pu": 1.1},
        "power": {"p_min_kw": -100, "p_max_kw": 100},
    }
    assert gui.store.policy_versions("limits-bess-02")[0].reason == "new battery"


def test_a_second_create_with_the_same_id_is_a_problem_at_the_id(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    reply = client.post(
        "/admin/policies/new",
        {**LIMITS, "id": "limits-bess-01", "policy_type": "operational_limits"},
    )
    assert reply.status_code == 422 and problem_paths(text(reply)) == ["$.id"]


def test_edit_round_trips_the_document_unchanged(gui: Gui):
    client = gui.client("root")
    page = text(client.get(url_of("limits-bess-01", "/edit")))
    fields = dict(
        re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="text"[^>]* value="([^"]*)"', page)
    )
    fields.update(
        {
            k: v
            for k, v in re.findall(
                r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', page
            )
        }
    )
    fields.update(
        re.findall(
            r'<select id="f-[^"]+" name="([^"]+)"[^>]*>'
            r'(?:[^<]|<option value="[^"]*">[^<]*</option>)*<option value="([^"]*)" selected',
            page,
        )
    )
    fields = {k: html.unescape(v) for k, v in fields.items()}
    before = gui.store.get_policy("limits-bess-01")
    reply = client.post(
        url_of("limits-bess-01", "/edit"),
        {**fields, "id": "limits-bess-01", "expected_version": "1"},
    )
    assert reply.status_code == 302, problem_paths(text(reply))
    after = gui.store.get_policy("limits-bess-01")
    assert after.version == 2
    assert after.document == {**before.document, "format": "pbgm/v1"}


def test_a_lost_race_shows_who_changed_what_and_keeps_the_text(gui: Gui):
    anna, ben = gui.client("root"), gui.client("lim-admin")
    anna.get("/admin/policies/new")
    anna.post("/admin/policies/new", {**LIMITS, "policy_type": "operational_limits"})
    ben.get(url_of("limits-bess-02", "/edit"))
    anna.get(url_of("limits-bess-02", "/edit"))
    saved = ben.post(
        url_of("limits-bess-02", "/edit"),
        {**LIMITS, "content.power.p_max_kw": "80", "expected_version": "1", "reason": "derated"},
    )
    assert saved.status_code == 302
    mine = {
        **LIMITS,
        "content.power.p_max_kw": "120",
        "description": "Anna's text",
        "expected_version": "1",
    }
    reply = anna.post(url_of("limits-bess-02", "/edit"), mine)
    page = text(reply)
    assert reply.status_code == 409
    assert "Someone saved this policy" in page and "lim-admin" in page and "derated" in page
    assert 'value="120"' in page and "Anna&#39;s text" in page
    assert gui.store.get_policy("limits-bess-02").document["content"]["power"]["p_max_kw"] == 80
    assert 'name="expected_version" value="2"' in page
    again = anna.post(url_of("limits-bess-02", "/edit"), {**mine, "expected_version": "2"})
    assert again.status_code == 302
    assert gui.store.get_policy("limits-bess-02").document["content"]["power"]["p_max_kw"] == 120


# --- lifecycle -------------------------------------------------------------------------------


def test_publish_needs_a_reason_goes_to_the_audit_log_and_is_served_by_the_api(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    client.post("/admin/policies/new", {**LIMITS, "policy_type": "operational_limits"})
    client.get(url_of("limits-bess-02"))
    refused = client.post(url_of("limits-bess-02", "/publish"), {"reason": "  "})
    assert refused.status_code == 422 and "needs a reason" in text(refused)
    assert gui.store.get_policy("limits-bess-02").status is PolicyStatus.DRAFT
    reply = client.post(url_of("limits-bess-02", "/publish"), {"reason": "commissioned"})
    assert reply.status_code == 302
    entry = gui.store.list_audit(limit=1, object_id="limits-bess-02")[0]
    assert (entry.actor, entry.action, entry.details["reason"]) == (
        "root",
        "policy.publish",
        "commissioned",
    )
    assert "commissioned" in text(client.get("/admin/audit?object=limits-bess-02"))
    from pbgm.model import Permission
    from pbgm.store import Grant, ServiceAccount

    gui.store.add_service_account(
        ServiceAccount("svc-t", gui.store.get_user("root").password_hash or "", ("policies:read",)),
        actor="t",
    )
    gui.store.add_grant(
        Grant("service", "svc-t", "policy_group", "operational-limits", Permission.READ), actor="t"
    )
    token = gui.api_token("svc-t", ("policies:read",))
    served = gui.app.test_client().get(
        "/api/v1/policy",
        query_string={
            "policy_id": encode_id("limits-bess-02"),
            "policy_group": "operational-limits",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert served.status_code == 200 and served.json["version"] == 1


def test_retire_and_roll_back(gui: Gui):
    client = gui.client("lim-admin")
    client.get(url_of("limits-bess-01", "/edit"))
    client.post(
        url_of("limits-bess-01", "/edit"),
        {**LIMITS, "id": "limits-bess-01", "asset_id": "bess-01", "expected_version": "1"},
    )
    client.get(url_of("limits-bess-01"))
    reply = client.post(
        url_of("limits-bess-01", "/rollback"), {"version": "1", "reason": "the new one was wrong"}
    )
    assert reply.status_code == 302
    record = gui.store.get_policy("limits-bess-01")
    assert record.version == 3 and record.published_version == 3
    assert record.document == gui.store.get_policy_version("limits-bess-01", 1).document
    assert (
        client.post(url_of("limits-bess-01", "/retire"), {"reason": "battery removed"}).status_code
        == 302
    )
    assert gui.store.get_policy("limits-bess-01").status is PolicyStatus.RETIRED
    history = text(client.get(url_of("limits-bess-01", "/history")))
    assert "the new one was wrong" in history and "battery removed" in history


def test_the_diff_shows_two_versions_side_by_side(gui: Gui):
    client = gui.client("root")
    client.get(url_of("limits-bess-01", "/edit"))
    client.post(
        url_of("limits-bess-01", "/edit"),
        {**LIMITS, "id": "limits-bess-01", "asset_id": "bess-01", "expected_version": "1"},
    )
    page = text(client.get(url_of("limits-bess-01", "/diff?from=1&to=2")))
    assert 'class="code removed"' in page and 'class="code added"' in page
    assert "&#34;p_max_kw&#34;: 100" in page or '"p_max_kw": 100' in page


def test_an_operational_limits_policy_shows_its_band_and_pq_as_svg(gui: Gui):
    page = text(gui.client("root").get(url_of("limits-bess-01")))
    assert page.count("<svg") == 2 and "voltage band from 0.9 to 1.1 per unit" in page
    assert "P from" in page and "kvar" in page


# --- try it ------------------------------------------------------------------------------------


def test_try_a_request_against_the_published_set_and_a_draft(gui: Gui):
    client = gui.client("root")
    record = gui.store.get_policy("limits-bess-01")
    draft = dict(record.document)
    draft["rules"] = [r for r in draft["rules"] if r["id"] != "operators-change-limits"]
    gui.store.update_policy("limits-bess-01", draft, expected_version=1, actor="t")
    request = (EXAMPLES / "requests" / "operator-writes-bess-limits.json").read_text()
    request = json.dumps({k: v for k, v in json.loads(request).items() if k != "now"})
    client.get("/admin/try")
    reply = client.post("/admin/try", {"policy_group": "operational-limits", "request": request,
                                       "draft_policy_id": "limits-bess-01"})  # fmt: skip
    page = text(reply)
    assert reply.status_code == 200
    published, drafted = page.split("With draft limits-bess-01 v2")
    assert '<p class="decision permit">Permit</p>' in published
    assert "limits-bess-01 (rule operators-change-limits)" in published
    assert '<p class="decision permit">' not in drafted
    assert "The draft changes this decision." in page


def test_try_shows_request_problems_by_path(gui: Gui):
    client = gui.client("root")
    client.get("/admin/try")
    reply = client.post(
        "/admin/try", {"policy_group": "operational-limits", "request": '{"subject": 5}'}
    )
    assert reply.status_code == 422 and problem_paths(text(reply)) == ["$.subject"]


# --- import and export --------------------------------------------------------------------


def bundle_text(*policies: dict[str, Any]) -> str:
    return json.dumps({"format": "pbgm/bundle/v1", "policies": list(policies)})


def new_limits(policy_id: str, v_max: float = 1.1) -> dict[str, Any]:
    return {
        "format": "pbgm/v1",
        "id": policy_id,
        "type": "operational_limits",
        "policy_group": "operational-limits",
        "content": {"voltage": {"v_nominal_v": 230, "v_min_pu": 0.9, "v_max_pu": v_max}},
    }


def test_import_previews_first_then_applies_with_progress(gui: Gui):
    client = gui.client("root")
    client.get("/admin/transfer")
    changed = dict(gui.store.get_policy("limits-pv-inv-01").document, description="changed")
    text_in = bundle_text(new_limits("imp-1"), new_limits("imp-2"), changed)
    preview = client.post("/admin/transfer/preview", {"bundle_text": text_in, "publish": "on"})
    page = text(preview)
    assert preview.status_code == 200 and "create: 2, update: 1." in page
    assert "kibernet-data-access" in page  # listed as kept: imports never delete
    revision = gui.store.revision()
    assert gui.store.revision() == revision
    carried = re.search(r'name="bundle_text" value="([^"]*)"', page).group(1)
    import html

    reply = client.post(
        "/admin/transfer/apply",
        {"bundle_text": html.unescape(carried), "publish": "on", "reason": "batch"},
    )
    page = text(reply)
    assert "3 of 3 changes applied" in page and "Imported: create 2, update 1" in page
    assert gui.store.get_policy("imp-2").status is PolicyStatus.PUBLISHED
    assert gui.store.get_policy("limits-pv-inv-01").document["description"] == "changed"


def test_a_bad_bundle_shows_every_problem_and_stores_nothing(gui: Gui):
    client = gui.client("root")
    client.get("/admin/transfer")
    revision = gui.store.revision()
    reply = client.post(
        "/admin/transfer/preview",
        {"bundle_text": bundle_text(new_limits("ok-1"), new_limits("bad", 9.0), {"id": "x"})},
    )
    assert reply.status_code == 422
    paths = problem_paths(text(reply))
    assert any("policies[1]" in p for p in paths) and any("policies[2]" in p for p in paths)
    applied = client.post(
        "/admin/transfer/apply",
        {"bundle_text": bundle_text(new_limits("ok-1"), new_limits("bad", 9.0))},
    )
    assert "The import failed: nothing was stored" in text(applied)
    assert gui.store.revision() == revision
    unreadable = client.post("/admin/transfer/preview", {"bundle_text": "{not json"})
    assert unreadable.status_code == 422 and "Traceback" not in text(unreadable)


def test_export_downloads_the_bundle(gui: Gui):
    reply = gui.client("root").get("/admin/transfer/export?policy_group=operational-limits")
    data = json.loads(reply.data)
    assert (
        reply.headers["Content-Disposition"]
        == 'attachment; filename="pbgm-bundle-operational-limits.json"'
    )
    assert sorted(p["id"] for p in data["policies"]) == ["limits-bess-01", "limits-pv-inv-01"]


# --- hostile input -------------------------------------------------------------------------


def test_script_in_a_description_is_shown_as_text(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    evil = {
        **LIMITS,
        "description": "<script>alert(1)</script>",
        "policy_type": "operational_limits",
    }
    assert client.post("/admin/policies/new", evil).status_code == 302
    for url in (
        url_of("limits-bess-02"),
        url_of("limits-bess-02", "/edit"),
        url_of("limits-bess-02", "/diff?from=1&to=1"),
    ):
        page = text(client.get(url))
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_script_in_an_id_is_refused_with_a_message_and_nothing_stored(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    revision = gui.store.revision()
    reply = client.post(
        "/admin/policies/new",
        {**LIMITS, "id": "<script>alert(1)</script>", "policy_type": "operational_limits"},
    )
    page = text(reply)
    assert reply.status_code == 422 and problem_paths(page) == ["$.id"]
    assert "<script>alert(1)</script>" not in page
    assert gui.store.revision() == revision


def test_hostile_ids_in_urls_are_not_found(gui: Gui):
    client = gui.client("root")
    for raw in ("not-base64!", base64.urlsafe_b64encode(b"\xff\xfe").decode(), "A" * 5000):
        assert client.get(f"/admin/policies/{raw}").status_code == 404


# --- principals and the audit log -------------------------------------------------------------


def test_a_service_account_secret_is_shown_once_and_rotates(gui: Gui):
    client = gui.client("root")
    client.get("/admin/service-accounts")
    reply = client.post(
        "/admin/service-accounts", {"client_id": "svc-new", "scopes": ["policies:read"]}
    )
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="secret" type="text" readonly value="([^"]+)"', text(reply)).group(1)
    api = gui.app.test_client()

    def token(with_secret: str) -> int:
        return api.post("/api/v1/token", data={"grant_type": "client_credentials"},
                        auth=("svc-new", with_secret)).status_code  # fmt: skip

    assert token(secret) == 200
    assert secret not in text(client.get("/admin/service-accounts"))
    rotated = client.post("/admin/service-accounts/svc-new/rotate")
    new_secret = re.search(r'readonly value="([^"]+)"', text(rotated)).group(1)
    assert new_secret != secret and token(new_secret) == 200 and token(secret) == 401


def test_users_groups_and_grants(gui: Gui):
    client = gui.client("root")
    client.get("/admin/users")
    assert (
        client.post(
            "/admin/users", {"name": "op-cem", "password": "short", "password_again": "short"}
        ).status_code
        == 302
    )
    assert "at least 12 characters" in text(client.get("/admin/users"))
    client.post(
        "/admin/users",
        {"name": "op-cem", "password": "long enough pw", "password_again": "long enough pw"},
    )
    client.post("/admin/groups/operators/members", {"user": "op-cem"})
    client.post(
        "/admin/grants",
        {
            "principal_kind": "group",
            "principal": "operators",
            "permission": "read",
            "target_kind": "policy_group",
            "target": "voltage-control",
        },
    )
    assert "op-cem" in gui.store.members_of("operators")
    assert any(
        g.principal == "operators" and g.target == "voltage-control"
        for g in gui.store.list_grants()
    )
    cem = gui.client()
    assert cem.sign_in("op-cem", "long enough pw").status_code == 302
    assert cem.get("/admin/policies").status_code == 200
    assert client.post("/admin/users/root/enabled", {"enabled": "false"}).status_code == 302
    assert gui.store.get_user("root").enabled  # you cannot disable yourself


def test_the_audit_log_filters_and_masks_secrets(gui: Gui):
    gui.store.record_audit(
        actor="svc-x",
        action="token.issue",
        object_type="token",
        object_id="svc-x",
        details={"client_secret": "s3cr3t-value", "nested": {"password": "hunter2"}, "scope": "a"},
    )
    client = gui.client("root")
    page = text(client.get("/admin/audit?actor=svc-x"))
    assert (
        "s3cr3t-value" not in page
        and "hunter2" not in page
        and "***" in page
        and "token.issue" in page
    )
    assert "policy.create" not in page
    assert (
        text(client.get("/admin/audit?since=2030-01-01")).count("<tr>") == 2
    )  # header + "no entries"
    bad = client.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400


# --- lists at scale and FlexOffers ----------------------------------------------------------


def test_the_list_pages_and_filters_on_the_server(gui: Gui):
    for i in range(120):
        gui.store.create_policy(new_limits(f"bulk-{i:03d}"), actor="t")
    client = gui.client("lim-admin")
    first = text(client.get("/admin/policies"))
    assert "122 policies, page 1 of 3." in first and first.count("bulk-") == 50
    last = text(client.get("/admin/policies?page=3"))
    assert last.count("bulk-") == 22 - 2  # 20 bulk ones and the two examples sorted before
    found = text(client.get("/admin/policies?q=bulk-11&status=draft"))
    assert "10 policies." in found
    assert "kibernet" not in text(client.get("/admin/policies?group=data-sharing"))


def test_the_overview_counts_what_the_user_may_read(gui: Gui):
    page = text(gui.client("lim-admin").get("/admin/"))
    assert "operational_limits</a>: 2" in page and "data_access" not in page


def test_flexoffers_list_and_validation(gui: Gui):
    from pbgm.store import FlexOfferRecord

    gui.store.add_flexoffer(
        FlexOfferRecord(
            "fo-1",
            "fo-template-bess-01",
            "rejected",
            {"id": "fo-1"},
            ({"path": "$.x", "code": "unit_mismatch", "message": "m"},),
        ),
        actor="m",
    )
    client = gui.client("root")
    assert "unit_mismatch" in text(client.get("/admin/flexoffers"))
    client.get("/admin/flexoffers/validate")
    valid = (EXAMPLES / "flexoffers" / "offer-bess-01-valid.json").read_text()
    invalid = (EXAMPLES / "flexoffers" / "offer-bess-01-invalid.json").read_text()
    ok = client.post(
        "/admin/flexoffers/validate", {"policy_id": "fo-template-bess-01", "offer_text": valid}
    )
    assert ok.status_code == 200 and "The offer is valid" in text(ok)
    bad = client.post(
        "/admin/flexoffers/validate", {"policy_id": "fo-template-bess-01", "offer_text": invalid}
    )
    assert bad.status_code == 422 and len(problem_paths(text(bad))) >= 2


def test_a_change_made_in_the_gui_sends_the_change_notice_the_api_would(gui: Gui):
    """Loaders hear of a publish in the GUI at once, as of one through the REST API: the
    notice follows every write that moved the revision, whatever surface took it; a
    write that changed nothing (a refused publish) sends none."""
    from pbgm.api._notify import install_change_notifications
    from pbgm.bus import BusMessage, MemoryBus

    bus, received = MemoryBus(), []
    install_change_notifications(gui.app, bus, gui.store)

    def keep(message: BusMessage) -> None:
        received.append(json.loads(message.payload))

    bus.subscribe("pbgm/changes", keep)
    client = gui.client("root")
    client.get("/admin/policies/new")
    client.post("/admin/policies/new", {**LIMITS, "policy_type": "operational_limits"})
    client.get(url_of("limits-bess-02"))
    client.post(url_of("limits-bess-02", "/publish"), {"reason": "  "})  # refused: no notice
    client.post(url_of("limits-bess-02", "/publish"), {"reason": "commissioned"})
    assert [(n["change"], n["policy_ids"]) for n in received] == [
        ("create_policy", []),
        ("publish", ["limits-bess-02"]),
    ]
    assert received[-1]["revision"] == gui.store.revision()
