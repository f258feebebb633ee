"""The Store contract for `record_audit_batch` (the decision log's writer): it stores
what `record_audits` stores and refuses what it refuses, on every store, though it
checks each entry on its JSON text instead of on a copy."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest

from pbgm.errors import InvalidInputError, PbgmError
from pbgm.store import AuditItem, Store

STORED: list[Any] = [
    {},
    None,
    {"decisions": [{"request": {"subject": {"id": "op-anna"}}, "decision": "Permit"}]},
    {"text": 'naïve ☃ 𝄞 "quoted" \\ back\\slash \n\t\x01 control'},
    {"looks like an escape": "\\u0000 is six characters here"},
    {"nested": {"a": [1, 2.5, True, None, {"b": []}]}, "big": 2**62},
    {"tuple": (1, 2), 7: "an int key", True: "a bool key"},
    MappingProxyType({"frozen": MappingProxyType({"inner": (1,)})}),
]
REFUSED: list[Any] = [
    {"nul": "a\x00b"},
    {"a\x00key": 1},
    {"deep": [{"deeper": ["x\x00"]}]},
    {"nan": math.nan},
    {"infinite": [math.inf]},
    {"object": object()},
    ["not", "an", "object"],
    "text",
]


def _outcome(store: Store, method: str, items: list[AuditItem]) -> Any:
    try:
        getattr(store, method)(items)
    except PbgmError as error:
        return type(error)
    return [(e.actor, e.action, e.object_type, e.object_id, e.details) for e in
            store.list_audit(limit=len(items))]  # fmt: skip


@pytest.mark.parametrize("details", STORED, ids=range(len(STORED)))
def test_a_batch_stores_the_details_record_audits_stores(store: Store, details: Any) -> None:
    item = AuditItem("svc", "decision", "decision", "r1", details)
    expected = _outcome(store, "record_audits", [item])
    assert isinstance(expected, list)
    assert _outcome(store, "record_audit_batch", [item]) == expected


@pytest.mark.parametrize("details", REFUSED, ids=range(len(REFUSED)))
def test_a_batch_with_details_record_audits_refuses_writes_nothing(
    store: Store, details: Any
) -> None:
    good = AuditItem("svc", "decision", "decision", "r1", {"n": 1})
    bad = AuditItem("svc", "decision", "decision", "r2", details)
    with pytest.raises(InvalidInputError):
        store.record_audits([good, bad])
    with pytest.raises(InvalidInputError):
        store.record_audit_batch([good, bad])
    assert store.list_audit(limit=10) == []


@pytest.mark.parametrize(
    "fields",
    [("", "decision", "decision", "r1"), ("svc", "decision", "decision", "r\x00"),
     ("svc", "x" * 256, "decision", "r1"), ("svc", "decision", None, "r1")],
)  # fmt: skip
def test_a_batch_with_a_bad_id_writes_nothing(store: Store, fields: tuple[Any, ...]) -> None:
    items = [AuditItem("svc", "decision", "decision", "ok"), AuditItem(*fields)]
    with pytest.raises(InvalidInputError):
        store.record_audit_batch(items)
    assert store.list_audit(limit=10) == []


def test_a_batch_is_written_in_order_and_moves_no_revision(store: Store) -> None:
    before = store.revisions()
    items = [AuditItem("svc", "decision", "decision", f"r{i}", {"n": i}) for i in range(600)]
    assert store.record_audit_batch(items) == 600
    assert store.record_audit_batch([]) == 0
    assert store.revisions() == before
    newest = store.list_audit(limit=600)
    assert [e.details["n"] for e in newest] == list(range(599, -1, -1))
    assert len({e.at for e in newest}) == 1 and newest[0].at.utcoffset() is not None
    assert [e.id for e in newest] == sorted((e.id for e in newest), reverse=True)


def test_a_batch_in_an_atomic_block_rolls_back_with_it(store: Store) -> None:
    with pytest.raises(RuntimeError), store.atomic() as view:
        view.record_audit_batch([AuditItem("svc", "decision", "decision", "r1")])
        raise RuntimeError("undo")
    assert store.list_audit(limit=10) == []
