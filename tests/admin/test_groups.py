"""The policy groups page and what is in force when: combining algorithms, members
with their validity windows at a chosen moment, only the groups the user may read."""

from __future__ import annotations

from tests.admin.conftest import Gui, url_of
from tests.admin.test_pages import text


def test_the_groups_page_lists_the_readable_groups_with_their_algorithm(gui: Gui):
    page = text(gui.client("root").get("/admin/policy-groups"))
    assert "operational-limits" in page and "data-sharing" in page
    assert "<code>deny-unless-permit</code>" in page
    assert "Operating envelopes of grid assets" in page
    mine = text(gui.client("lim-admin").get("/admin/policy-groups"))
    assert "operational-limits" in mine and "data-sharing" not in mine
    assert 'href="/admin/policies?group=operational-limits&amp;status=published">2<' in mine


def test_a_group_shows_what_is_in_force_at_a_moment(gui: Gui):
    record = gui.store.get_policy("limits-bess-01")
    windowed = {**record.document, "valid_from": "2026-04-01T00:00:00Z"}
    gui.store.update_policy("limits-bess-01", windowed, expected_version=1, actor="t")
    gui.store.set_policy_status("limits-bess-01", record.status, actor="t")  # publish v2
    client = gui.client("lim-admin")
    now = text(client.get("/admin/policy-groups/operational-limits"))
    assert '<code id="combining">deny-unless-permit</code>' in now
    assert "1 of the 2 policies listed here is in force" in now
    assert now.count('<td class="state">not yet</td>') == 1
    later = text(client.get("/admin/policy-groups/operational-limits?at=2026-05-01T00:00Z"))
    assert "2 of the 2 policies listed here are in force" in later
    assert "2026-04-01 00:00 UTC" in later
    bad = client.get("/admin/policy-groups/operational-limits?at=soon")
    assert bad.status_code == 422 and "is not a date-time" in text(bad)


def test_a_group_the_user_may_not_read_is_not_found(gui: Gui):
    client = gui.client("lim-admin")
    assert client.get("/admin/policy-groups/data-sharing").status_code == 404
    assert client.get("/admin/policy-groups/no-such-group").status_code == 404
    assert gui.client("root").get("/admin/policy-groups/no-such-group").status_code == 404
    assert gui.client("reader").get("/admin/policy-groups/data-sharing").status_code == 200
    assert gui.client("reader").get(url_of("limits-bess-01")).status_code == 404
