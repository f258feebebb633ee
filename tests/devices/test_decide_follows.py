"""The device policies are compiled again only when the decision revision moves: a draft,
an audit entry or a change of users, groups or grants leaves them as they are (before,
any change of the repository made the next device action load and compile the group)."""

from __future__ import annotations

import copy
from typing import Any

from pbgm.devices._decide import DeviceDecisions
from pbgm.model import utc_now
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store import MemoryStore
from pbgm.store.base import Group, User
from tests.devices.world import POLICY, seed


def _counting(decisions: DeviceDecisions) -> list[int]:
    loads: list[int] = []
    load = decisions._pap.load_policy_set

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(1)
        return load(*args, **kwargs)

    decisions._pap.load_policy_set = counted  # type: ignore[method-assign]
    return loads


def test_only_a_change_of_what_is_decided_recompiles_the_device_policies():
    store = MemoryStore()
    seed(store)
    decisions = DeviceDecisions(store, clock=utc_now)
    loads = _counting(decisions)
    decisions.refresh()
    assert len(loads) == 1 and "pmu-qos" in decisions._contents

    pap = PolicyAdministrationPoint(store)
    draft = copy.deepcopy(POLICY)
    draft["description"] = "a draft, not yet published"
    pap.update("pmu-qos", draft, expected_version=store.get_policy("pmu-qos").version, actor="t")
    store.add_user(User("op-bob"), actor="t")
    store.add_group(Group("field-crew"), actor="t")
    store.add_member("field-crew", "op-bob", actor="t")
    store.record_audit(actor="t", action="note", object_type="test", object_id="x", details={})
    decisions.refresh()
    assert len(loads) == 1  # nothing it decides changed

    pap.publish("pmu-qos", actor="t")
    decisions.refresh()
    assert len(loads) == 2
    assert decisions.pdp._compiled.revision == store.revisions().decisions
