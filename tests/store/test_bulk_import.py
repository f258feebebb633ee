"""Bulk import on every store: what `import_bundle` writes in bulk reads back, and decides,
exactly as the same policies created and published one call at a time; an import that
fails part-way (in a later chunk of its bulk writes) leaves the repository as it was."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from benchmarks import scale_workload as workload
from pbgm.bundle import Bundle, import_bundle
from pbgm.bundle import _transfer as transfer
from pbgm.errors import InvalidInputError
from pbgm.model import PolicyStatus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.store import MemoryStore, Store
from pbgm.testing import make_request
from tests.store.conftest import snapshot

PUBLISHED = PolicyStatus.PUBLISHED


def one_by_one(documents: list[dict[str, Any]]) -> MemoryStore:
    """The reference: each policy created and published through the PAP."""
    reference = MemoryStore()
    pap = PolicyAdministrationPoint(reference)
    for document in documents:
        pap.create(document, actor="bench", reason="bundle import")
        pap.publish(document["id"], actor="bench", reason="bundle import")
    return reference


def odd_document(k: int) -> dict[str, Any]:
    """A scale-workload document with text that JSON writes out in escapes."""
    document = workload.document(k)
    document["description"] = f"Grenzwerte für Anlage {k} ☃ \\u0000 is text, not NUL"
    document["rules"][0]["description"] = 'tab\there, quote" and é'
    return document


def test_documents_imported_in_bulk_read_back_as_given(store: Store) -> None:
    documents = [odd_document(k) for k in range(6)]
    import_bundle(store, Bundle(policies=tuple(documents)), actor="bench")
    reference = one_by_one(documents)
    for document in documents:
        record = store.get_policy(document["id"])
        assert record.document == document
        assert record.published_document == document
        assert store.policy_versions(document["id"])[0].document == document
    assert store.read_published() == reference.read_published()
    # the stored text is JSON that any reader decodes to the same document
    assert json.loads(json.dumps(store.get_policy(documents[0]["id"]).document)) == documents[0]


def test_a_nul_in_a_bulk_document_is_refused_and_nothing_is_written(store: Store) -> None:
    bad = {**workload.document(1), "description": "a\x00b"}
    before = snapshot(store)
    with pytest.raises(InvalidInputError, match="NUL"):
        store.create_policies([workload.document(0), bad], actor="bench", publish=True)
    assert snapshot(store) == before


def test_an_import_failing_in_a_later_chunk_leaves_the_repository_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_BULK", 20)  # chunks of 20: the failure is in the third
    import_bundle(store, Bundle(policies=(workload.document(1000),)), actor="first")
    documents = [workload.document(k) for k in range(50)]
    documents[45]["description"] = "valid for the schema, refused by the store: \x00"
    before = snapshot(store)
    with pytest.raises(InvalidInputError):
        import_bundle(store, Bundle(policies=tuple(documents)), actor="bench")
    assert snapshot(store) == before
    assert store.read_published(since=store.revisions().decisions).policies == ()


def test_an_imported_set_decides_as_the_same_policies_published_one_by_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_BULK", 64)  # several bulk writes
    n = 300
    documents = [workload.document(k) for k in range(n)]
    plan = import_bundle(store, Bundle(policies=tuple(documents)), actor="bench")
    assert plan.counts() == {"create": n}
    reference = one_by_one(documents)
    assert store.revisions() == reference.revisions()
    imported, expected = PolicyDecisionPoint(store=store), PolicyDecisionPoint(store=reference)
    imported.sync()
    expected.sync()
    rng = random.Random(5)
    actions = ("read", "write", "dispatch", "publish", "subscribe")
    decided: set[str] = set()
    for _ in range(600):
        k, group = rng.randrange(n + 5), rng.choice(workload.GROUPS)
        request = workload.request(k, group)
        request["action"] = {"id": rng.choice(actions)}
        request["resource"]["p_kw"] = rng.choice((-600, 0, 80, 300))
        built = make_request(**request)
        answer = imported.decide(built)
        assert answer == expected.decide(built)
        decided.add(answer.decision.value)
    assert decided >= {"Permit", "Deny", "NotApplicable"}
