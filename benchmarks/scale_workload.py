"""The documents of the scale benchmark: realistic policies, many of them.

Half are operational limits of an asset (`limits-<k>`, targeted on `resource.asset_id`,
four rules: read, write with an `audit` obligation, dispatch with a `clamp` obligation,
and a Deny of set-points beyond the rated power with advice), half data access to a
resource (`access-<k>`, targeted on `resource.id`, three rules: read by groups, publish
by one group with a `drop-fields` obligation, and a Deny of writes). Each carries a
`content` that the schema of its type accepts. The documents are valid `pbgm/v1` and
are drawn from a seed: the same `k` always gives the same document.

`requests(n, count, seed)` gives decision requests over those policies (about half
permitted), and `changed(document, step)` the next version of a document, one that
flips a decision: a reader group is swapped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

GROUPS = tuple(f"team-{i}" for i in range(40))
LIMITS_GROUP = "operational-limits"
ACCESS_GROUP = "data-sharing"


def document(k: int) -> dict[str, Any]:
    """The `k`-th document: even ones limits, odd ones data access."""
    rng = random.Random(k)
    return _limits(k, rng) if k % 2 == 0 else _access(k, rng)


def documents(n: int) -> Iterator[dict[str, Any]]:
    return (document(k) for k in range(n))


def policy_id(k: int) -> str:
    return f"limits-{k}" if k % 2 == 0 else f"access-{k}"


def _members(groups: list[str]) -> dict[str, Any]:
    return {"apply": "at-least-one-member-of", "args": [{"attr": "subject.groups"}, groups]}


def _limits(k: int, rng: random.Random) -> dict[str, Any]:
    p_max = rng.choice((50, 100, 250, 500))
    readers = sorted(rng.sample(GROUPS, 2))
    writer = rng.choice(GROUPS)
    return {
        "format": "pbgm/v1",
        "id": policy_id(k),
        "type": "operational_limits",
        "policy_group": LIMITS_GROUP,
        "asset_id": f"asset-{k}",
        "description": f"Operating envelope of asset {k}",
        "target": {"resource": {"asset_id": f"asset-{k}"}},
        "rule_combining": "deny-overrides",
        "rules": [
            {
                "id": "read-limits",
                "effect": "Permit",
                "target": {"action": {"id": "read"}},
                "condition": _members([*readers, writer]),
            },
            {
                "id": "change-limits",
                "effect": "Permit",
                "target": {"action": {"id": "write"}},
                "condition": _members([writer]),
                "obligations": [{"id": "audit", "attributes": {"level": "warning"}}],
            },
            {
                "id": "dispatch",
                "effect": "Permit",
                "target": {"action": {"id": "dispatch"}},
                "condition": _members([readers[0]]),
                "obligations": [
                    {"id": "clamp", "attributes": {"p_min_kw": -p_max, "p_max_kw": p_max}}
                ],
            },
            {
                "id": "refuse-outside-envelope",
                "effect": "Deny",
                "target": {"action": {"id": "dispatch"}},
                "condition": {
                    "apply": "not",
                    "args": [
                        {"apply": "between", "args": [{"attr": "resource.p_kw"}, -p_max, p_max]}
                    ],
                },
                "advice": [{"id": "notify-operator", "attributes": {"topic": f"/alerts/{k}"}}],
            },
        ],
        "content": {
            "asset_id": f"asset-{k}",
            "power": {"p_min_kw": -p_max, "p_max_kw": p_max},
        },
    }


def _access(k: int, rng: random.Random) -> dict[str, Any]:
    readers = sorted(rng.sample(GROUPS, rng.randint(1, 3)))
    publisher = rng.choice(GROUPS)
    return {
        "format": "pbgm/v1",
        "id": policy_id(k),
        "type": "data_access",
        "policy_group": ACCESS_GROUP,
        "description": f"Who may use the data of resource {k}",
        "target": {"resource": {"id": f"data-{k}"}},
        "rule_combining": "deny-overrides",
        "rules": [
            {
                "id": "read-data",
                "effect": "Permit",
                "target": {"action": {"id": ["read", "subscribe"]}},
                "condition": _members(readers),
            },
            {
                "id": "publish-data",
                "effect": "Permit",
                "target": {"action": {"id": "publish"}},
                "condition": _members([publisher]),
                "obligations": [{"id": "drop-fields", "attributes": {"fields": ["customer_id"]}}],
            },
            {
                "id": "never-write",
                "effect": "Deny",
                "target": {"action": {"id": "write"}},
            },
        ],
        "content": {"data": {"topics": [f"/data/{k}/#"]}, "consumers": {"groups": readers}},
    }


def changed(doc: dict[str, Any], step: int) -> dict[str, Any]:
    """The next version of `doc`: its first rule's readers become `[team-<step % 40>]`,
    so a request of that group flips from Deny or NotApplicable to Permit (and back)."""
    new = {**doc, "rules": [dict(rule) for rule in doc["rules"]]}
    new["rules"][0]["condition"] = _members([GROUPS[step % len(GROUPS)]])
    if "consumers" in new["content"]:
        new["content"] = {**new["content"], "consumers": {"groups": [GROUPS[step % len(GROUPS)]]}}
    return new


def request(k: int, group: str) -> dict[str, Any]:
    """A read request on the resource of the `k`-th policy by a member of `group`."""
    resource = {"asset_id": f"asset-{k}"} if k % 2 == 0 else {"id": f"data-{k}"}
    return {
        "subject": {"id": f"svc-{group}", "groups": [group]},
        "resource": resource,
        "action": {"id": "read"},
    }


def requests(n: int, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` read requests on resources drawn among the first `n` policies."""
    rng = random.Random(seed)
    return [request(rng.randrange(n), rng.choice(GROUPS)) for _ in range(count)]
