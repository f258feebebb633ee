"""The audit log with filters (actor, object, action, period), newest first, secrets masked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Blueprint, render_template, request

from pbgm.errors import PbgmError
from pbgm.policy import parse_datetime
from pbgm.store.base import AuditQuery
from pbgm_admin._gui import Gui
from pbgm_admin._render import masked

PAGE_SIZE = 100


def _moment(text: str, *, end: bool) -> datetime | None:
    """A date (`2026-03-02`, the whole day) or an ISO date-time with a timezone."""
    if not text:
        return None
    if len(text) == 10:
        day = parse_datetime(f"{text}T00:00:00Z", "date")
        return day + timedelta(days=1) if end else day
    return parse_datetime(text, "date-time")


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/audit", endpoint="audit")
    def audit() -> tuple[str, int]:
        args = {
            k: (request.args.get(k) or "").strip()[:255]
            for k in ("actor", "object", "action", "since", "until", "before")
        }
        problems = []
        try:
            since = _moment(args["since"], end=False)
            until = _moment(args["until"], end=True)
        except PbgmError as error:
            since = until = None
            problems.append(error.message)
        before = (
            int(args["before"]) if args["before"].isdigit() and int(args["before"]) > 0 else None
        )
        query = AuditQuery(
            actor=args["actor"] or None,
            object_id=args["object"] or None,
            action_prefix=args["action"] or None,
            since=since,
            until=until,
            before_id=before,
        )
        entries = [] if problems else gui.store.search_audit(query, limit=PAGE_SIZE)
        shown = [
            (e, json.dumps(masked(e.details), ensure_ascii=False, sort_keys=True)) for e in entries
        ]
        older = entries[-1].id if len(entries) == PAGE_SIZE else None
        filters = {k: v for k, v in args.items() if v and k != "before"}
        return render_template(
            "audit.html", entries=shown, filters=filters, older=older, problems=problems
        ), (400 if problems else 200)
