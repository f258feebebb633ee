"""The peers of the PDP benchmark: PyCasbin, Cedar (cedarpy) and OPA Rego (opa-eval).

Each engine is loaded from the source its users would write (a model and a policy CSV,
Cedar policy text and entity JSON, a Rego module and a data document), in its fastest
idiomatic mode, and asked one question per call. An engine follows the protocol of
`benchmarks.pdp_engines.Engine`: the constructor writes the sources (not timed), `load`
reads them (timed) and returns the decide function, `prepare` turns a request triple
into the engine's own request form (not timed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.pdp_workload import Triple, Workload, iter_grant_statements

Decide = Callable[[Any], bool]

# Permission levels include the ones below them: a write grant also allows read.
INCLUDED_ACTIONS = {"read": ("read",), "write": ("read", "write")}

CASBIN_MODEL = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""

REGO_POLICY = """\
package pbgm.authz

import rego.v1

default allow := false

allow if {
	input.action in data.grants[input.resource].write_actions
	data.grants[input.resource].write_group in data.memberships[input.subject]
}

allow if {
	input.action == "read"
	input.subject in data.grants[input.resource].read_users
}

allow if {
	input.action == "read"
	some group in data.memberships[input.subject]
	group in data.grants[input.resource].read_groups
}
"""


class CasbinEngine:
    """PyCasbin `FastEnforcer` (policies indexed by object and action) with the RBAC role
    manager: `p, <group or user>, <policy>, <action>` lines and `g, <user>, <group>` lines,
    read from a CSV file by the file adapter."""

    name = "casbin"
    note = "FastEnforcer(cache_key_order=[obj, act]), RBAC role manager, file adapter"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.model = workdir / "casbin_model.conf"
        self.policy = workdir / "casbin_policy.csv"
        self.model.write_text(CASBIN_MODEL)
        lines = [
            f"p, {principal}, {resource}, {action}"
            for _, principal, level, resource in iter_grant_statements(workload)
            for action in INCLUDED_ACTIONS[level]
        ]
        lines += [f"g, {u}, {g}" for u, groups in workload.memberships.items() for g in groups]
        self.policy.write_text("\n".join(lines) + "\n")

    def load(self) -> Decide:
        import casbin

        enforcer = casbin.FastEnforcer(str(self.model), str(self.policy), cache_key_order=[1, 2])
        enforce = enforcer.enforce
        return lambda request: enforce(*request)

    @staticmethod
    def prepare(triple: Triple) -> tuple[str, str, str]:
        subject, action, resource = triple
        return subject, resource, action


class CedarEngine:
    """cedarpy with a parsed `PolicySet` and `Entities` handle reused on every call
    (no re-parsing): one `permit` per grant, users as entities with their groups as
    parents."""

    name = "cedar"
    note = "cedarpy.is_authorized with pre-parsed PolicySet and Entities handles"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.policies = "\n".join(_cedar_permit(*g) for g in iter_grant_statements(workload))
        self.entities = json.dumps(_cedar_entities(workload))

    def load(self) -> Decide:
        import cedarpy

        policies = cedarpy.PolicySet.from_str(self.policies)
        entities = cedarpy.Entities.from_json_str(self.entities)
        is_authorized = cedarpy.is_authorized
        return lambda request: is_authorized(request, policies, entities).allowed

    @staticmethod
    def prepare(triple: Triple) -> dict[str, str]:
        subject, action, resource = triple
        return {
            "principal": f'User::"{subject}"',
            "action": f'Action::"{action}"',
            "resource": f'Policy::"{resource}"',
        }


class CedarSlicedEngine(CedarEngine):
    """Cedar with policy slicing done by the application: one pre-parsed `PolicySet` per
    resource (picked by the request's resource id), so a decision evaluates only the
    permits of that resource instead of all of them."""

    name = "cedar-sliced"
    note = "cedarpy.is_authorized with one pre-parsed PolicySet per resource (slicing)"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        super().__init__(workload, workdir)
        slices: dict[str, list[str]] = {}
        for grant in iter_grant_statements(workload):
            slices.setdefault(grant[3], []).append(_cedar_permit(*grant))
        self.slices = {resource: "\n".join(permits) for resource, permits in slices.items()}

    def load(self) -> Decide:
        import cedarpy

        sets = {r: cedarpy.PolicySet.from_str(text) for r, text in self.slices.items()}
        empty = cedarpy.PolicySet.from_str("")
        entities = cedarpy.Entities.from_json_str(self.entities)
        is_authorized = cedarpy.is_authorized
        return lambda request: (
            is_authorized(request[1], sets.get(request[0], empty), entities).allowed
        )

    @staticmethod
    def prepare(triple: Triple) -> tuple[str, dict[str, str]]:
        return triple[2], CedarEngine.prepare(triple)


def _cedar_permit(kind: str, principal: str, level: str, resource: str) -> str:
    who = (
        f'principal in Group::"{principal}"'
        if kind == "group"
        else (f'principal == User::"{principal}"')
    )
    actions = ", ".join(f'Action::"{a}"' for a in INCLUDED_ACTIONS[level])
    return f'permit({who}, action in [{actions}], resource == Policy::"{resource}");'


def _cedar_entities(workload: Workload) -> list[dict[str, Any]]:
    groups = [
        {"uid": {"type": "Group", "id": g}, "attrs": {}, "parents": []} for g in workload.groups
    ]
    users = [
        {
            "uid": {"type": "User", "id": user},
            "attrs": {},
            "parents": [{"type": "Group", "id": g} for g in user_groups],
        }
        for user, user_groups in workload.memberships.items()
    ]
    return groups + users


class OpaEngine:
    """OPA Rego evaluated by regorus (`opa_eval.OpaEval`): one module, the grants and the
    group memberships as the `data` document, one `evaluate_parsed` per request."""

    name = "opa"
    note = "opa_eval.OpaEval(rego, data_json, query=allow).evaluate_parsed(input_json)"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.module = workdir / "authz.rego"
        self.module.write_text(REGO_POLICY)
        grants = {
            p.id: {
                "read_groups": list(p.read_groups),
                "read_users": list(p.read_users),
                "write_group": p.write_group,
                "write_actions": list(INCLUDED_ACTIONS["write"]),
            }
            for p in workload.policies
        }
        memberships = {u: list(groups) for u, groups in workload.memberships.items()}
        self.data = json.dumps({"grants": grants, "memberships": memberships})

    def load(self) -> Decide:
        import opa_eval

        evaluator = opa_eval.OpaEval(str(self.module), self.data, "data.pbgm.authz.allow")
        evaluate = evaluator.evaluate_parsed
        return lambda request: evaluate(request) is True

    @staticmethod
    def prepare(triple: Triple) -> str:
        subject, action, resource = triple
        return json.dumps({"subject": subject, "action": action, "resource": resource})


class OpaBuiltEngine(OpaEngine):
    """As `OpaEngine`, with the JSON input built inside the timed call from the triple,
    as a caller of OPA builds it per decision."""

    name = "opa, input built per call"
    note = "evaluate_parsed(json.dumps(input)) with the input built in the timed call"

    def load(self) -> Decide:
        evaluate = super().load()
        dumps = json.dumps
        return lambda t: evaluate(dumps({"subject": t[0], "action": t[1], "resource": t[2]}))

    @staticmethod
    def prepare(triple: Triple) -> Triple:  # type: ignore[override]
        return triple


PEERS = {
    "casbin": CasbinEngine,
    "cedar": CedarEngine,
    "cedar-sliced": CedarSlicedEngine,
    "opa": OpaEngine,
    "opa-built": OpaBuiltEngine,
}
