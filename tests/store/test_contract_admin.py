"""The Store contract, the admin GUI's reads: policies a page at a time with filters
and visibility, counts per facet, the audit log by actor, object and period,
FlexOffers newest first, and a service account's secret rotated (every store)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from pbgm.auth import hash_secret
from pbgm.errors import InvalidInputError, NotFoundError
from pbgm.model import PolicyStatus
from pbgm.store import (
    AuditQuery,
    FlexOfferRecord,
    PolicyCount,
    PolicyQuery,
    ServiceAccount,
    Store,
)
from pbgm.store.sql import SqlStore
from tests.store.conftest import START, FakeClock, policy_doc, table_ids

HASH = hash_secret("first-secret")


@pytest.fixture(autouse=True)
def _no_flexoffers_left(store: Store) -> None:
    if isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM flexoffer_schedules"))
            connection.execute(text("DELETE FROM flexoffers"))


def fill(store: Store) -> None:
    """Twelve policies in three groups; the `b_` ids sort before the `b-` ones in
    binary order, whatever the database's collation says."""
    groups = ("grid-a", "grid-b", "market")
    for i in range(12):
        group = groups[i % 3]
        kind = "flexoffer" if group == "market" else "operational_limits"
        store.create_policy(
            policy_doc(
                f"b{'_-'[i % 2]}{i:02d}", policy_group=group, type=kind, asset_id=f"Asset-{i}"
            ),
            actor="seed",
        )
    store.set_policy_status("b-01", PolicyStatus.PUBLISHED, actor="seed")
    store.set_policy_status("b_00", PolicyStatus.PUBLISHED, actor="seed")


PAGES = [
    ("everything, in binary id order", PolicyQuery(), 12, None),
    ("one group", PolicyQuery(policy_group="grid-a"), 4, {"grid-a"}),
    ("visible groups only", PolicyQuery(visible_groups={"grid-b"}), 4, {"grid-b"}),
    ("nothing visible", PolicyQuery(visible_groups=set()), 0, set()),
    ("a visible group plus one granted policy",
     PolicyQuery(visible_groups={"grid-b"}, visible_ids={"b_00"}), 5, {"grid-a", "grid-b"}),
    ("by type", PolicyQuery(policy_type="flexoffer"), 4, {"market"}),
    ("by status", PolicyQuery(status=PolicyStatus.PUBLISHED), 2, {"grid-a", "grid-b"}),
    ("by asset", PolicyQuery(asset_id="Asset-3"), 1, {"grid-a"}),
    ("search on the id, any case", PolicyQuery(search="B_0"), 5, None),
    ("search on the asset id", PolicyQuery(search="asset-1"), 3, None),
    ("search takes % and _ literally", PolicyQuery(search="%"), 0, set()),
]  # fmt: skip


@pytest.mark.parametrize(("what", "query", "total", "groups"), PAGES, ids=table_ids(PAGES))
def test_a_page_of_policies_matches_its_filters(store: Store, what, query, total, groups):
    fill(store)
    page = store.page_policies(query, offset=0, limit=50)
    assert page.total == len(page.records) == total
    ids = [r.id for r in page.records]
    assert ids == sorted(ids)
    if groups is not None:
        assert {r.policy_group for r in page.records} == groups


def test_pages_cut_the_sorted_list_and_count_all(store: Store):
    fill(store)
    every = [r.id for r in store.page_policies(PolicyQuery(), limit=50).records]
    assert every[:2] == ["b-01", "b-03"]  # `-` sorts before `_` in binary order
    pages = [store.page_policies(PolicyQuery(), offset=o, limit=5) for o in (0, 5, 10)]
    assert [len(p.records) for p in pages] == [5, 5, 2]
    assert [r.id for p in pages for r in p.records] == every
    assert {p.total for p in pages} == {12}
    assert store.page_policies(PolicyQuery(), offset=40, limit=5).records == ()


def test_a_page_carries_the_published_document(store: Store):
    fill(store)
    (record,) = store.page_policies(PolicyQuery(search="b-01")).records
    assert record.published_version == 1 and record.published_document == record.document


def test_newest_changes_first(store: Store, clock: FakeClock):
    fill(store)
    store.update_policy(
        "b-05", policy_doc("b-05", policy_group="grid-c"), expected_version=1, actor="x"
    )
    page = store.page_policies(PolicyQuery(order="updated"), limit=3)
    assert page.records[0].id == "b-05"
    assert page.records[0].updated_at >= page.records[1].updated_at >= page.records[2].updated_at


BAD_PAGES = [
    ("negative offset", {"offset": -1}),
    ("zero limit", {"limit": 0}),
    ("huge limit", {"limit": 1001}),
    ("boolean limit", {"limit": True}),
    ("unknown order", {"query": PolicyQuery(order="random")}),
    ("NUL in search", {"query": PolicyQuery(search="a\x00")}),
]


