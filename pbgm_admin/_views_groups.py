"""Policy groups and what is in force when.

- `/policy-groups`: every policy group the user may read, with the algorithm
  that combines its policies, its description and its policies by status.
- `/policy-groups/<group>`: one group, its members a page at a time, each
  with its published version's validity window and whether it is in force at
  a moment the user picks (now by default): a published policy whose published
  version belongs to this group and whose window holds that moment. What a
  decision point of the group evaluates at that moment is exactly the
  policies marked in force.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request

from pbgm.errors import NotFoundError
from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.store.base import PolicyQuery, PolicyRecord
from pbgm_admin._gui import Gui
from pbgm_admin._views_policies import PAGE_SIZE, page_number


@dataclass(frozen=True)
class Schedule:
    """A member's validity window and its state at the moment asked."""

    record: PolicyRecord
    valid_from: datetime | None
    valid_until: datetime | None
    state: str  # in force, not yet, ended, not published, published elsewhere


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)


def schedule(record: PolicyRecord, group: str, at: datetime) -> Schedule:
    """Whether `record` is in force in `group` at `at` (the module docstring)."""
    published: Mapping[str, Any] = record.published_document or {}
    start, end = _moment(published.get("valid_from")), _moment(published.get("valid_until"))
    if record.status is not PolicyStatus.PUBLISHED:
        state = "not published"
    elif published.get("policy_group") != group:
        state = "published elsewhere"
    elif start is not None and at < start:
        state = "not yet"
    elif end is not None and at >= end:
        state = "ended"
    else:
        state = "in force"
    return Schedule(record, start, end, state)


def _group(gui: Gui, name: str) -> PolicyGroup:
    try:
        return gui.store.get_policy_group(name)
    except NotFoundError:  # a group only named by its policies: the PAP's default
        return PolicyGroup(name)


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/policy-groups", endpoint="policy_groups")
    def policy_groups() -> str:
        readable = gui.groups_with_read()
        counts: dict[str, Counter[str]] = {name: Counter() for name in readable}
        for c in gui.store.policy_counts():
            if c.policy_group in counts:
                counts[c.policy_group][str(c.status)] += c.count
        listed = [(_group(gui, name), counts[name]) for name in readable]
        return render_template(
            "policy_groups.html", groups=listed, statuses=[str(s) for s in PolicyStatus]
        )

    @blueprint.get("/policy-groups/<policy_group>", endpoint="policy_group")
    def policy_group(policy_group: str) -> tuple[str, int]:
        if policy_group not in gui.all_groups():
            abort(404)
        asked = request.args.get("at", "").strip()
        at = _moment(asked[:64]) if asked else gui.now()
        problem = None
        if at is None:
            at, problem = gui.now(), f"`{asked[:64]}` is not a date-time: use 2026-03-02T08:00Z"
        number = page_number(request.args.get("page"))
        page = gui.store.page_policies(
            PolicyQuery(policy_group=policy_group),
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        rows = [schedule(r, policy_group, at) for r in page.records]
        page_html = render_template(
            "policy_group.html",
            group=_group(gui, policy_group),
            rows=rows,
            at=at,
            at_text=asked if problem else at.isoformat(timespec="minutes"),
            problem=problem,
            page=page,
            number=number,
            pages=max(1, -(-page.total // PAGE_SIZE)),
            in_force=sum(1 for r in rows if r.state == "in force"),
        )
        return page_html, 422 if problem else 200
