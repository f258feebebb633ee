"""The GUI's one enforcement hook: every route walked, users see only their groups,
CSRF on every form, and what is public is only the sign-in and the assets."""

from __future__ import annotations

import pytest
from flask import Flask

from pbgm.access import encode_id
from pbgm_admin.access_policy import PUBLIC_ENDPOINTS, protected_endpoints
from tests.admin.conftest import Gui, url_of

SAMPLE = {"policy_id": encode_id("limits-bess-01"), "name": "op-anna", "user": "op-anna",
          "client_id": "svc-x", "grant_id": 1, "filename": "admin.css",
          "policy_group": "operational-limits"}  # fmt: skip


def gui_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route of the GUI's blueprint."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("gui."):
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(SAMPLE[name]))
            url = url.replace(f"<path:{name}>", str(SAMPLE[name])).replace(
                f"<{name}>", str(SAMPLE[name])
            )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return sorted(found)


def test_every_endpoint_is_public_or_in_the_access_policy(gui: Gui):
    endpoints = {
        rule.endpoint for rule in gui.app.url_map.iter_rules() if rule.endpoint.startswith("gui.")
    }
    assert endpoints == PUBLIC_ENDPOINTS | protected_endpoints()
    assert gui.app.extensions["pbgm"].mounted == frozenset({"gui"})


def test_a_user_without_grants_gets_403_or_404_from_every_route(gui: Gui):
    client = gui.client("nobody")
    checked = 0
    for endpoint, method, url in gui_routes(gui.app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        reply = (
            client.get(url)
            if method == "GET"
            else client.post(url, {"policy_group": "operational-limits"})
        )
        assert (endpoint, method, reply.status_code) in {
            (endpoint, method, 403),
            (endpoint, method, 404),
        }
        assert "Cache-Control" in reply.headers
        checked += 1
    assert checked == len(protected_endpoints()) >= 41
    refused = gui.store.list_audit(limit=1)[0]
    assert (refused.actor, refused.action) == ("nobody", "gui.refuse")


def test_an_anonymous_visitor_is_sent_to_sign_in_from_every_route(gui: Gui):
    client = gui.client()
    for endpoint, method, url in gui_routes(gui.app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        reply = client.get(url) if method == "GET" else client.post(url, {})
        assert reply.status_code == 302, endpoint
        assert reply.headers["Location"].startswith("/admin/sign-in"), endpoint


def test_public_routes_are_the_sign_in_and_the_assets(gui: Gui):
    client = gui.client()
    assert client.get("/admin/sign-in").status_code == 200
    with client.client.get("/admin/static/admin.css") as reply:
        assert reply.status_code == 200 and b"font-family" in reply.data


def test_a_group_admin_sees_and_reaches_only_their_group(gui: Gui):
    client = gui.client("lim-admin")
    listed = client.get("/admin/policies").get_data(as_text=True)
    assert "limits-bess-01" in listed and "limits-pv-inv-01" in listed
    assert "kibernet-data-access" not in listed and "fo-template-bess-01" not in listed
    assert client.get(url_of("limits-bess-01")).status_code == 200
    for other in ("kibernet-data-access", "fo-template-bess-01", "no-such-policy"):
        for suffix in ("", "/history", "/diff", "/edit"):
            assert client.get(url_of(other, suffix)).status_code == 404, (other, suffix)
    reply = client.post(url_of("kibernet-data-access", "/publish"), {"reason": "x"})
    assert reply.status_code == 404
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/audit").status_code == 403


def test_moving_a_policy_to_another_group_needs_write_there(gui: Gui):
    client = gui.client("lim-admin")
    client.get(url_of("limits-bess-01", "/edit"))
    reply = client.post(
        url_of("limits-bess-01", "/edit"), {"id": "limits-bess-01", "policy_group": "data-sharing"}
    )
    assert reply.status_code == 403
    assert gui.store.get_policy("limits-bess-01").policy_group == "operational-limits"


def test_a_writer_drafts_but_cannot_publish(gui: Gui):
    client = gui.client("lim-writer")
    page = client.get(url_of("limits-bess-01")).get_data(as_text=True)
    assert ">Edit<" in page and ">Publish</button>" not in page
    reply = client.post(url_of("limits-bess-01", "/publish"), {"reason": "try"})
    assert reply.status_code == 403
    assert gui.store.get_policy("limits-bess-01").published_version == 1


def test_a_reader_reads_but_cannot_edit(gui: Gui):
    client = gui.client("reader")
    assert client.get(url_of("kibernet-data-access")).status_code == 200
    assert client.get(url_of("kibernet-data-access", "/edit")).status_code == 403
    assert client.get(url_of("limits-bess-01")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/admin/sign-out",
        "/admin/users",
        url_of("limits-bess-01", "/publish"),
        "/admin/policies/new",
    ],
)
def test_a_form_without_its_csrf_token_is_refused(gui: Gui, url: str):
    client = gui.client("root")
    revision = gui.store.revision()
    reply = client.post(url, {"name": "mallory", "reason": "x"}, csrf=False)
    assert reply.status_code == 400 and "csrf_failed" in reply.get_data(as_text=True)
    reply = client.post(url, {"name": "mallory", "reason": "x", "csrf_token": "forged"}, csrf=False)
    assert reply.status_code == 400
    assert gui.store.revision() == revision


def test_the_api_still_answers_with_its_own_hook(gui: Gui):
    client = gui.app.test_client()
    assert client.get("/api/v1/policies").status_code == 401
    assert "Set-Cookie" not in client.get("/healthz").headers
