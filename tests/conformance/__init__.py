"""The golden corpus: one directory per case, named after what it checks.

Each case holds:

- `policy.json`: a policy set document `{"id", "policy_combining", "policies": [pbgm/v1
  policy documents]}` (optionally `target`, `obligations`, `advice`);
- `request.json`: `{"subject", "resource", "action", "environment"}` plus optional
  `"now"` (ISO 8601, default `DEFAULT_NOW`), `"memberships"` (`{subject id: [groups]}`,
  served by a `GroupMembershipProvider`) and `"assets"` (`{asset id: {attributes}}`,
  served by an `AssetAttributeProvider`);
- `expected.json`: the expected `decision`, `status`, `obligations`, `advice`,
  `policy_ids`, and optionally `errors` (`[{"code", "policy_id", "rule_id"}]`). Only
  the keys present are compared.

`load_cases()` reads them; `summarize(response, expected)` turns a `Response` into the
same JSON shape so that the PDP, CLI and REST tests can all compare with `==`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pbgm.model import PolicySet, Request, Response
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import AssetAttributeProvider, GroupMembershipProvider, PolicyInformationPoint
from pbgm.syntax import format_datetime, parse_datetime, policy_set_from_documents

CORPUS = Path(__file__).parent
DEFAULT_NOW = "2026-03-02T12:00:00Z"
CATEGORIES = ("subject", "resource", "action", "environment")


@dataclass(frozen=True)
class Case:
    name: str
    policy_document: dict[str, Any]
    request_document: dict[str, Any]
    expected: dict[str, Any]

    @property
    def policy_set(self) -> PolicySet:
        doc = self.policy_document
        return policy_set_from_documents(doc, doc.get("policies", []))

    @property
    def request(self) -> Request:
        return Request(**{c: self.request_document.get(c, {}) for c in CATEGORIES})

    @property
    def now(self) -> datetime:
        return parse_datetime(self.request_document.get("now", DEFAULT_NOW))

    def pip(self) -> PolicyInformationPoint | None:
        providers: list[Any] = []
        memberships = self.request_document.get("memberships")
        if memberships is not None:
            providers.append(GroupMembershipProvider(lambda id: memberships.get(id, ())))
        assets = self.request_document.get("assets")
        if assets is not None:
            providers.append(AssetAttributeProvider(assets.get))
        return PolicyInformationPoint(providers) if providers else None

    def decision_point(self) -> PolicyDecisionPoint:
        return PolicyDecisionPoint(self.policy_set, pip=self.pip(), clock=lambda: self.now)

    def decide(self) -> dict[str, Any]:
        """Decide the case with a fresh PDP and summarise as `expected.json` is written."""
        return summarize(self.decision_point().decide(self.request), self.expected)


def load_cases(root: Path = CORPUS) -> list[Case]:
    """Every case under `root`, sorted by name."""
    return [_load(path) for path in sorted(root.iterdir()) if (path / "expected.json").exists()]


def _load(path: Path) -> Case:
    def read(name: str) -> dict[str, Any]:
        return json.loads((path / name).read_text(encoding="utf-8"))

    return Case(path.name, read("policy.json"), read("request.json"), read("expected.json"))


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_json(v) for v in value), key=repr)
    return value


def response_document(response: Response) -> dict[str, Any]:
    """A response as JSON data, in the shape of `expected.json`."""
    return {
        "decision": response.decision.value,
        "status": response.status.code,
        "obligations": [
            {"id": o.id, "attributes": _json(o.attributes)} for o in response.obligations
        ],
        "advice": [{"id": a.id, "attributes": _json(a.attributes)} for a in response.advice],
        "policy_ids": list(response.policy_ids),
        "errors": [
            {"code": e.code, "policy_id": e.policy_id, "rule_id": e.rule_id}
            for e in response.errors
        ],
    }


def summarize(response: Response | Mapping[str, Any], expected: Mapping[str, Any]) -> dict:
    """The parts of a response (a `Response` or its JSON document) that `expected` names."""
    document = response_document(response) if isinstance(response, Response) else response
    return {key: document.get(key) for key in expected}
