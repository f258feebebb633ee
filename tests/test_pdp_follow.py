"""A decision point that follows a store (`PolicyDecisionPoint(store=...)`, `sync`,
`Follower`): it decides as one loaded from scratch after any sequence of repository
changes, reads only what changed, reloads everything when the change feed has a gap,
and, followed by the background thread, never makes a decision wait or fail while
changes are applied."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.model import Decision, PolicyGroup, PolicyStatus, Request
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import Follower, PolicyDecisionPoint
from pbgm.policy.syntax import dump_policy
from pbgm.store import Group, MemoryStore, Store
from pbgm.store.base import PublishedSet
from tests.strategies import NOW, algorithms, policies, requests

EXAMPLES = int(os.environ.get("PBGM_PDP_EXAMPLES", "60"))
GROUP = "generated"
ACTOR = "test"


def _document(policy: Any) -> dict[str, Any]:
    return dump_policy(policy)


def _scratch(store: Store, group: str | None) -> PolicyDecisionPoint:
    """A decision point loaded from scratch from the PAP (not through the feed)."""
    pap = PolicyAdministrationPoint(store)
    return PolicyDecisionPoint(pap.load_policy_set(group), clock=lambda: NOW)


POOL = [f"p{i}" for i in range(6)]
OPERATIONS = st.sampled_from(["publish", "update", "draft", "retire", "delete", "group"])


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        operation, policy_id = draw(OPERATIONS), draw(st.sampled_from(POOL))
        argument = draw(policies(policy_id)) if operation in ("publish", "update") else None
        if operation == "group":
            argument = draw(algorithms)
        steps.append((operation, policy_id, argument))
    return steps


def _apply(store: Store, operation: str, policy_id: str, argument: Any) -> None:
    pap = PolicyAdministrationPoint(store)
    try:
        current = store.get_policy(policy_id)
    except Exception:
        current = None
    if operation == "group":
        store.put_policy_group(PolicyGroup(GROUP, argument), actor=ACTOR)
    elif operation in ("publish", "update"):
        document = {**_document(argument), "policy_group": GROUP}
        if current is None:
            store.create_policy(document, actor=ACTOR)
        else:
            store.update_policy(policy_id, document, expected_version=current.version, actor=ACTOR)
        if operation == "publish":
            pap.publish(policy_id, actor=ACTOR)
    elif current is None:
        return
    elif operation == "draft" and current.status is PolicyStatus.PUBLISHED:
        store.set_policy_status(policy_id, PolicyStatus.DRAFT, actor=ACTOR)
    elif operation == "retire":
        store.set_policy_status(policy_id, PolicyStatus.RETIRED, actor=ACTOR)
    elif operation == "delete":
        store.delete_policy(policy_id, actor=ACTOR)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    history=histories(),
    requests_=st.lists(requests(), min_size=1, max_size=4),
    every=st.integers(1, 4),
    group=st.sampled_from([None, GROUP]),
)
def test_a_decision_point_following_a_store_decides_as_one_loaded_from_scratch(
    history, requests_, every, group
):
    store = MemoryStore()
    following = PolicyDecisionPoint(store=store, policy_group=group, clock=lambda: NOW)
    following.sync()
    for step, change in enumerate(history, start=1):
        _apply(store, *change)
        if step % every and step != len(history):
            continue  # several changes between two syncs, as a busy repository gives them
        following.sync()
        assert following.revision == store.revisions().decisions
        scratch = _scratch(store, group)
        assert [c.id for c in following.compiled.children] == [
            p.id for p in scratch.compiled.children
        ]
        for request in requests_:
            assert following.decide(request, now=NOW) == scratch.decide(request, now=NOW)


# --- what a sync reads ----------------------------------------------------------------------


class CountingStore(MemoryStore):
    """A memory store that counts the reads decision points make of it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int | None] = []

    def read_published(self, policy_group: str | None = None, *, since: int | None = None):
        self.reads.append(since)
        return super().read_published(policy_group, since=since)


