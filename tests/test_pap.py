"""The Policy Administration Point: validated writes, lifecycle, history, policy sets."""

from __future__ import annotations

import json

import pytest

from pbgm.access import AccessPoint, Principal
from pbgm.bundle import Bundle, export_bundle, import_bundle
from pbgm.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    ValidationError,
)
from pbgm.model import Decision, PolicyGroup, PolicyStatus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.store.memory import MemoryStore
from pbgm.testing import FrozenClock, make_request, permit, policy_document, sqlite_store

ACTOR = "op-anna"
READ = {"action": {"id": "read"}}


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore(clock=FrozenClock())
        return
    sql = sqlite_store(tmp_path / "pbgm.db", clock=FrozenClock())
    yield sql
    sql.close()


@pytest.fixture
def pap(store):
    return PolicyAdministrationPoint(store)


def doc(policy_id="p1", **fields):
    fields.setdefault("rules", [permit("r1", target=READ)])
    return policy_document(policy_id, policy_group="grid", **fields)


def snapshot(store):
    return store.revision(), export_bundle(store)


# --- authoring -------------------------------------------------------------------------


def test_create_stores_a_draft_version_one(pap, store):
    record = pap.create(doc(), actor=ACTOR, reason="first cut")
    assert (record.version, record.status, record.published_version) == (1, "draft", None)
    assert store.get_policy("p1").document == doc()
    [version] = store.policy_versions("p1")
    assert (version.author, version.reason, version.action) == (ACTOR, "first cut", "create")


def test_create_accepts_json_text_and_yaml_timestamps_become_strings(pap, store):
    text = json.dumps(doc(valid_from="2026-01-01T00:00:00Z"))
    pap.create(text.encode(), actor=ACTOR)
    assert store.get_policy("p1").document["valid_from"] == "2026-01-01T00:00:00Z"


def test_update_makes_a_new_version_and_keeps_history(pap, store):
    pap.create(doc(), actor=ACTOR)
    record = pap.update("p1", doc(description="v2"), expected_version=1, actor=ACTOR, reason="x")
    assert record.version == 2
    assert [v.version for v in store.policy_versions("p1")] == [1, 2]
    assert store.get_policy_version("p1", 1).document == doc()


def test_publish_retire_and_publish_an_older_version(pap, store):
    pap.create(doc(), actor=ACTOR)
    pap.update("p1", doc(description="v2"), expected_version=1, actor=ACTOR)
    record = pap.publish("p1", actor=ACTOR, version=1)
    assert (record.status, record.published_version) == (PolicyStatus.PUBLISHED, 1)
    assert pap.load_policy_set().policies[0].description == ""
    pap.publish("p1", actor=ACTOR)
    assert pap.load_policy_set().policies[0].description == "v2"
    assert pap.retire("p1", actor=ACTOR).status is PolicyStatus.RETIRED
    assert pap.load_policy_set().policies == ()


def test_rollback_adds_a_version_equal_to_the_old_one(pap, store):
    pap.create(doc(), actor=ACTOR)
    pap.publish("p1", actor=ACTOR)
    pap.update("p1", doc(description="bad"), expected_version=1, actor=ACTOR)
    pap.publish("p1", actor=ACTOR)
    record = pap.rollback("p1", 1, actor=ACTOR, reason="v2 broke voltage control")
    assert record.version == 3
    assert record.document == doc()
    assert (record.status, record.published_version) == (PolicyStatus.PUBLISHED, 3)
    history = store.policy_versions("p1")
    assert [v.action for v in history] == ["create", "update", "rollback"]
    assert history[2].reason == "v2 broke voltage control"


def test_rollback_of_a_draft_leaves_it_a_draft(pap):
    pap.create(doc(), actor=ACTOR)
    pap.update("p1", doc(description="v2"), expected_version=1, actor=ACTOR)
    assert pap.rollback("p1", 1, actor=ACTOR).status is PolicyStatus.DRAFT


def test_diff_shows_the_changed_lines_of_canonical_json(pap):
    pap.create(doc(), actor=ACTOR)
    pap.update("p1", doc(description="v2"), expected_version=1, actor=ACTOR)
    text = pap.diff("p1", 1, 2)
    assert text.startswith("--- p1@1\n+++ p1@2\n")
    assert '+  "description": "v2",' in text.splitlines()
    assert pap.diff("p1", 2, 2) == ""


# --- policy sets for the PDP -------------------------------------------------------------


