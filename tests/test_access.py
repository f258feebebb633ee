"""The Access Point: strict base64 ids, grants through the PDP, not permitted == not found."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.access import (
    MAX_ID_BYTES,
    AccessPoint,
    Principal,
    compile_grants,
    decode_id,
    encode_id,
)
from pbgm.errors import InvalidInputError, MalformedIdError, NotFoundError
from pbgm.model import Decision, Permission, PolicyGroup
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Grant, Group, ServiceAccount, User
from pbgm.store.memory import MemoryStore
from pbgm.testing import permit, policy_document, sqlite_store

ACTOR = "test-admin"
ANNA = Principal("op-anna")
BEN = Principal("op-ben")
KIBERNET = Principal("kibernet", kind="service")
POLICY_GROUPS = ("voltage-control", "frequency-control")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = sqlite_store(tmp_path / "pbgm.db")
    yield sql
    sql.close()


@pytest.fixture
def repo(store):
    """Two published policies in `voltage-control`, one in `frequency-control`, a draft."""
    for group_id in POLICY_GROUPS:
        store.put_policy_group(PolicyGroup(group_id), actor=ACTOR)
    pap = PolicyAdministrationPoint(store)
    docs = [
        policy_document("vc-limits", policy_group="voltage-control", asset_id="bess-01"),
        policy_document("vc-topics", policy_group="voltage-control"),
        policy_document("fc-limits", policy_group="frequency-control", asset_id="bess-01"),
        policy_document("vc-draft", policy_group="voltage-control", asset_id="bess-01"),
    ]
    for doc in docs:
        pap.create(doc, actor=ACTOR)
    for policy_id in ("vc-limits", "vc-topics", "fc-limits"):
        pap.publish(policy_id, actor=ACTOR)
    for name in ("op-anna", "op-ben"):
        store.add_user(User(name), actor=ACTOR)
    store.add_group(Group("operators"), actor=ACTOR)
    store.add_member("operators", "op-anna", actor=ACTOR)
    store.add_service_account(ServiceAccount("kibernet", secret_hash=_hash("s3cret")), actor=ACTOR)
    return store


def _hash(secret: str) -> str:
    from pbgm.auth.secrets import hash_secret

    return hash_secret(secret)


def grant(store, principal, target, permission="read", *, principal_kind="user"):
    """Grant on a policy group when `target` names one of `POLICY_GROUPS`, else on a policy."""
    target_kind = "policy_group" if target in POLICY_GROUPS else "policy"
    return store.add_grant(
        Grant(principal_kind, principal, target_kind, target, Permission(permission)),
        actor=ACTOR,
    )


def fetch(access, policy_id, group, principal):
    return access.fetch_by_policy_id(encode_id(policy_id), group, principal)


# --- ids on the wire -----------------------------------------------------------------

GOOD_IDS = [
    ("plain ascii", "vc-limits"),
    ("unicode", "wunsiedel/trafo-süd:1"),
    ("one byte", "a"),
    ("two bytes", "ab"),
    ("exactly the limit", "x" * MAX_ID_BYTES),
]


@pytest.mark.parametrize(("what", "text"), GOOD_IDS)
def test_ids_decode_with_or_without_padding(what, text):
    padded = base64.urlsafe_b64encode(text.encode()).decode()
    assert decode_id(padded) == text
    assert decode_id(padded.rstrip("=")) == text


BAD_IDS = [
    ("empty", "", "empty"),
    ("standard alphabet plus", "YWJj+w", "url-safe"),
    ("standard alphabet slash", "YW/j", "url-safe"),
    ("whitespace", " YWJj", "url-safe"),
    ("impossible length", "YWJjZ", "length"),
    ("padding that does not fit", "YWJj=", "length"),
    ("padding in the middle", "YW=Jj", "url-safe"),
    ("non-canonical last character", "YR", "canonical"),
    ("control character", encode_id("a\nb"), "control"),
    ("nul byte", encode_id("a\x00b"), "control"),
    ("too long once decoded", encode_id("x" * (MAX_ID_BYTES + 1)), "too long"),
    ("far too long to decode", "A" * 5000, "too long"),
    ("decodes to nothing", "==", "length"),
]


@pytest.mark.parametrize(("what", "encoded", "hint"), BAD_IDS)
def test_malformed_ids_are_refused_with_a_hint(what, encoded, hint):
    with pytest.raises(MalformedIdError) as caught:
        decode_id(encoded)
    assert caught.value.code == "malformed_id"
    assert hint in caught.value.message.lower()
    assert caught.value.message == caught.value.message.rstrip(".")


def test_bytes_that_are_not_utf8_are_refused():
    encoded = base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode()
    with pytest.raises(MalformedIdError, match="UTF-8"):
        decode_id(encoded)


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=120))
def test_encode_then_decode_gives_the_id_back(text):
    assert decode_id(encode_id(text)) == text


# --- grants compiled to policies -------------------------------------------------------


def test_grants_compile_to_one_policy_per_target_without_disabled_ones():
    grants = [
        Grant("user", "a", "policy", "p1", Permission.READ),
        Grant("group", "g", "policy", "p1", Permission.ADMIN),
        Grant("user", "b", "policy_group", "grp", Permission.WRITE),
        Grant("user", "c", "policy", "p2", Permission.ADMIN, enabled=False),
    ]
    policy_set = compile_grants(grants, revision=7)
    assert [p.id for p in policy_set.policies] == ["grant:policy:p1", "grant:policy_group:grp"]
    assert policy_set.revision == 7
    assert policy_set.policy_combining == "deny-unless-permit"
    rules = {r.id: r for r in policy_set.policies[0].rules}
    principals = {
        r: next(m.values for m in rules[r].target.matches if m.name == "principals") for r in rules
    }
    assert principals["read"] == {"user:a", "group:g"}
    assert principals["admin"] == {"group:g"}


PERMISSION_TABLE = [
    # what is checked, granted permission, action asked, allowed
    ("read grant allows read", "read", "read", True),
    ("read grant does not allow write", "read", "write", False),
    ("write grant allows read", "write", "read", True),
    ("write grant allows write", "write", "write", True),
    ("write grant does not allow admin", "write", "admin", False),
    ("admin grant allows read", "admin", "read", True),
    ("admin grant allows admin", "admin", "admin", True),
]


@pytest.mark.parametrize(("what", "granted", "action", "allowed"), PERMISSION_TABLE)
def test_permission_levels_include_the_lower_ones(repo, what, granted, action, allowed):
    grant(repo, "op-ben", "vc-limits", granted)
    access = AccessPoint(repo)
    resource = {"policy_id": "vc-limits", "policy_group": "voltage-control"}
    assert access.allowed(BEN, action, resource) is allowed


def test_a_group_grant_reaches_its_members_only(repo):
    grant(repo, "operators", "voltage-control", principal_kind="group")
    access = AccessPoint(repo)
    assert fetch(access, "vc-limits", "voltage-control", ANNA).id == "vc-limits"
    with pytest.raises(NotFoundError):
        fetch(access, "vc-limits", "voltage-control", BEN)


def test_a_policy_group_grant_covers_its_policies_and_no_others(repo):
    grant(repo, "op-ben", "voltage-control")
    access = AccessPoint(repo)
    assert [p.id for p in access.readable_policies(BEN)] == ["vc-limits", "vc-topics"]


def test_a_service_account_is_matched_as_a_service_not_as_a_user(repo):
    grant(repo, "kibernet", "vc-topics", principal_kind="service")
    access = AccessPoint(repo)
    assert fetch(access, "vc-topics", "voltage-control", KIBERNET).version == 1
    impostor = Principal("kibernet", kind="user")
    with pytest.raises(NotFoundError):
        fetch(access, "vc-topics", "voltage-control", impostor)


def test_disabled_grants_users_and_service_accounts_give_nothing(repo):
    made = grant(repo, "op-ben", "vc-limits")
    grant(repo, "kibernet", "vc-limits", principal_kind="service")
    access = AccessPoint(repo)
    assert fetch(access, "vc-limits", "voltage-control", BEN).id == "vc-limits"
    repo.set_grant_enabled(made.id, False, actor=ACTOR)
    with pytest.raises(NotFoundError):
        fetch(access, "vc-limits", "voltage-control", BEN)
    repo.set_service_account_enabled("kibernet", False, actor=ACTOR)
    with pytest.raises(NotFoundError):
        fetch(access, "vc-limits", "voltage-control", KIBERNET)


def test_a_disabled_user_is_denied_even_with_a_grant(repo):
    grant(repo, "op-ben", "vc-limits", "admin")
    repo.set_user_enabled("op-ben", False, actor=ACTOR)
    response = AccessPoint(repo).authorize(BEN, "read", {"policy_id": "vc-limits"})
    assert response.decision is Decision.DENY


def test_unknown_principals_are_denied(repo):
    grant(repo, "op-ben", "vc-limits")
    ghost = Principal("ghost", groups=("operators",))
    assert not AccessPoint(repo).allowed(ghost, "read", {"policy_id": "vc-limits"})


def test_new_grants_take_effect_on_the_next_call(repo):
    access = AccessPoint(repo)
    with pytest.raises(NotFoundError):
        fetch(access, "vc-limits", "voltage-control", BEN)
    grant(repo, "op-ben", "vc-limits")
    assert fetch(access, "vc-limits", "voltage-control", BEN).id == "vc-limits"


def test_a_permit_names_the_grant_policy_that_decided(repo):
    grant(repo, "op-ben", "vc-limits", "write")
    response = AccessPoint(repo).authorize(
        BEN, "write", {"policy_id": "vc-limits", "policy_group": "voltage-control"}
    )
    assert response.decision is Decision.PERMIT
    assert response.policy_ids == ("grant:policy:vc-limits",)


# --- not permitted looks like not found ---------------------------------------------------


def _error_of(call):
    with pytest.raises(NotFoundError) as caught:
        call()
    return caught.value


def test_not_permitted_and_not_found_are_indistinguishable(repo):
    grant(repo, "op-anna", "vc-topics")
    access = AccessPoint(repo)
    forbidden = _error_of(lambda: fetch(access, "vc-limits", "voltage-control", ANNA))
    repo.delete_policy("vc-limits", actor=ACTOR)
    missing = _error_of(lambda: fetch(access, "vc-limits", "voltage-control", ANNA))
    assert type(forbidden) is type(missing)
    assert forbidden.as_dict() == missing.as_dict()
    assert "vc-limits" in missing.message


def test_a_policy_of_another_group_is_a_mismatch_only_for_its_readers(repo):
    grant(repo, "op-ben", "fc-limits")
    access = AccessPoint(repo)
    with pytest.raises(InvalidInputError) as caught:
        fetch(access, "fc-limits", "voltage-control", BEN)
    assert caught.value.code == "id_type_mismatch"
    hidden = _error_of(lambda: fetch(access, "fc-limits", "voltage-control", ANNA))
    absent = _error_of(lambda: fetch(access, "no-such", "voltage-control", ANNA))
    assert hidden.message == absent.message.replace("no-such", "fc-limits")


def test_only_published_versions_are_served(repo):
    grant(repo, "op-ben", "voltage-control")
    access = AccessPoint(repo)
    with pytest.raises(NotFoundError):
        fetch(access, "vc-draft", "voltage-control", BEN)
    pap = PolicyAdministrationPoint(repo)
    changed = policy_document(
        "vc-limits",
        policy_group="voltage-control",
        asset_id="bess-01",
        description="v2, not yet published",
    )
    pap.update("vc-limits", changed, expected_version=1, actor=ACTOR)
    served = fetch(access, "vc-limits", "voltage-control", BEN)
    assert served.version == 1
    assert "description" not in served.document
    pap.retire("vc-limits", actor=ACTOR)
    with pytest.raises(NotFoundError):
        fetch(access, "vc-limits", "voltage-control", BEN)


def test_the_etag_follows_the_published_document(repo):
    grant(repo, "op-ben", "voltage-control")
    access = AccessPoint(repo)
    first = fetch(access, "vc-limits", "voltage-control", BEN)
    assert fetch(access, "vc-limits", "voltage-control", BEN).etag == first.etag
    pap = PolicyAdministrationPoint(repo)
    changed = policy_document(
        "vc-limits", policy_group="voltage-control", asset_id="bess-01", rules=[permit()]
    )
    pap.update("vc-limits", changed, expected_version=1, actor=ACTOR)
    pap.publish("vc-limits", actor=ACTOR)
    assert fetch(access, "vc-limits", "voltage-control", BEN).etag != first.etag


# --- by asset ------------------------------------------------------------------------------


def test_fetch_by_asset_returns_the_readable_policies_of_the_type(repo):
    grant(repo, "op-ben", "voltage-control")
    access = AccessPoint(repo)
    served = access.fetch_by_asset(encode_id("bess-01"), "data_access", BEN)
    assert [p.id for p in served] == ["vc-limits"]
    grant(repo, "op-ben", "frequency-control")
    served = access.fetch_by_asset(encode_id("bess-01"), "data_access", BEN)
    assert [p.id for p in served] == ["fc-limits", "vc-limits"]


ASSET_ERRORS = [
    # what is checked, asset id (encoded), policy type, who asks, expected code
    ("unknown asset", encode_id("pv-99"), "data_access", BEN, "not_found"),
    ("asset readable by nobody", encode_id("bess-01"), "data_access", ANNA, "not_found"),
    ("asset without that type", encode_id("bess-01"), "device_qos", BEN, "id_type_mismatch"),
    ("unknown policy type", encode_id("bess-01"), "weather", BEN, "unknown_policy_type"),
    ("malformed asset id", "bess+01", "data_access", BEN, "malformed_id"),
]


@pytest.mark.parametrize(("what", "asset", "policy_type", "who", "code"), ASSET_ERRORS)
def test_fetch_by_asset_errors(repo, what, asset, policy_type, who, code):
    grant(repo, "op-ben", "voltage-control")
    with pytest.raises((NotFoundError, InvalidInputError)) as caught:
        AccessPoint(repo).fetch_by_asset(asset, policy_type, who)
    assert caught.value.code == code


def test_readable_policies_filters_by_group_and_type(repo):
    grant(repo, "op-ben", "voltage-control")
    grant(repo, "op-ben", "frequency-control")
    access = AccessPoint(repo)
    assert [p.id for p in access.readable_policies(BEN, "frequency-control")] == ["fc-limits"]
    assert access.readable_policies(BEN, policy_type="device_qos") == []
    assert access.readable_policies(ANNA) == []


# --- what the access point remembers --------------------------------------------------------

CHANGES = [
    ("a member leaves the group", lambda s: s.remove_member("operators", "op-anna", actor=ACTOR)),
    ("the user is disabled", lambda s: s.set_user_enabled("op-anna", False, actor=ACTOR)),
    ("the grant is disabled", lambda s: s.set_grant_enabled(1, False, actor=ACTOR)),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_what_is_remembered_of_a_principal_follows_the_store(repo, what, change):
    assert grant(repo, "operators", "vc-limits", principal_kind="group").id == 1
    access = AccessPoint(repo)
    assert access.allowed(ANNA, "read", {"policy_id": "vc-limits"})
    change(repo)
    assert not access.allowed(ANNA, "read", {"policy_id": "vc-limits"})


def test_after_the_first_call_a_decision_costs_one_query(tmp_path):
    from sqlalchemy import event

    store = sqlite_store(tmp_path / "pbgm.db")
    store.add_user(User("op-ben"), actor=ACTOR)
    grant(store, "op-ben", "vc-limits")
    access = AccessPoint(store)
    statements: list[str] = []  # every statement SQLite runs, the bare revision read too
    event.listen(
        store.engine, "checkout", lambda dbapi, *_: dbapi.set_trace_callback(statements.append)
    )
    for _ in range(2):
        assert access.allowed(BEN, "read", {"policy_id": "vc-limits"})
        assert not access.allowed(BEN, "write", {"policy_id": "vc-limits"})
    assert len(statements) > 4  # the first call read the grants, the user, his groups
    statements.clear()
    for _ in range(3):
        assert access.allowed(BEN, "read", {"policy_id": "vc-limits"})
    assert len(statements) == 3  # the revision, once a call
    store.close()


def test_the_revision_is_asked_at_most_every_so_often_when_told(repo):
    moments = [0.0]
    access = AccessPoint(repo, revision_every=5.0, monotonic=lambda: moments[0])
    assert not access.allowed(BEN, "read", {"policy_id": "vc-limits"})
    grant(repo, "op-ben", "vc-limits")
    moments[0] = 4.9
    assert not access.allowed(BEN, "read", {"policy_id": "vc-limits"})  # at most 5 s stale
    moments[0] = 5.0
    assert access.allowed(BEN, "read", {"policy_id": "vc-limits"})


def test_a_policy_change_does_not_compile_the_grants_again_but_a_grant_change_does(repo):
    access = AccessPoint(repo)
    assert not access.allowed(BEN, "read", {"policy_id": "vc-limits"})
    compiled = access._pdp.compiled
    pap = PolicyAdministrationPoint(repo)
    pap.create(policy_document("another", policy_group="voltage-control", rules=[permit("r")]),
               actor=ACTOR)  # fmt: skip
    pap.publish("another", actor=ACTOR)
    assert not access.allowed(BEN, "read", {"policy_id": "vc-limits"})
    assert access._pdp.compiled is compiled  # the repository moved, the grants did not
    grant(repo, "op-ben", "vc-limits")
    assert access.allowed(BEN, "read", {"policy_id": "vc-limits"})
    assert access._pdp.compiled is not compiled