def _publish(store: Store, policy_id: str, group: str = "data-sharing", **fields: Any) -> None:
    document = {
        "id": policy_id,
        "type": "data_access",
        "policy_group": group,
        "target": {"resource": {"id": policy_id}},
        "rules": [
            {
                "id": "read",
                "effect": "Permit",
                "condition": {
                    "apply": "at-least-one-member-of",
                    "args": [{"attr": "subject.groups"}, fields.pop("readers", ["ops"])],
                },
            }
        ],
        "content": {"data": {"topics": ["/data/#"]}, "consumers": {"groups": ["ops"]}},
        **fields,
    }
    pap = PolicyAdministrationPoint(store)
    try:
        version = store.get_policy(policy_id).version
        pap.update(policy_id, document, expected_version=version, actor=ACTOR)
    except Exception:
        pap.create(document, actor=ACTOR)
    pap.publish(policy_id, actor=ACTOR)


def _asks(policy_id: str, group: str = "ops") -> Request:
    return Request({"id": "u", "groups": (group,)}, {"id": policy_id}, {"id": "read"})


def test_a_sync_reads_nothing_but_the_revisions_when_nothing_changed():
    store = CountingStore()
    _publish(store, "p1")
    pdp = PolicyDecisionPoint(store=store)
    assert pdp.sync() and store.reads == [None]
    assert not pdp.sync() and store.reads == [None]
    store.create_policy({**store.get_policy("p1").document, "id": "draft"}, actor=ACTOR)
    store.add_group(Group("ops"), actor=ACTOR)
    assert not pdp.sync() and store.reads == [None]  # a draft and a group: nothing to load
    _publish(store, "p2")
    assert pdp.sync() and store.reads == [None, 1]
    assert pdp.decide(_asks("p2")).decision is Decision.PERMIT


def test_a_change_is_applied_without_compiling_the_other_policies():
    store = MemoryStore()
    for i in range(20):
        _publish(store, f"p{i:02d}")
    pdp = PolicyDecisionPoint(store=store)
    pdp.sync()
    assert pdp.decide(_asks("p03")).decision is Decision.PERMIT  # p03 compiled, leaf kept
    before = pdp.compiled
    _publish(store, "p07", readers=["admins"])
    pdp.sync()
    after = pdp.compiled
    assert after is not before
    shared = [a is b for a, b in zip(after.children, before.children, strict=True)]
    assert shared.count(False) == 1 and not shared[7]
    assert after.children[3].compiled and not after.children[7].compiled
    assert pdp.decide(_asks("p07")).decision is Decision.NOT_APPLICABLE
    assert pdp.decide(_asks("p07", "admins")).decision is Decision.PERMIT
    assert before.leaves is not None and set(after.leaves or ()) == set(before.leaves)


def test_a_decision_point_behind_the_feed_reloads_everything(monkeypatch):
    monkeypatch.setattr("pbgm.store._feed.FEED_LENGTH", 2)
    store = CountingStore()
    _publish(store, "p1")
    pdp = PolicyDecisionPoint(store=store)
    pdp.sync()
    for i in range(6):
        _publish(store, f"q{i}")
    assert pdp.sync() and store.reads == [None, 1]
    assert [c.id for c in pdp.compiled.children] == ["p1", *(f"q{i}" for i in range(6))]
    assert store.read_published(since=1).full  # the reason: the feed lost the early changes


def test_a_policy_group_change_is_applied_to_its_decision_point():
    store = MemoryStore()
    store.put_policy_group(PolicyGroup("data-sharing", "deny-overrides"), actor=ACTOR)
    _publish(store, "p1")
    pdp = PolicyDecisionPoint(store=store, policy_group="data-sharing")
    pdp.sync()
    nobody = Request({"id": "u", "groups": ("guests",)}, {"id": "p1"}, {"id": "read"})
    assert pdp.decide(nobody).decision is Decision.NOT_APPLICABLE
    store.put_policy_group(PolicyGroup("data-sharing", "deny-unless-permit"), actor=ACTOR)
    pdp.sync()
    assert pdp.decide(nobody).decision is Decision.DENY
    assert pdp.compiled.header.policy_combining == "deny-unless-permit"


