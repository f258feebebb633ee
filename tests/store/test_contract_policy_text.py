"""The Store contract, the admin GUI's text search (`PolicyQuery.text`): a word of the
id, the asset id or the latest document (description, content, rule ids, conditions),
any case, `%` and `_` literally, with the other filters and paging (every store)."""

from __future__ import annotations

import pytest

from pbgm.errors import InvalidInputError
from pbgm.model import PolicyStatus
from pbgm.store import PolicyQuery, Store
from tests.store.conftest import policy_doc


def fill(store: Store) -> None:
    store.create_policy(
        policy_doc("lim-1", description="Envelope of the Harbour battery", asset_id="bess-01"),
        actor="seed",
    )
    store.create_policy(
        policy_doc(
            "lim-2",
            policy_group="grid-b",
            asset_id="pv-02",
            rules=[{"id": "operators-change-limits", "effect": "Permit"}],
            content={"v_min_pu": 0.9, "feeder": "north-50%"},
        ),
        actor="seed",
    )
    store.create_policy(
        policy_doc("data-3", type="data_access", asset_id=None, description="PMU topics"),
        actor="seed",
    )
    store.set_policy_status("lim-2", PolicyStatus.PUBLISHED, actor="seed")
    changed = policy_doc("data-3", type="data_access", asset_id=None, description="Harbour PMUs")
    store.update_policy("data-3", changed, expected_version=1, actor="seed")


CASES = [
    ("a word of the description, any case", PolicyQuery(text="harbour"), ["data-3", "lim-1"]),
    ("a rule id", PolicyQuery(text="operators-change"), ["lim-2"]),
    ("a value of the content", PolicyQuery(text="NORTH-50%"), ["lim-2"]),
    ("% and _ literally", PolicyQuery(text="h_50"), []),
    ("the id or the asset id", PolicyQuery(text="pv-0"), ["lim-2"]),
    ("the type", PolicyQuery(text="data_access"), ["data-3"]),
    ("with a filter", PolicyQuery(text="harbour", policy_type="data_access"), ["data-3"]),
    ("within what is visible", PolicyQuery(text="lim", visible_groups={"grid-b"}), ["lim-2"]),
    ("the latest version only", PolicyQuery(text="PMU topics"), []),
    ("with the search of ids", PolicyQuery(text="harbour", search="lim"), ["lim-1"]),
]


@pytest.mark.parametrize(("name", "query", "ids"), CASES, ids=[c[0] for c in CASES])
def test_text_finds_policies_by_what_their_document_says(
    store: Store, name: str, query: PolicyQuery, ids: list[str]
):
    fill(store)
    page = store.page_policies(query, limit=1)
    assert page.total == len(ids)
    assert [r.id for r in store.page_policies(query).records] == ids
    assert [r.id for r in page.records] == ids[:1]


@pytest.mark.parametrize("text", ["a\x00", "x" * 201])
def test_bad_text_is_refused(store: Store, text: str):
    with pytest.raises(InvalidInputError):
        store.page_policies(PolicyQuery(text=text))
