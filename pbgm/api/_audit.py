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

Bounds (`bounded_entries`, a pure function a background writer can call too):
each request is kept up to `max_request` bytes of JSON (`PBGM_AUDIT_MAX_REQUEST`,
default 2048); a longer one is shortened, first by cutting texts to
`MAX_TEXT_CHARS` characters and bags to `MAX_BAG_ITEMS` items, then to its
attribute names alone, then to nothing, and the entry says so:
`"request_truncated": true` and `"request_bytes"`, the size it had. One call
records at most `MAX_CALL_BYTES` of requests; past that, entries keep their
decision without the request (also marked). The decision, status, deciding
policies, obligation and advice ids are always kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pbgm.model import CATEGORIES, Request, Response
from pbgm.pap import plain_json
from pbgm.policy import thaw
from pbgm.store.base import Store

MASKED = "***"
CUT = "..."
MAX_OBJECT_ID = 255
MAX_REQUEST_BYTES = 2048
MAX_CALL_BYTES = 65_536
MAX_TEXT_CHARS = 64
MAX_BAG_ITEMS = 8


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _short(value: Any) -> Any:
    """`value` with texts cut to `MAX_TEXT_CHARS` and lists to `MAX_BAG_ITEMS` items."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS] + CUT
    if isinstance(value, list):
        items = [_short(v) for v in value[:MAX_BAG_ITEMS]]
        return [*items, CUT] if len(value) > MAX_BAG_ITEMS else items
    if isinstance(value, dict):
        kept = list(value.items())[:MAX_BAG_ITEMS]
        return {_short(k): _short(v) for k, v in kept}
    return value


def _names_only(request: Mapping[str, Any]) -> dict[str, Any]:
    return {
        category: {_short(name): CUT for name in list(bag)[:MAX_BAG_ITEMS]}
        for category, bag in request.items()
        if isinstance(bag, Mapping)
    }


def bounded_request(request: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], int | None]:
    """`request` if its JSON fits in `max_bytes`, else a shorter form of it and the size
    it had (the caller marks the entry)."""
    size = _size(request)
    if size <= max_bytes:
        return request, None
    for shorten in (_short, _names_only):
        shorter = shorten(request)
        if _size(shorter) <= max_bytes:
            return shorter, size
    return {}, size


def bounded_entries(
    entries: Sequence[dict[str, Any]],
    *,
    max_request: int = MAX_REQUEST_BYTES,
    max_call: int = MAX_CALL_BYTES,
) -> list[dict[str, Any]]:
    """The decision entries of one call with their requests bounded (module docstring)."""
    bounded, spent = [], 0
    for entry in entries:
        request, size = bounded_request(entry.get("request", {}), max_request)
        if spent + _size(request) > max_call:
            request, size = {}, size or _size(entry.get("request", {}))
        spent += _size(request)
        kept = {**entry, "request": request}
        if size is not None:
            kept.update(request_truncated=True, request_bytes=size)
        bounded.append(kept)
    return bounded


class DecisionLog:
    """Writes decision entries with the configured masking."""

    def __init__(
        self, store: Store, mask: Iterable[str] = (), *, max_request: int = MAX_REQUEST_BYTES
    ) -> None:
        self._store = store
        self._max_request = max_request
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
        entries = bounded_entries(
            [self._entry(q, r) for q, r in zip(requests, responses, strict=True)],
            max_request=self._max_request,
        )
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
