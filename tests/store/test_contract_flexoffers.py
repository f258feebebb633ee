"""The Store contract, FlexOffers: recorded with their state and reasons, schedules
numbered per offer, audited, and no change of the revision (against every store)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from pbgm.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from pbgm.store import FlexOfferRecord, Store
from pbgm.store.sql import SqlStore
from tests.store.conftest import FakeClock

REASON = {"path": "$.startAfterTime", "code": "deadline_passed", "message": "too late"}


@pytest.fixture(autouse=True)
def _no_flexoffers_left(store: Store) -> None:
    """The shared PostgreSQL database keeps rows between tests: start without offers."""
    if isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM flexoffer_schedules"))
            connection.execute(text("DELETE FROM flexoffers"))


def offer(offer_id: str = "fo-1", **fields: Any) -> FlexOfferRecord:
    values: dict[str, Any] = {
        "id": offer_id,
        "policy_id": "fo-template",
        "state": "accepted",
        "document": {"id": offer_id, "offeredById": "bess-01", "slices": [1, 2.5]},
    }
    values.update(fields)
    return FlexOfferRecord(**values)


def test_an_offer_is_recorded_with_its_state_and_read_back(store: Store, clock: FakeClock):
    added = store.add_flexoffer(offer(state="rejected", reasons=(REASON,)), actor="agg-1")
    assert added.created_at == added.updated_at == clock.last
    assert added.offered_by == "agg-1" and added.reasons == (REASON,)
    assert store.get_flexoffer("fo-1") == added
    assert store.get_flexoffer("fo-1").document == offer().document


def test_offers_neither_bump_the_revision_nor_go_unaudited(store: Store):
    store.add_flexoffer(offer(), actor="agg-1")
    store.add_flexoffer_schedule("fo-1", {"startTime": "x"}, state="rejected", actor="agg-1")
    assert store.revision() == 0
    entries = store.list_audit(object_id="fo-1")
    assert [(e.action, e.actor) for e in entries] == [
        ("flexoffer.schedule", "agg-1"),
        ("flexoffer.add", "agg-1"),
    ]
    assert entries[1].details == {"policy_id": "fo-template", "state": "accepted", "reasons": []}


def test_schedules_are_numbered_and_an_accepted_one_assigns_the_offer(store: Store):
    store.add_flexoffer(offer(), actor="agg-1")
    first = store.add_flexoffer_schedule(
        "fo-1", {"n": 1}, state="rejected", reasons=[REASON], actor="market"
    )
    assert store.get_flexoffer("fo-1").state == "accepted"
    second = store.add_flexoffer_schedule("fo-1", {"n": 2}, state="accepted", actor="market")
    assert (first.number, second.number) == (1, 2)
    assert first.reasons == (REASON,) and second.reasons == ()
    assert store.get_flexoffer("fo-1").state == "assigned"
    assert store.list_flexoffer_schedules("fo-1") == [first, second]


def test_documents_are_private_copies(store: Store):
    document = {"id": "fo-1", "values": [1]}
    store.add_flexoffer(offer(document=document), actor="agg-1")
    document["values"].append(2)
    store.get_flexoffer("fo-1").document["values"].append(3)
    assert store.get_flexoffer("fo-1").document == {"id": "fo-1", "values": [1]}


BAD_OFFERS = [
    ("an empty id", {"id": ""}),
    ("an unknown state", {"state": "maybe"}),
    ("a reason without a code", {"reasons": ({"path": "$", "message": "m"},)}),
    ("a document that is no object", {"document": [1, 2]}),
    ("a NaN in the document", {"document": {"x": float("nan")}}),
    ("a NUL in the policy id", {"policy_id": "a\x00b"}),
]


@pytest.mark.parametrize(("what", "fields"), BAD_OFFERS, ids=[row[0] for row in BAD_OFFERS])
def test_bad_offers_are_refused_and_leave_nothing(store: Store, what: str, fields: dict):
    with pytest.raises(InvalidInputError):
        store.add_flexoffer(offer(**fields), actor="agg-1")
    assert store.list_audit() == []


def test_duplicates_missing_offers_and_bad_schedules(store: Store):
    store.add_flexoffer(offer(), actor="agg-1")
    with pytest.raises(AlreadyExistsError):
        store.add_flexoffer(offer(state="rejected"), actor="agg-2")
    assert store.get_flexoffer("fo-1").state == "accepted"
    with pytest.raises(NotFoundError):
        store.get_flexoffer("fo-2")
    with pytest.raises(NotFoundError):
        store.add_flexoffer_schedule("fo-2", {}, state="accepted", actor="market")
    with pytest.raises(NotFoundError):
        store.list_flexoffer_schedules("fo-2")
    with pytest.raises(InvalidInputError):
        store.add_flexoffer_schedule("fo-1", {}, state="assigned", actor="market")
    assert store.list_flexoffer_schedules("fo-1") == []


def test_a_schedule_inside_a_failed_atomic_block_leaves_no_trace(store: Store):
    store.add_flexoffer(offer(), actor="agg-1")
    with pytest.raises(RuntimeError), store.atomic() as view:
        view.add_flexoffer_schedule("fo-1", {"n": 1}, state="accepted", actor="market")
        raise RuntimeError("abort")
    assert store.get_flexoffer("fo-1").state == "accepted"
    assert store.list_flexoffer_schedules("fo-1") == []
