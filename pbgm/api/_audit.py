"""The decision log: every decision the API serves, recorded in the audit log.

One entry per call to `POST /api/v1/decisions` (`action` `decision`, `actor` the
caller, `object_type` `decision`, `object_id` the first request's `resource.id`
or `request`), with each request (masked), its decision, status, deciding
policies, obligation and advice ids. Time is the store's.

Masking (`PBGM_AUDIT_MASK=subject.*,resource.location`): the value of each listed
attribute, or of every attribute of a category given as `<category>.*`, is
replaced by `***`; the attribute names stay, so the log still tells what was
asked. Administrative changes are audited by the store itself, in the same
transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pbgm.model import CATEGORIES, Request, Response
from pbgm.pap import plain_json
from pbgm.policy import thaw
from pbgm.store.base import Store

MASKED = "***"
MAX_OBJECT_ID = 255


class DecisionLog:
    """Writes decision entries with the configured masking."""

    def __init__(self, store: Store, mask: Iterable[str] = ()) -> None:
        self._store = store
        self._whole: set[str] = set()
        self._names: set[tuple[str, str]] = set()
        for pattern in mask:
            category, _, name = pattern.partition(".")
            if name == "*":
                self._whole.add(category)
            else:
                self._names.add((category, name))

    def masked(self, request: Request) -> dict[str, Any]:
        """The request as JSON data with the masked values replaced."""
        return {c: self._category(c, request.bag(c)) for c in CATEGORIES if request.bag(c)}

    def _category(self, category: str, bag: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: MASKED
            if category in self._whole or (category, name) in self._names
            else plain_json(thaw(value))
            for name, value in bag.items()
        }

    def record(
        self, actor: str, requests: Sequence[Request], responses: Sequence[Response]
    ) -> None:
        entries = [self._entry(q, r) for q, r in zip(requests, responses, strict=True)]
        first = requests[0].resource.get("id") if requests else None
        object_id = (
            first if isinstance(first, str) and 0 < len(first) <= MAX_OBJECT_ID else "request"
        )
        self._store.record_audit(
            actor=actor,
            action="decision",
            object_type="decision",
            object_id=object_id.replace("\x00", "") or "request",
            details={"decisions": entries},
        )

    def _entry(self, request: Request, response: Response) -> dict[str, Any]:
        return {
            "request": self.masked(request),
            "decision": str(response.decision),
            "status": response.status.code,
            "policy_ids": list(response.policy_ids),
            "obligations": [o.id for o in response.obligations],
            "advice": [a.id for a in response.advice],
        }
