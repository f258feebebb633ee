"""Try it, picked from the decision log: every user sees the logged decisions of the
policies they may read, and never one of a group they cannot read (by list or by URL)."""

from __future__ import annotations

import json
from typing import Any

from pbgm.model import Permission
from pbgm.store import Grant, ServiceAccount
from tests.admin.conftest import EXAMPLES, PASSWORD_HASH, Gui

LIMITS_REQUEST = "operator-writes-bess-limits.json"
DATA_REQUEST = "kibernet-reads-pmu-data.json"


def _asked(name: str) -> dict[str, Any]:
    """The example request, marked so that a page shows whether it holds it."""
    asked = json.loads((EXAMPLES / "requests" / name).read_text())
    asked.pop("now")
    asked["environment"] = {"marker": f"logged-{name}"}
    return asked


def _decide_through_the_api(gui: Gui, group: str, asked: dict[str, Any]) -> str:
    """One call of `POST /api/v1/decisions` over the app; its logged decision."""
    token = gui.api_token("svc-pep", ("decisions:write",))
    reply = gui.app.test_client().post(
        f"/api/v1/decisions?policy_group={group}",
        json=asked,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return str(reply.get_json()["decision"])


def _log_two_groups(gui: Gui) -> dict[str, int]:
    """A decision of each group in the log; the entry id of each."""
    gui.store.add_service_account(
        ServiceAccount("svc-pep", PASSWORD_HASH, ("decisions:write",)), actor="t"
    )
    for group in ("operational-limits", "data-sharing"):
        grant = Grant("service", "svc-pep", "policy_group", group, Permission.READ)
        gui.store.add_grant(grant, actor="t")
    assert _decide_through_the_api(gui, "operational-limits", _asked(LIMITS_REQUEST)) == "Permit"
    assert _decide_through_the_api(gui, "data-sharing", _asked(DATA_REQUEST)) == "Permit"
    assert gui.app.extensions["pbgm"].decision_log.flush()
    entries = [e for e in gui.store.list_audit(limit=20) if e.action == "decision"]
    assert len(entries) == 2
    by_policy = {e.details["decisions"][0]["policy_ids"][0]: e.id for e in entries}
    return {
        "operational-limits": by_policy["limits-bess-01"],
        "data-sharing": by_policy["kibernet-data-access"],
    }


def test_a_group_admin_picks_from_the_log_only_their_groups_decisions(gui: Gui):
    ids = _log_two_groups(gui)
    client = gui.client("lim-admin")
    page = client.get("/admin/try").get_data(as_text=True)
    assert "From the decision log" in page
    assert f"log={ids['operational-limits']}" in page
    assert f"log={ids['data-sharing']}" not in page and "svc-kibernet" not in page
    picked = client.get(f"/admin/try?log={ids['operational-limits']}").get_data(as_text=True)
    assert f"logged-{LIMITS_REQUEST}" in picked
    assert '<option value="operational-limits" selected>' in picked


def test_a_decision_of_a_group_the_user_cannot_read_is_not_shown_by_url(gui: Gui):
    ids = _log_two_groups(gui)
    client = gui.client("lim-admin")
    reply = client.get(f"/admin/try?log={ids['data-sharing']}")
    assert reply.status_code == 200
    assert f"logged-{DATA_REQUEST}" not in reply.get_data(as_text=True)
    reader = gui.client("reader")
    page = reader.get("/admin/try").get_data(as_text=True)
    assert f"log={ids['data-sharing']}" in page and f"log={ids['operational-limits']}" not in page
    picked = reader.get(f"/admin/try?log={ids['data-sharing']}").get_data(as_text=True)
    assert f"logged-{DATA_REQUEST}" in picked
    other = reader.get(f"/admin/try?log={ids['operational-limits']}").get_data(as_text=True)
    assert f"logged-{LIMITS_REQUEST}" not in other


def test_a_global_admin_sees_every_logged_decision(gui: Gui):
    ids = _log_two_groups(gui)
    page = gui.client("root").get("/admin/try").get_data(as_text=True)
    assert all(f"log={i}" in page for i in ids.values())


def test_a_decision_no_policy_made_is_for_global_admins_only(gui: Gui):
    ids = _log_two_groups(gui)
    asked = {"subject": {"id": "nobody-known"}, "resource": {"x": 1}, "action": {"id": "dance"}}
    assert _decide_through_the_api(gui, "operational-limits", asked) == "Deny"  # by default
    assert gui.app.extensions["pbgm"].decision_log.flush()
    latest = gui.store.list_audit(limit=1)[0]
    assert latest.action == "decision" and latest.id not in ids.values()
    assert latest.details["decisions"][0]["policy_ids"] == []
    assert f"log={latest.id}" not in gui.client("lim-admin").get("/admin/try").get_data(
        as_text=True
    )
    assert f"log={latest.id}" in gui.client("root").get("/admin/try").get_data(as_text=True)
