"""Nothing typed is lost when a session expires: a form sent after the idle timeout
comes back after signing in again, for the same user only (`pbgm_admin._carry`)."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.admin.conftest import PASSWORD, Browserless, Gui, url_of
from tests.admin.test_pages import LIMITS, text

_CARRIED = re.compile(r'name="carried" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
TYPED = {
    **LIMITS,
    "id": "limits-bess-01",
    "asset_id": "bess-01",
    "description": "typed <b>before</b> the session expired",
    "content.power.p_max_kw": "123",
    "expected_version": "1",
    "reason": "derating after the inspection",
}


def _expired_post(gui: Gui, client: Browserless, url: str, data: dict[str, Any]) -> str:
    """Post `data` after the session idled out; the carried form of the sign-in page."""
    gui.clock.advance(minutes=16)
    reply = client.post(url, data)
    page = text(reply)
    assert reply.status_code == 401
    assert "your session expired before this form was sent" in page
    found = _CARRIED.search(page)
    assert found is not None
    return html.unescape(found.group(1))


def _sign_in_with(client: Browserless, name: str, carried: str) -> Any:
    data = {"name": name, "password": PASSWORD, "carried": carried}
    return client.post("/admin/sign-in", data)


def _resume_form(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)" id="resume"', page)
    assert action is not None, page
    fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(page) if k != "csrf_token"}
    return html.unescape(action.group(1)), fields


def test_an_edit_sent_after_the_session_expired_comes_back_after_signing_in(gui: Gui):
    client = gui.client("lim-admin")
    client.get(url_of("limits-bess-01", "/edit"))
    carried = _expired_post(gui, client, url_of("limits-bess-01", "/edit"), TYPED)
    assert gui.store.get_policy("limits-bess-01").version == 1  # nothing saved
    wrong = client.post(
        "/admin/sign-in", {"name": "lim-admin", "password": "x" * 12, "carried": carried}
    )
    assert wrong.status_code == 401 and _CARRIED.search(text(wrong))  # kept over a typo
    reply = _sign_in_with(client, "lim-admin", carried)
    assert reply.status_code == 200
    action, fields = _resume_form(text(reply))
    assert action == url_of("limits-bess-01", "/edit") and 'data-resume="auto"' in text(reply)
    assert fields["description"] == TYPED["description"] and fields["resume"] == "1"
    restored = client.post(action, fields)
    page = text(restored)
    assert restored.status_code == 200 and 'id="restored"' in page
    assert 'value="123"' in page and "typed &lt;b&gt;before&lt;/b&gt; the session expired" in page
    assert "derating after the inspection" in page
    assert gui.store.get_policy("limits-bess-01").version == 1  # still nothing saved
    saved = client.post(action, {k: v for k, v in fields.items() if k != "resume"})
    assert saved.status_code == 302
    record = gui.store.get_policy("limits-bess-01")
    assert (record.version, record.document["content"]["power"]["p_max_kw"]) == (2, 123)
    assert record.document["description"] == TYPED["description"]


def test_a_new_policy_sent_after_the_session_expired_is_kept_too(gui: Gui):
    client = gui.client("root")
    client.get("/admin/policies/new")
    data = {**LIMITS, "policy_type": "operational_limits"}
    carried = _expired_post(gui, client, "/admin/policies/new", data)
    action, fields = _resume_form(text(_sign_in_with(client, "root", carried)))
    page = text(client.post(action, fields))
    assert 'value="limits-bess-02"' in page and "Envelope of the second battery" in page
    assert "limits-bess-02" not in {r.id for r in gui.store.list_policies()}


def test_another_user_signing_in_gets_nothing_of_the_form(gui: Gui):
    client = gui.client("lim-admin")
    client.get(url_of("limits-bess-01", "/edit"))
    carried = _expired_post(gui, client, url_of("limits-bess-01", "/edit"), TYPED)
    reply = _sign_in_with(client, "root", carried)
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/"
    page = text(client.get("/admin/"))
    assert "discarded" in page and "typed" not in page


def test_a_forged_or_altered_carried_form_is_ignored(gui: Gui):
    client = gui.client("lim-admin")
    client.get(url_of("limits-bess-01", "/edit"))
    carried = _expired_post(gui, client, url_of("limits-bess-01", "/edit"), TYPED)
    altered = carried[:-3] + ("AAA" if not carried.endswith("AAA") else "BBB")
    reply = _sign_in_with(client, "lim-admin", altered)
    assert reply.status_code == 302 and 'id="resume"' not in text(reply)


def test_a_lifecycle_form_waits_to_be_sent_again_and_passwords_are_never_carried(gui: Gui):
    client = gui.client("root")
    client.get(url_of("limits-bess-01"))
    carried = _expired_post(
        gui, client, url_of("limits-bess-01", "/retire"), {"reason": "end of the pilot"}
    )
    page = text(_sign_in_with(client, "root", carried))
    assert "Send it again" in page and 'data-resume="auto"' not in page
    action, fields = _resume_form(page)
    assert str(gui.store.get_policy("limits-bess-01").status) == "published"
    assert client.post(action, fields).status_code == 302
    assert str(gui.store.get_policy("limits-bess-01").status) == "retired"
    client.get("/admin/users")
    secret = "a long secret password"
    data = {"name": "zoe", "password": secret, "password_again": secret}
    carried = _expired_post(gui, client, "/admin/users", data)
    page = text(_sign_in_with(client, "root", carried))
    assert secret not in page and 'name="name" value="zoe"' in page


def test_a_form_posted_without_a_session_is_not_carried(gui: Gui):
    client = gui.client()
    reply = client.post(url_of("limits-bess-01", "/edit"), TYPED)
    assert reply.status_code in (302, 400) and "carried" not in text(reply)
