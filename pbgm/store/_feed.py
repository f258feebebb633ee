"""The change feed of what decision points load: rules both stores share.

Each change that may alter a decision (a policy published, retired or deleted while
published, a policy group written) bumps the decision revision by one and appends one
entry `(revision, policy_id, policy_group)` to the feed: the policy's id, or, for a
policy group, None and the group's id. The feed keeps the newest `FEED_LENGTH` entries;
a reader further behind than that (or behind a bulk change that left no entries) gets
the whole set again instead of a delta (`complete`).

A published policy is handed to decision points as compact JSON text without its
`content` and descriptions, packed (`decision_text`, `pbgm.policy.published.pack`:
a fifth of the text), with its target apart and two flags (a validity window, a
mention of the time): a decision point indexes a policy by its
target and compiles the rest only when a decision first needs it. The SQL store writes
these when a policy is published (`published_policies`), so that loading reads them and
decodes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pbgm.policy.published import pack

FEED_LENGTH = 10_000
"""Entries the feed keeps: a decision point that missed more reloads everything."""

Entry = tuple[int, str | None, str | None]
_UNREAD = ("content", "description")  # what no decision reads


def decision_text(document: Mapping[str, Any]) -> tuple[bytes, str | None, bool, bool]:
    """What decision points read of a published document: (the document as compact JSON
    without `content` and descriptions, packed; its target as JSON or None, whether it has a
    validity window, whether its text mentions `current_time`). The last two err
    towards yes: they only tell a decision point to read the clock."""
    lean = {key: value for key, value in document.items() if key not in _UNREAD}
    rules = document.get("rules")
    if isinstance(rules, list):
        lean["rules"] = [
            {k: v for k, v in rule.items() if k != "description"}
            if isinstance(rule, dict)
            else rule
            for rule in rules
        ]
    target = document.get("target")
    compact = (",", ":")
    text = json.dumps(lean, separators=compact)
    windowed = document.get("valid_from") is not None or document.get("valid_until") is not None
    return (
        pack(text),
        None if target is None else json.dumps(target, separators=compact),
        windowed,
        "current_time" in text,
    )


def complete(since: int, current: int, entries: int) -> bool:
    """Whether the feed holds every change after `since` up to `current`: one entry
    per revision, so exactly `current - since` entries newer than `since`."""
    return 0 <= since <= current and entries == current - since


def changed_ids(entries: list[Entry]) -> list[str]:
    """The ids of the policies the entries name, sorted."""
    return sorted({policy for _, policy, _ in entries if policy is not None})


def in_group(document: Mapping[str, Any] | None, policy_group: str | None) -> bool:
    """Whether a published document belongs to what a decision point of `policy_group`
    (every group when None) loads: the group of the *published* version decides, not
    that of a later draft."""
    return document is not None and policy_group in (None, document.get("policy_group"))
