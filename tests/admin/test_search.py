"""The policy list's search: the description, content, rule ids and conditions too,
paged on the server, and only among the policies the user may read."""

from __future__ import annotations

from tests.admin.conftest import Gui
from tests.admin.test_pages import new_limits, text


def test_search_finds_words_of_the_description_content_and_rules(gui: Gui):
    for i in range(60):
        document = {**new_limits(f"feeder-{i:03d}"), "description": f"Harbour feeder {i}"}
        gui.store.create_policy(document, actor="t")
    client = gui.client("lim-admin")
    first = text(client.get("/admin/policies?q=HARBOUR"))
    assert "60 policies, page 1 of 2." in first and first.count(">feeder-") == 50
    second = text(client.get("/admin/policies?q=HARBOUR&page=2"))
    assert second.count(">feeder-") == 10 and 'rel="prev"' in second
    rules = text(client.get("/admin/policies?q=operators-change-limits"))
    assert "limits-bess-01" in rules and "feeder-" not in rules
    draft = text(client.get("/admin/policies?q=harbour+feeder+7&status=draft"))
    assert "1 policy." in draft and "feeder-007" in draft


def test_search_never_shows_what_the_user_may_not_read(gui: Gui):
    description = gui.store.get_policy("kibernet-data-access").document["description"]
    word = description.split()[0]
    assert "kibernet-data-access" in text(gui.client("root").get(f"/admin/policies?q={word}"))
    assert "kibernet-data-access" not in text(
        gui.client("lim-admin").get(f"/admin/policies?q={word}")
    )