def test_a_store_failure_keeps_the_current_set():
    class Failing(MemoryStore):
        failing = False

        def read_published(self, *args: Any, **kwargs: Any) -> PublishedSet:
            if self.failing:
                raise OSError("the database is away")
            return super().read_published(*args, **kwargs)

    store = Failing()
    _publish(store, "p1")
    pdp = PolicyDecisionPoint(store=store)
    pdp.sync()
    store.failing = True
    _publish(store, "p1", readers=["admins"])
    with pytest.raises(OSError):
        pdp.sync()
    assert pdp.decide(_asks("p1")).decision is Decision.PERMIT  # the set it had


# --- the follower ----------------------------------------------------------------------------


def test_the_follower_applies_changes_in_the_background():
    store = MemoryStore()
    _publish(store, "p1")
    follower = Follower(store, every=0.01)
    pdp = follower.add(PolicyDecisionPoint(store=store))
    assert not pdp.ready
    follower.start()
    try:
        assert pdp.wait_ready(5)
        assert pdp.decide(_asks("p1")).decision is Decision.PERMIT
        _publish(store, "p1", readers=["admins"])
        assert follower.settle(5)
        assert pdp.decide(_asks("p1")).decision is Decision.NOT_APPLICABLE
    finally:
        follower.stop()


