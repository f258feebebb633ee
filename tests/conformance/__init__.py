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

`load_cases()` reads them; `summarize(response, expected)` turns a `Response`, or
pbgm's JSON answer as the CLI prints it and the API returns it (`pbgm.messages`), into
the same JSON shape so that the PDP, CLI and REST tests can all compare with `==`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pbgm.messages import request_from_json, response_to_json
from pbgm.model import CATEGORIES as CATEGORIES  # the REST tests import it from here
from pbgm.model import PolicySet, Request, Response
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import AssetAttributeProvider, GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy.syntax import parse_datetime, policy_set_from_documents

CORPUS = Path(__file__).parent
DEFAULT_NOW = "2026-03-02T12:00:00Z"
REQUEST_EXTRAS = ("now", "memberships", "assets")
ERROR_KEYS = ("code", "policy_id", "rule_id")


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
        return request_from_json(self.request_document, extra=REQUEST_EXTRAS)

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


def response_document(response: Response | Mapping[str, Any]) -> dict[str, Any]:
    """A response (a `Response` or pbgm's JSON answer) in the shape of `expected.json`.

    That shape is pbgm's JSON answer with the status reduced to its code and the
    errors to where they happened, so that messages may be reworded freely.
    """
    document = response_to_json(response) if isinstance(response, Response) else response
    status = document.get("status")
    return {
        **document,
        "status": status.get("code") if isinstance(status, Mapping) else status,
        "errors": [{key: e.get(key) for key in ERROR_KEYS} for e in document.get("errors", [])],
    }


def summarize(response: Response | Mapping[str, Any], expected: Mapping[str, Any]) -> dict:
    """The parts of a response (a `Response` or its JSON document) that `expected` names."""
    document = response_document(response)
    return {key: document.get(key) for key in expected}
