"""`RevisionReads` keeps each memoised read under the narrowest revision that its changes
move (`pbgm.api._cache`): a change of a policy leaves principals, memberships, grants and
policy groups memoised, so the first decision after it reads none of them again; a
change of what they read makes the next request read it afresh."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Flask

from pbgm.api._cache import RevisionReads
from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.store.base import Group
from pbgm.store.memory import MemoryStore
from tests.store.conftest import policy_doc
from tests.store.test_contract_changes import populate

READS = ("groups_of", "list_grants", "get_service_account", "list_policy_groups", "get_policy")


class Counting(MemoryStore):
    """A memory store that counts the calls of the reads `RevisionReads` memoises."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __getattribute__(self, name: str) -> Any:
        found = object.__getattribute__(self, name)
        if name not in READS:
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            object.__getattribute__(self, "calls")[name] += 1
            return found(*args, **kwargs)

        return counted


def _populated() -> tuple[Counting, RevisionReads]:
    """A counting store with the test's principals and policies, read through the memo."""
    store = Counting()
    populate(store)
    return store, RevisionReads(store)


def _request(reads: RevisionReads) -> None:
    """What a protected request reads, as its first step (`begin_request`) and after."""
    reads.begin_request()
    reads.groups_of("alice")
    reads.list_grants(principal="alice")
    reads.get_service_account("svc")
    reads.list_policy_groups()
    reads.get_policy("p1")


def test_a_policy_change_keeps_principals_grants_and_groups_and_rereads_policies() -> None:
    store, reads = _populated()
    with Flask(__name__).test_request_context():
        _request(reads)
        _request(reads)
        assert store.calls == {name: 1 for name in READS}

        store.update_policy("p1", policy_doc("p1", asset_id="b"), expected_version=1, actor="x")
        _request(reads)  # a draft: only the policy is read again
        assert store.calls == {**{name: 1 for name in READS}, "get_policy": 2}

        store.set_policy_status("p1", PolicyStatus.PUBLISHED, actor="x")
        _request(reads)  # published: the decision revision moves, the groups are read again
        assert store.calls["list_policy_groups"] == 2 and store.calls["get_policy"] == 3
        assert [store.calls[n] for n in READS[:3]] == [1, 1, 1]


def test_a_change_of_principals_or_grants_is_read_by_the_next_request() -> None:
    store, reads = _populated()
    with Flask(__name__).test_request_context():
        _request(reads)
        store.add_group(Group("field"), actor="x")
        store.add_member("field", "alice", actor="x")
        reads.begin_request()
        assert set(reads.groups_of("alice")) == {"ops", "field"}
        store.set_service_account_enabled("svc", False, actor="x")
        reads.begin_request()
        assert reads.get_service_account("svc").enabled is False
        store.put_policy_group(PolicyGroup("pg2"), actor="x")
        reads.begin_request()
        assert {g.id for g in reads.list_policy_groups()} == {"pg", "pg2"}
