"""Audit entries as the JSON text a store writes, checked on that text (the batch path).

`check_audit` (in `_common`) copies an entry's details through JSON and walks every
string of the copy: thorough, and in Python. `audit_texts` makes the same decisions
for many entries at the cost of one C-encoded `json.dumps` each: the text of details
made of dicts, lists, strings, numbers, booleans and None is storable when it is an
object, holds no escaped NUL (`json.dumps` writes every NUL as `\\u0000`, in keys too),
and encodes as UTF-8 (no lone surrogate); NaN and infinity, and values JSON cannot
hold, make `json.dumps` itself refuse. Any entry that fails a test on its text (or
whose text holds `\\u0000` as a backslash followed by `u0000`) takes `check_audit`'s
path, which accepts or refuses it exactly as `record_audits` would. So both paths
store the same details and refuse the same entries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pbgm.policy import compact_json
from pbgm.store import _common as common
from pbgm.store.base import AuditItem

AuditText = tuple[str, str, str, str, str]
"""actor, action, object type, object id, details as JSON text."""


def audit_texts(items: Sequence[AuditItem]) -> list[AuditText]:
    """Each item checked as `record_audits` checks it, with its details as JSON text;
    `InvalidInputError` for the first that breaks a rule."""
    checked: list[AuditText] = []
    for item in items:
        for value, what in (
            (item.actor, "actor"),
            (item.action, "action"),
            (item.object_type, "object type"),
            (item.object_id, "object id"),
        ):
            common.check_id(value, what)
        text = _storable(item.text) if item.text is not None else None
        if text is None:
            text = _text(item.details or {})
        if text is None:
            details = common.check_audit(
                item.actor, item.action, item.object_type, item.object_id, item.details
            )
            text = json.dumps(details)
        checked.append((item.actor, item.action, item.object_type, item.object_id, text))
    return checked


def _text(details: Any) -> str | None:
    """The JSON text of `details` when its text passes the tests, else None."""
    try:
        text = compact_json(details)
    except (TypeError, ValueError, RecursionError):
        return None
    return _storable(text)


def _storable(text: str) -> str | None:
    """`text` when it passes the tests (module docstring), else None."""
    if not text.startswith("{") or "\\u0000" in text:
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text
