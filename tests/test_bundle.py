"""Bundles: reading, writing, canonical export, atomic and idempotent import."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pbgm.auth.secrets import hash_secret
from pbgm.bundle import (
    Bundle,
    BundleGroup,
    bundle_from_data,
    export_bundle,
    import_bundle,
    read_bundle,
    write_bundle,
)
from pbgm.errors import InvalidInputError, PbgmError, ValidationError
from pbgm.model import Decision, Permission, PolicyGroup, PolicyStatus
from pbgm.store.base import Grant, ServiceAccount, User
from pbgm.store.memory import MemoryStore
from pbgm.testing import (
    FrozenClock,
    decision_point,
    make_request,
    memory_store,
    permit,
    policy_document,
    sqlite_store,
)

ACTOR = "importer"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = sqlite_store(tmp_path / "pbgm.db")
    yield sql
    sql.close()


def doc(policy_id, group="voltage-control", **fields):
    return policy_document(policy_id, policy_group=group, rules=[permit("r1")], **fields)


def sample_bundle(**changes):
    bundle = Bundle(
        policies=(doc("vc-limits"), doc("fc-limits", "frequency-control")),
        policy_groups=(
            PolicyGroup("voltage-control", "deny-overrides", "Voltage control"),
            PolicyGroup("frequency-control", "permit-overrides"),
        ),
        users=(User("op-anna", "Anna"), User("op-ben", enabled=False)),
        groups=(BundleGroup("operators", "Grid operators", ("op-anna", "op-ben")),),
        grants=(
            Grant("group", "operators", "policy_group", "voltage-control", Permission.WRITE),
            Grant("user", "op-ben", "policy", "fc-limits", Permission.READ, enabled=False),
        ),
    )
    return replace(bundle, **changes)


def snapshot(store):
    return store.revision(), export_bundle(store)


# --- import ---------------------------------------------------------------------------------


def test_import_creates_everything_and_export_gives_the_bundle_back(store):
    plan = import_bundle(store, sample_bundle(), actor=ACTOR)
    assert plan.counts() == {"create": 11}
    assert plan.revision == store.revision()
    assert export_bundle(store) == sample_bundle()
    record = store.get_policy("vc-limits")
    assert (record.status, record.published_version) == (PolicyStatus.PUBLISHED, 1)
    assert store.groups_of("op-ben") == ["operators"]


def test_importing_twice_changes_nothing_the_second_time(store):
    import_bundle(store, sample_bundle(), actor=ACTOR)
    before = snapshot(store)
    plan = import_bundle(store, sample_bundle(), actor=ACTOR)
    assert plan.is_noop
    assert plan.counts() == {"unchanged": 11}
    assert snapshot(store) == before


def test_a_dry_run_plans_the_same_and_changes_nothing(store):
    before = snapshot(store)
    dry = import_bundle(store, sample_bundle(), actor=ACTOR, dry_run=True)
    assert dry.dry_run and snapshot(store) == before
    real = import_bundle(store, sample_bundle(), actor=ACTOR)
    assert dry.changes == real.changes


def test_no_publish_stores_drafts_and_a_later_import_publishes_them(store):
    import_bundle(store, sample_bundle(), actor=ACTOR, publish=False)
    assert store.get_policy("vc-limits").status is PolicyStatus.DRAFT
    plan = import_bundle(store, sample_bundle(), actor=ACTOR)
    assert [(c.key, c.action) for c in plan.changed] == [
        ("fc-limits", "publish"),
        ("vc-limits", "publish"),
    ]
    assert store.get_policy("vc-limits").status is PolicyStatus.PUBLISHED


def test_a_changed_policy_is_updated_and_published_as_a_new_version(store):
    import_bundle(store, sample_bundle(), actor=ACTOR)
    changed = sample_bundle(policies=(doc("vc-limits", description="tighter"),))
    plan = import_bundle(store, changed, actor=ACTOR, reason="tighten limits")
    assert [(c.key, c.action) for c in plan.changed] == [("vc-limits", "update")]
    record = store.get_policy("vc-limits")
    assert (record.version, record.published_version) == (2, 2)
    assert store.policy_versions("vc-limits")[1].reason == "tighten limits"


def test_enabled_flags_of_users_and_grants_follow_the_bundle(store):
    import_bundle(store, sample_bundle(), actor=ACTOR)
    flipped = sample_bundle(
        users=(User("op-anna", "Anna"), User("op-ben")),
        grants=(Grant("user", "op-ben", "policy", "fc-limits", Permission.READ),),
    )
    plan = import_bundle(store, flipped, actor=ACTOR)
    assert {(c.kind, c.action) for c in plan.changed} == {("user", "enable"), ("grant", "enable")}
    assert store.get_user("op-ben").enabled
    assert all(g.enabled for g in store.list_grants(principal="op-ben"))


def test_every_problem_of_every_policy_is_reported_before_anything_changes(store):
    bad_type = doc("p-type", policy_type="weather")
    bad_rule = doc("p-rule")
    bad_rule["rules"] = [{"id": "r1", "effect": "Maybe"}]
    bundle = Bundle(
        policies=(bad_type, doc("p-good"), bad_rule, doc("p-good")),
        sources=("policies/type.json", "policies/good.json", "policies/rule.json", "copy.json"),
    )
    before = snapshot(store)
    with pytest.raises(ValidationError) as caught:
        import_bundle(store, bundle, actor=ACTOR)
    located = {(p.path.split(":")[0], p.code) for p in caught.value.problems}
    assert ("policies/type.json", "unknown_policy_type") in located
    assert any(src == "policies/rule.json" for src, _ in located)
    assert any(code == "duplicate_id" for _, code in located)
    assert snapshot(store) == before


def test_a_failure_in_the_middle_of_an_import_keeps_nothing(store):
    bundle = sample_bundle(users=(User("op-anna"), User("op-ben"), User("bad\x00name")))
    before = snapshot(store)
    with pytest.raises(PbgmError):
        import_bundle(store, bundle, actor=ACTOR)
    assert snapshot(store) == before


def test_references_to_unknown_principals_and_groups_are_problems(store):
    bundle = sample_bundle(
        users=(User("op-anna"),),
        groups=(BundleGroup("operators", members=("op-anna", "op-zed")),),
        grants=(
            Grant("user", "op-ghost", "policy", "vc-limits", Permission.READ),
            Grant("group", "operators", "policy_group", "no-such-group", Permission.READ),
        ),
    )
    with pytest.raises(ValidationError) as caught:
        import_bundle(store, bundle, actor=ACTOR)
    codes = sorted(p.code for p in caught.value.problems)
    assert codes == ["unknown_member", "unknown_principal", "unknown_target"]
    assert store.list_policies() == []


def test_progress_is_reported_up_to_the_total(store):
    calls = []
    import_bundle(store, sample_bundle(), actor=ACTOR, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 11) for i in range(1, 12)]


def test_every_phase_is_reported_from_zero_to_its_total(store):
    seen: dict[str, list[tuple[int, int]]] = {}
    import_bundle(
        store,
        sample_bundle(),
        actor=ACTOR,
        phases=lambda p, d, t: seen.setdefault(p, []).append((d, t)),
    )
    assert list(seen) == ["validating", "planning", "writing"]
    assert seen["validating"][0][0] == 0 and seen["validating"][-1][0] == seen["validating"][-1][1]
    assert seen["writing"][-1] == (11, 11)


# --- export ---------------------------------------------------------------------------------


def test_export_never_carries_secrets(store, tmp_path):
    import_bundle(store, sample_bundle(), actor=ACTOR)
    store.set_user_password_hash("op-anna", hash_secret("hunter2"), actor=ACTOR)
    store.add_service_account(ServiceAccount("kibernet", hash_secret("s3cret")), actor=ACTOR)
    store.add_grant(
        Grant("service", "kibernet", "policy", "vc-limits", Permission.READ), actor=ACTOR
    )
    text = json.dumps(_tree_of(write_bundle(export_bundle(store), tmp_path / "b.json")))
    assert "scrypt" not in text and "password" not in text and "hunter2" not in text
    assert "kibernet" in text


def test_export_of_one_group_holds_its_policies_and_grants_only(store):
    import_bundle(store, sample_bundle(), actor=ACTOR)
    bundle = export_bundle(store, policy_group="frequency-control")
    assert [p["id"] for p in bundle.policies] == ["fc-limits"]
    assert [g.id for g in bundle.policy_groups] == ["frequency-control"]
    assert [g.target for g in bundle.grants] == ["fc-limits"]
    assert export_bundle(store, include_principals=False).users == ()


@pytest.mark.parametrize("form", ["directory", "bundle.json", "bundle.yaml"])
def test_writing_is_canonical_and_reading_gives_the_bundle_back(tmp_path, form):
    bundle = sample_bundle(policies=(doc("vc-limits"), doc("wunsiedel/trafo:süd")))
    first = write_bundle(bundle, tmp_path / "one" / form)
    second = write_bundle(read_bundle(first), tmp_path / "two" / form)
    assert read_bundle(second) == bundle
    assert _tree_of(first) == _tree_of(second)


def _tree_of(path):
    if path.is_file():
        return {path.name: path.read_text()}
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def test_writing_a_directory_removes_stale_policy_files(tmp_path):
    write_bundle(sample_bundle(), tmp_path)
    write_bundle(sample_bundle(policies=(doc("vc-limits"),)), tmp_path)
    assert sorted(p.name for p in (tmp_path / "policies").iterdir()) == ["vc-limits.json"]


def test_the_example_bundle_imports_and_reimports_as_unchanged():
    store = MemoryStore()
    plan = import_bundle(store, read_bundle(EXAMPLES), actor=ACTOR)
    assert plan.counts().get("create", 0) >= 6
    assert import_bundle(store, read_bundle(EXAMPLES), actor=ACTOR).is_noop


def test_the_testing_helpers_give_a_ready_store_and_pdp():
    store = memory_store(EXAMPLES)
    pdp = decision_point(store, "data-sharing")
    request = make_request(
        subject={"id": "svc-kibernet"},
        resource={"topic": "/location_10003/30025/edgePMU3 ch1 amplitude"},
        action={"id": "subscribe"},
    )
    assert pdp.decide(request, now=FrozenClock()()).decision is Decision.PERMIT
    drafts = memory_store(policies=[doc("p1")], publish=False)
    assert drafts.get_policy("p1").status is PolicyStatus.DRAFT


# --- reading: every problem, located ----------------------------------------------------------


def test_a_directory_with_unreadable_files_lists_every_one(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bad.json").write_text('{"id": ')
    (tmp_path / "policies" / "bad.yaml").write_text("id: [unclosed\n")
    (tmp_path / "bundle.json").write_text(json.dumps({"format": "pbgm/bundle/v1", "users": [7]}))
    with pytest.raises(ValidationError) as caught:
        read_bundle(tmp_path)
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == ["bundle.json:$.users[0]", "policies/bad.json", "policies/bad.yaml"]


def test_a_malformed_single_file_bundle_is_an_input_error(tmp_path):
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(InvalidInputError) as caught:
        read_bundle(tmp_path / "b.json")
    assert caught.value.code == "malformed_document"


BAD_SECTIONS = [
    # what is checked, bundle document, path of the problem, code
    ("wrong format marker", {"format": "pbgm/bundle/v0"}, "$.format", "unknown_format"),
    (
        "unknown section",
        {"format": "pbgm/bundle/v1", "roles": []},
        "$.roles",
        "additional_property",
    ),
    ("section not a list", {"format": "pbgm/bundle/v1", "users": {}}, "$.users", "type"),
    (
        "user without a name",
        {"format": "pbgm/bundle/v1", "users": [{}]},
        "$.users[0].name",
        "required",
    ),
    (
        "unknown permission",
        {
            "format": "pbgm/bundle/v1",
            "grants": [
                {
                    "principal_kind": "user",
                    "principal": "a",
                    "target_kind": "policy",
                    "target": "p",
                    "permission": "owner",
                }
            ],
        },
        "$.grants[0].permission",
        "enum",
    ),
    (
        "unknown principal kind",
        {
            "format": "pbgm/bundle/v1",
            "grants": [
                {
                    "principal_kind": "robot",
                    "principal": "a",
                    "target_kind": "policy",
                    "target": "p",
                    "permission": "read",
                }
            ],
        },
        "$.grants[0].principal_kind",
        "enum",
    ),
    (
        "members not names",
        {"format": "pbgm/bundle/v1", "groups": [{"name": "g", "members": [1]}]},
        "$.groups[0].members",
        "type",
    ),
    (
        "enabled not a flag",
        {"format": "pbgm/bundle/v1", "users": [{"name": "a", "enabled": "yes"}]},
        "$.users[0].enabled",
        "type",
    ),
]


@pytest.mark.parametrize(("what", "data", "path", "code"), BAD_SECTIONS)
def test_bundle_documents_are_checked(what, data, path, code):
    problems = []
    bundle_from_data(data, source="b.json", problems=problems, with_policies=True)
    assert [(p.path, p.code) for p in problems] == [(f"b.json:{path}", code)]