def test_the_policy_set_holds_published_policies_with_the_group_combining(pap, store):
    store.put_policy_group(PolicyGroup("grid", "permit-overrides"), actor=ACTOR)
    pap.create(doc("p1"), actor=ACTOR)
    pap.create(doc("p2"), actor=ACTOR)
    pap.publish("p2", actor=ACTOR)
    policy_set = pap.load_policy_set("grid")
    assert [p.id for p in policy_set.policies] == ["p2"]
    assert policy_set.policy_combining == "permit-overrides"
    assert policy_set.revision == store.revision()
    assert pap.load_policy_set("elsewhere").policies == ()


def test_a_pdp_refreshing_from_the_pap_sees_a_publish(pap, store):
    pdp = PolicyDecisionPoint(source=pap.policy_source("grid"))
    request = make_request(action={"id": "read"})
    pap.create(doc(), actor=ACTOR)
    pdp.refresh(store.revision())
    assert pdp.decide(request).decision is Decision.NOT_APPLICABLE
    pap.publish("p1", actor=ACTOR)
    assert pdp.refresh(store.revision()) is True
    assert pdp.decide(request).decision is Decision.PERMIT
    assert pdp.refresh(store.revision()) is False


# --- bad input: a clear error with a stable code, and the store unchanged ----------------


def _oversized():
    return json.dumps(doc(description="x" * 1_100_000)).encode()


def _unknown_type():
    return doc(policy_type="weather_forecast")


def _schema_violations():
    broken = doc(rules=[{"id": "r1", "effect": "Maybe"}])
    del broken["policy_group"]
    return broken


def _import_with_one_bad_policy(store):
    bundle = Bundle(policies=(doc("p9"), _unknown_type() | {"id": "p10"}))
    return import_bundle(store, bundle, actor=ACTOR)


BAD_INPUT = [
    # what is checked, what is tried, error code, a problem code that must be listed
    (
        "malformed json",
        lambda p, a, s: p.create(b'{"id": "p2",', actor=ACTOR),
        "malformed_document",
        None,
    ),
    (
        "unknown policy type",
        lambda p, a, s: p.create(_unknown_type(), actor=ACTOR),
        "validation_failed",
        "unknown_policy_type",
    ),
    (
        "schema violations",
        lambda p, a, s: p.create(_schema_violations(), actor=ACTOR),
        "validation_failed",
        "required",
    ),
    (
        "oversized document",
        lambda p, a, s: p.create(_oversized(), actor=ACTOR),
        "document_too_large",
        None,
    ),
    (
        "stale version on update",
        lambda p, a, s: p.update("p1", doc(description="late"), expected_version=1, actor=ACTOR),
        "version_conflict",
        None,
    ),
    (
        "update naming another id",
        lambda p, a, s: p.update("p1", doc("p7"), expected_version=2, actor=ACTOR),
        "validation_failed",
        "id_mismatch",
    ),
    (
        "create of an existing id",
        lambda p, a, s: p.create(doc(), actor=ACTOR),
        "already_exists",
        None,
    ),
    (
        "bad base64 policy id",
        lambda p, a, s: a.fetch_by_policy_id("p1+/==", "grid", Principal(ACTOR)),
        "malformed_id",
        None,
    ),
    (
        "bundle with one bad policy",
        lambda p, a, s: _import_with_one_bad_policy(s),
        "validation_failed",
        "unknown_policy_type",
    ),
    (
        "rollback to a missing version",
        lambda p, a, s: p.rollback("p1", 9, actor=ACTOR),
        "not_found",
        None,
    ),
]


@pytest.mark.parametrize(("what", "attempt", "code", "problem"), BAD_INPUT)
def test_bad_input_is_refused_and_changes_nothing(pap, store, what, attempt, code, problem):
    pap.create(doc(), actor=ACTOR)
    pap.update("p1", doc(description="v2"), expected_version=1, actor=ACTOR)
    before = snapshot(store)
    with pytest.raises(PbgmError) as caught:
        attempt(pap, AccessPoint(store), store)
    error = caught.value
    assert error.code == code
    assert error.message and not error.message.endswith(".")
    if problem is not None:
        assert problem in [p.code for p in error.problems]
    assert snapshot(store) == before


def test_every_problem_of_a_document_is_reported(pap):
    with pytest.raises(ValidationError) as caught:
        pap.create(_schema_violations(), actor=ACTOR)
    paths = {p.path for p in caught.value.problems}
    assert len(caught.value.problems) >= 2
    assert any("rules[0]" in path for path in paths)


def test_errors_are_typed(pap):
    with pytest.raises(NotFoundError):
        pap.publish("nope", actor=ACTOR)
    pap.create(doc(), actor=ACTOR)
    with pytest.raises(ConflictError):
        pap.update("p1", doc(), expected_version=7, actor=ACTOR)
    with pytest.raises(AlreadyExistsError):
        pap.create(doc(), actor=ACTOR)
    with pytest.raises(InvalidInputError):
        pap.create("not json at all", actor=ACTOR)
