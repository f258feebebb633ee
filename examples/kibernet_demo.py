"""The KIBERNet flow of `make demo`: a stand-in KIBERNet on 127.0.0.1, polled through pbgm.

The example `data_access` policy (`examples/policies/policies/kibernet-data-access.json`)
is pointed at the stand-in and given one more data point, `tariff-internal`, and a rule
that denies it to control services. One poll through the PDP: the
voltages and the meter reading are published on the bus, the tariff is not read at all,
and the denial is counted and audited. Then the stand-in goes down: nothing new is
published, the last good values are reported stale with their age. Exits 0 when all of
that holds.

    .venv/bin/python examples/kibernet_demo.py
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from adapters.kibernet import KibernetPoller
from adapters.kibernet.standin import KibernetStandIn
from pbgm.bus import MemoryBus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.testing import decision_point, memory_store

ROOT = Path(__file__).resolve().parent
EXAMPLE = ROOT / "policies" / "policies" / "kibernet-data-access.json"
NO_TARIFFS = {  # added to the policy's rules (deny-overrides)
    "id": "control-services-never-poll-tariffs",
    "effect": "Deny",
    "target": {"action": {"id": "poll"}},
    "condition": {"apply": "starts-with", "args": [{"attr": "resource.data_point"}, "tariff-"]},
}


def main() -> int:
    with KibernetStandIn() as kibernet:
        kibernet.set("WUN.F3.N3.U", 1.043)
        kibernet.set("WUN.F3.N4.U", 1.051)
        kibernet.set("WUN.M4.P", 12.5)
        kibernet.set("WUN.TARIFF", 0.31)
        policy = copy.deepcopy(json.loads(EXAMPLE.read_text()))
        policy["rules"].append(NO_TARIFFS)
        content = policy["content"]
        content["endpoints"]["kibernet"] = {"kind": "kibernet", "base_url": kibernet.url,
                                            "timeout_s": 2, "retries": 0}  # fmt: skip
        content["data_points"]["tariff-internal"] = {
            "id": "WUN.TARIFF",
            "path": "/datapoints/{id}/latest",
            "topic": "/kibernet/tariff",
        }
        store = memory_store(ROOT / "policies")
        pap = PolicyAdministrationPoint(store)
        version = store.get_policy(policy["id"]).version
        pap.update(policy["id"], policy, expected_version=version, actor="demo")
        pap.publish(policy["id"], actor="demo")
        print(f"stand-in KIBERNet on {kibernet.url}; policy `{policy['id']}` published")

        bus = MemoryBus()
        seen: list[tuple[str, dict]] = []
        bus.subscribe("#", lambda m: seen.append((m.topic, json.loads(m.payload))))
        poller = KibernetPoller(
            bus, decision_point(store, "data-sharing"), subject="svc-voltage-control",
            store=store,
        )  # fmt: skip
        try:
            poller.apply(store.get_policy(policy["id"]).document)
            outcome = poller.poll_once()
            print(f"poll 1 through the PDP: {outcome}")
            for topic, payload in seen:
                print(f"  published {topic}: {json.dumps(payload)}")
            denied = [e for e in store.list_audit() if e.action == "kibernet.deny"]
            for entry in denied:
                print(
                    f"  denied `{entry.details['data_point']}` ({entry.details['decision']}, "
                    f"{entry.details['reason']}); KIBERNet was asked for it "
                    f"{kibernet.requests['/datapoints/WUN.TARIFF/latest']} time(s)"
                )
            assert outcome == {"published": 3, "denied": 1}, outcome
            assert any(t == "/kibernet/voltage_control/voltage" for t, _ in seen)
            assert not any(t == "/kibernet/tariff" for t, _ in seen)
            assert kibernet.requests["/datapoints/WUN.TARIFF/latest"] == 0

            kibernet.down()
            before = len(seen)
            outcome = poller.poll_once()
            print(f"poll 2, KIBERNet down: {outcome}")
            stale = poller.stale()
            for name, entry in stale.items():
                print(f"  stale {name}: last {entry['value']} ({entry['age_s']} s old, "
                      f"{entry['reason']})")  # fmt: skip
            assert [t for t, _ in seen[before:]] == ["/kibernet/status"]  # nothing invented
            assert len(stale) == 3
        finally:
            poller.close()
    print("KIBERNet demo done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
