"""The floor of the PDP benchmark: not a policy engine, the least work any engine does.

The workload's grants hand-coded into one dict, resource id -> (groups that may read,
users that may read, the admin group that may write), all frozensets, and a request
prepared as `(subject, its groups as a frozenset, action, resource)`: a decision is one
lookup among N keys and one or two set tests, with no policy language, no request
object and no response object. No engine can do less for this workload, so the growth
of its p50 from N = 100 to N = 100,000 is what the memory hierarchy alone costs once the
table outgrows the CPU caches; it is printed beside pbgm's growth. Its decisions are
checked against the reference like every engine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.pdp_peers import Decide
from benchmarks.pdp_workload import Triple, Workload

Prepared = tuple[str, frozenset[str], str, str]


class FloorEngine:
    name = "floor"
    note = (
        "not a policy engine: the grants hand-coded as a dict of frozensets, "
        "one lookup among N and one set test per decision (the least any engine does)"
    )

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.workload = workload

    def load(self) -> Decide:
        table: dict[str, tuple[frozenset[str], frozenset[str], str]] = {}
        for p in self.workload.policies:
            readers = frozenset((*p.read_groups, p.write_group))
            table[p.id] = (readers, frozenset(p.read_users), p.write_group)

        def decide(request: Any) -> bool:
            subject, groups, action, resource = request
            entry = table.get(resource)
            if entry is None:
                return False
            if action == "write":
                return entry[2] in groups
            return action == "read" and (subject in entry[1] or not entry[0].isdisjoint(groups))

        return decide

    def prepare(self, triple: Triple) -> Prepared:
        subject, action, resource = triple
        return subject, self.workload.group_sets.get(subject, frozenset()), action, resource


ENGINES = {"floor": FloorEngine}