@pytest.mark.parametrize(("what", "arguments"), BAD_PAGES, ids=table_ids(BAD_PAGES))
def test_bad_page_arguments_are_refused(store: Store, what, arguments):
    arguments = dict(arguments)
    query = arguments.pop("query", PolicyQuery())
    with pytest.raises(InvalidInputError):
        store.page_policies(query, **arguments)


def test_counts_per_group_type_and_status(store: Store):
    assert store.policy_counts() == []
    fill(store)
    counts = store.policy_counts()
    assert PolicyCount("grid-a", "operational_limits", PolicyStatus.PUBLISHED, 1) in counts
    assert PolicyCount("grid-a", "operational_limits", PolicyStatus.DRAFT, 3) in counts
    assert PolicyCount("market", "flexoffer", PolicyStatus.DRAFT, 4) in counts
    assert sum(c.count for c in counts) == 12
    assert counts == sorted(counts, key=lambda c: (c.policy_group, c.type, c.status))


def test_the_audit_log_by_actor_object_action_and_period(store: Store, clock: FakeClock):
    store.create_policy(policy_doc("p1"), actor="anna")
    middle = clock.last
    store.create_policy(policy_doc("p2"), actor="ben")
    store.set_policy_status("p1", PolicyStatus.PUBLISHED, actor="ben")
    store.record_audit(actor="ben", action="token_issue", object_type="x", object_id="p1")

    def actions(**fields):
        return [(e.actor, e.action, e.object_id) for e in store.search_audit(AuditQuery(**fields))]

    assert actions(actor="ben") == [
        ("ben", "token_issue", "p1"), ("ben", "policy.publish", "p1"),
        ("ben", "policy.create", "p2"),
    ]  # fmt: skip
    assert actions(object_id="p1", object_type="policy") == [
        ("ben", "policy.publish", "p1"), ("anna", "policy.create", "p1"),
    ]  # fmt: skip
    assert actions(action_prefix="policy.p") == [("ben", "policy.publish", "p1")]
    assert actions(action_prefix="token_") == [("ben", "token_issue", "p1")]
    assert actions(action_prefix="token%") == []
    assert actions(until=middle + timedelta(seconds=1)) == [("anna", "policy.create", "p1")]
    assert [
        e.actor for e in store.search_audit(AuditQuery(since=middle + timedelta(seconds=1)))
    ] == ["ben"] * 3
    newest = store.search_audit(AuditQuery(), limit=2)
    older = store.search_audit(AuditQuery(before_id=newest[-1].id))
    assert [e.id for e in newest + older] == sorted((e.id for e in newest + older), reverse=True)
    assert len(newest + older) == 4
    with pytest.raises(InvalidInputError):
        store.search_audit(AuditQuery(), limit=0)
    with pytest.raises(InvalidInputError):
        store.search_audit(AuditQuery(since=START.replace(tzinfo=None)))


def test_flexoffers_newest_first_by_template_and_state(store: Store):
    for number, (policy_id, state) in enumerate(
        [("t1", "accepted"), ("t2", "rejected"), ("t1", "rejected"), ("t1", "accepted")]
    ):
        record = FlexOfferRecord(f"fo-{number}", policy_id, state, {"id": f"fo-{number}"})
        store.add_flexoffer(record, actor="market")
    assert [o.id for o in store.list_flexoffers()] == ["fo-3", "fo-2", "fo-1", "fo-0"]
    assert [o.id for o in store.list_flexoffers(policy_ids={"t1"})] == ["fo-3", "fo-2", "fo-0"]
    assert [o.id for o in store.list_flexoffers(state="rejected")] == ["fo-2", "fo-1"]
    assert [o.id for o in store.list_flexoffers(policy_ids=set())] == []
    assert [o.id for o in store.list_flexoffers(offset=1, limit=2)] == ["fo-2", "fo-1"]


def test_a_rotated_secret_replaces_the_hash_and_is_audited(store: Store):
    store.add_service_account(ServiceAccount("svc", HASH, ("policies:read",)), actor="seed")
    revision = store.revision()
    new_hash = hash_secret("second-secret")
    rotated = store.set_service_account_secret("svc", new_hash, actor="anna")
    assert rotated.secret_hash == new_hash == store.get_service_account("svc").secret_hash
    assert store.revision() == revision + 1
    assert store.list_audit(limit=1)[0].action == "service_account.rotate"
    with pytest.raises(InvalidInputError):
        store.set_service_account_secret("svc", "plain-secret", actor="anna")
    with pytest.raises(NotFoundError):
        store.set_service_account_secret("nobody", new_hash, actor="anna")
    assert store.get_service_account("svc").secret_hash == new_hash