def test_decisions_in_threads_while_the_follower_applies_changes_never_fail_or_wait():
    """Deciding threads against a follower moving 30 policies at a time between two
    reader groups: every decision is Permit or Deny (never an error), the 30 policies of a
    batch are always seen on the same side, and no decision takes a lock."""
    store = MemoryStore()
    for i in range(300):
        _publish(store, f"p{i:03d}", readers=["a"])
    follower = Follower(store, every=0.005)
    pdp = follower.add(PolicyDecisionPoint(store=store))
    follower.start()
    assert pdp.wait_ready(5)
    stop, failures, mixed = threading.Event(), [], []
    probes = [_asks(f"p{i:03d}", "a") for i in range(30)]

    def decide() -> None:
        while not stop.is_set():
            try:
                decided = pdp.decide_batch(probes)  # one snapshot for the batch
                if len({d.decision for d in decided}) != 1:
                    mixed.append(decided)
            except Exception as error:
                failures.append(error)

    threads = [threading.Thread(target=decide) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for step in range(12):
            group = "b" if step % 2 == 0 else "a"
            with store.atomic() as view:  # one transaction: the feed gets 30 entries at once
                for i in range(30):
                    _publish(view, f"p{i:03d}", readers=[group])
            time.sleep(0.01)
        assert follower.settle(5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        follower.stop()
    assert not failures
    assert not mixed
    assert pdp.decide(probes[0]).decision is Decision.PERMIT  # back to group `a`


def test_the_follower_retries_a_store_that_fails(caplog):
    class Flaky(MemoryStore):
        failures = 3

        def revisions(self) -> Any:
            if self.failures:
                self.failures -= 1
                raise OSError("the database is away")
            return super().revisions()

    store = Flaky()
    _publish(store, "p1")
    follower = Follower(store, every=0.001)
    pdp = follower.add(PolicyDecisionPoint(store=store))
    follower.start()
    try:
        assert pdp.wait_ready(5)
    finally:
        follower.stop()
    assert store.failures == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "pbgm.pdp"]
    assert warnings.count("cannot follow the policy store; retrying") == 1  # once per outage


def _grant_doc(policy_id: str, group: str) -> dict[str, Any]:
    return {
        "format": "pbgm/v1", "id": policy_id, "type": "data_access", "policy_group": group,
        "target": {"resource": {"id": "r"}}, "rule_combining": "first-applicable",
        "rules": [{"id": "permit", "effect": "Permit"}],
        "content": {"data": {"topics": ["/t"]}, "consumers": {"groups": ["g"]}},
    }  # fmt: skip


def test_a_decision_point_of_several_groups_follows_only_those_groups():
    """`policy_group=frozenset(...)`: the policies of those groups combined, and a policy
    that moves out of them (retired, changed group, published again) leaves the set."""
    store = MemoryStore()
    for group in ("a", "b"):
        store.put_policy_group(PolicyGroup(group), actor=ACTOR)
    pap = PolicyAdministrationPoint(store)
    store.create_policy(_grant_doc("p-a", "a"), actor=ACTOR)
    store.create_policy(_grant_doc("p-b", "b"), actor=ACTOR)
    pap.publish("p-a", actor=ACTOR)
    pap.publish("p-b", actor=ACTOR)
    pdp = PolicyDecisionPoint(store=store, policy_group=frozenset({"a"}), clock=lambda: NOW)
    request = Request(subject={"id": "s"}, resource={"id": "r"}, action={"id": "read"})
    assert pdp.sync()
    assert pdp.decide(request).policy_ids == ("p-a",)
    store.set_policy_status("p-a", PolicyStatus.RETIRED, actor=ACTOR)
    record = store.get_policy("p-a")
    store.update_policy("p-a", _grant_doc("p-a", "b"), expected_version=record.version, actor=ACTOR)
    pap.publish("p-a", actor=ACTOR)
    assert pdp.sync()  # from the change feed: p-a is now in b
    assert pdp.decide(request).decision is Decision.NOT_APPLICABLE
    both = PolicyDecisionPoint(store=store, policy_group=frozenset({"a", "b"}), clock=lambda: NOW)
    assert both.sync()
    assert set(both.decide(request).policy_ids) == {"p-a", "p-b"}


class GroupCountingStore(MemoryStore):
    """A memory store that records each `read_published` as (group, since)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str | None, int | None]] = []

    def read_published(self, policy_group: str | None = None, *, since: int | None = None):
        self.reads.append((policy_group, since))
        return super().read_published(policy_group, since=since)


def test_a_decision_point_of_several_groups_reads_what_changed_once_for_all_of_them():
    """One read of the change feed per sync, however many groups (a read per group was
    a transaction per group on every change), kept to the set's groups: a policy that
    moves in is added, one that moves out is removed, others' changes stay out."""
    store = GroupCountingStore()
    for group in ("a", "b", "c"):
        store.put_policy_group(PolicyGroup(group), actor=ACTOR)
    pap = PolicyAdministrationPoint(store)
    for policy_id, group in (("p-a", "a"), ("p-b", "b"), ("p-c", "c"), ("q-c", "c")):
        store.create_policy(_grant_doc(policy_id, group), actor=ACTOR)
        pap.publish(policy_id, actor=ACTOR)
    pdp = PolicyDecisionPoint(store=store, policy_group=frozenset({"a", "b"}), clock=lambda: NOW)
    request = Request(subject={"id": "s"}, resource={"id": "r"}, action={"id": "read"})
    assert pdp.sync()
    assert set(pdp.decide(request).policy_ids) == {"p-a", "p-b"}
    for policy_id, group in (("p-a", "c"), ("p-c", "b"), ("q-c", "c")):
        record = store.get_policy(policy_id)
        document = _grant_doc(policy_id, group)
        store.update_policy(policy_id, document, expected_version=record.version, actor=ACTOR)
        pap.publish(policy_id, actor=ACTOR)
    store.reads.clear()
    assert pdp.sync()
    assert store.reads == [(None, pdp.revision - 3)]  # the feed once, for every group
    assert set(pdp.decide(request).policy_ids) == {"p-b", "p-c"}
    assert [c.id for c in pdp.compiled.children] == ["p-b", "p-c"]


class DeafStore(MemoryStore):
    """A store whose announcements cannot be listened to (a listener that fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def listen_decisions(self) -> Any:
        self.tries += 1
        raise ConnectionError("the listening connection failed")


def test_a_follower_whose_listener_fails_follows_by_polling(caplog, monkeypatch):
    monkeypatch.setattr("pbgm.pdp.LISTEN_RETRY_S", 0.02)
    store = DeafStore()
    follower = Follower(store, every=0.02)
    pdp = follower.add(PolicyDecisionPoint(store=store))
    follower.start()
    try:
        assert pdp.wait_ready(5)
        _publish(store, "p1")
        deadline = time.monotonic() + 5
        while pdp.revision != store.revisions().decisions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [c.id for c in pdp.compiled.children] == ["p1"]
        while store.tries < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.tries >= 3  # tried again
        assert not follower.listening
    finally:
        follower.stop()
    warnings = [r for r in caplog.records if "cannot listen" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, with the error's type only
    assert "ConnectionError" in warnings[0].getMessage()
    assert "connection failed" not in warnings[0].getMessage()
