"""Reading policies: the overview, the paged list, a policy by type, its history and diffs,
and the lifecycle actions (publish, retire, roll back) with their reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pbgm.access import encode_id
from pbgm.errors import PbgmError
from pbgm.model import POLICY_TYPES, PolicyStatus
from pbgm.store.base import PolicyQuery, PolicyRecord
from pbgm_admin import _render
from pbgm_admin._gui import Gui
from pbgm_admin._targets import path_policy_id

PAGE_SIZE = 50
MAX_REASON = 2000


def page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 10**6 else 1


def policy_url(endpoint: str, policy_id: str, **values: Any) -> str:
    return url_for(endpoint, policy_id=encode_id(policy_id), **values)


def _policy_id() -> str:
    policy_id = path_policy_id()
    if policy_id is None:
        abort(404)
    return policy_id


def required_reason() -> str | None:
    reason = request.form.get("reason", "").strip()
    return reason[:MAX_REASON] if reason else None


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/", endpoint="overview")
    def overview() -> str:
        seen = gui.visibility()
        counts = [
            c
            for c in gui.store.policy_counts()
            if seen.groups is None or c.policy_group in seen.groups
        ]
        by_type: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        by_group: Counter[str] = Counter()
        for c in counts:
            by_type[c.type] += c.count
            by_status[str(c.status)] += c.count
            by_group[c.policy_group] += c.count
        latest = gui.store.page_policies(
            PolicyQuery(visible_groups=seen.groups, visible_ids=seen.ids, order="updated"), limit=10
        )
        return render_template(
            "overview.html",
            revision=gui.store.revision(),
            by_type=sorted(by_type.items()),
            by_status=sorted(by_status.items()),
            by_group=sorted(by_group.items()),
            latest=latest.records,
        )

    @blueprint.get("/policies", endpoint="policies")
    def policies() -> str:
        seen = gui.visibility()
        args = request.args
        status_text = args.get("status") or None
        status = (
            PolicyStatus(status_text) if status_text in {str(s) for s in PolicyStatus} else None
        )
        kind = args.get("type") or None
        query = PolicyQuery(
            visible_groups=seen.groups,
            visible_ids=seen.ids,
            policy_group=args.get("group") or None,
            policy_type=kind if kind in POLICY_TYPES else None,
            status=status,
            asset_id=args.get("asset") or None,
            text=(args.get("q") or "")[:200] or None,
        )
        number = page_number(args.get("page"))
        page = gui.store.page_policies(query, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        pages = max(1, -(-page.total // PAGE_SIZE))
        filters = {
            k: v for k, v in args.items() if k in ("group", "type", "status", "asset", "q") and v
        }
        return render_template(
            "policies.html",
            page=page,
            number=number,
            pages=pages,
            filters=filters,
            groups=gui.groups_with_read(),
            types=POLICY_TYPES,
            statuses=[str(s) for s in PolicyStatus],
        )

    @blueprint.get("/policies/<policy_id>", endpoint="policy")
    def policy(policy_id: str) -> str:
        return render_policy(gui, gui.store.get_policy(_policy_id()))

    @blueprint.get("/policies/<policy_id>/history", endpoint="history")
    def history(policy_id: str) -> str:
        record = gui.store.get_policy(_policy_id())
        versions = gui.store.policy_versions(record.id)
        audit = [
            e
            for e in gui.store.list_audit(limit=200, object_id=record.id)
            if e.object_type == "policy"
        ]
        return render_template(
            "history.html",
            record=record,
            versions=versions,
            audit=audit,
            may_admin=gui.may("admin", record.id, record.policy_group),
        )

    @blueprint.get("/policies/<policy_id>/diff", endpoint="diff")
    def diff(policy_id: str) -> str:
        record = gui.store.get_policy(_policy_id())
        latest = record.version
        old_number = (
            page_number(request.args.get("from"))
            if request.args.get("from")
            else max(1, latest - 1)
        )
        new_number = page_number(request.args.get("to")) if request.args.get("to") else latest
        old = gui.store.get_policy_version(record.id, old_number)
        new = gui.store.get_policy_version(record.id, new_number)
        rows = _render.side_by_side(old.document, new.document)
        return render_template(
            "diff.html", record=record, old=old, new=new, rows=rows, versions=range(1, latest + 1)
        )

    @blueprint.post("/policies/<policy_id>/publish", endpoint="publish")
    def publish(policy_id: str) -> Response | tuple[str, int]:
        version_text = request.form.get("version", "")
        version = int(version_text) if version_text.isdigit() else None
        return _with_reason(
            gui,
            "publishing needs a reason",
            "published",
            lambda i, reason: gui.pap.publish(i, actor=gui.actor(), version=version, reason=reason),
        )

    @blueprint.post("/policies/<policy_id>/retire", endpoint="retire")
    def retire(policy_id: str) -> Response | tuple[str, int]:
        return _with_reason(
            gui,
            "retiring needs a reason",
            "retired",
            lambda i, reason: gui.pap.retire(i, actor=gui.actor(), reason=reason),
        )

    @blueprint.post("/policies/<policy_id>/rollback", endpoint="rollback")
    def rollback(policy_id: str) -> Response | tuple[str, int]:
        policy_id = _policy_id()
        reason = required_reason()
        version_text = request.form.get("version", "")
        if reason is None or not version_text.isdigit():
            return _lifecycle_refused(gui, policy_id, "rolling back needs a version and a reason")
        try:
            record = gui.pap.rollback(
                policy_id, int(version_text), actor=gui.actor(), reason=reason
            )
        except PbgmError as error:
            return _lifecycle_refused(gui, policy_id, error.message)
        flash(
            f"rolled `{policy_id}` back to version {version_text} (now version {record.version})",
            "success",
        )
        return redirect(policy_url("gui.policy", policy_id))


def render_policy(gui: Gui, record: PolicyRecord, **extra: Any) -> str:
    """The policy page: content by type, rules in readable form, versions, actions."""
    content = record.document.get("content") or {}
    limits = record.type == "operational_limits"
    return render_template(
        "policy.html",
        record=record,
        document=record.document,
        content=content,
        versions=gui.store.policy_versions(record.id),
        voltage_svg=_render.voltage_band_svg(content.get("voltage") or {}) if limits else "",
        pq_svg=_render.pq_svg(content.get("power") or {}) if limits else "",
        target_text=_render.target_text,
        expression_text=_render.expression_text,
        may_write=gui.may("write", record.id, record.policy_group),
        may_admin=gui.may("admin", record.id, record.policy_group),
        **extra,
    )


def _with_reason(
    gui: Gui, needs: str, done: str, change: Callable[[str, str], object]
) -> Response | tuple[str, int]:
    """A lifecycle change of the policy in the path, refused without a reason."""
    policy_id = _policy_id()
    reason = required_reason()
    if reason is None:
        return _lifecycle_refused(gui, policy_id, needs)
    change(policy_id, reason)
    flash(f"{done} `{policy_id}`", "success")
    return redirect(policy_url("gui.policy", policy_id))


def _lifecycle_refused(gui: Gui, policy_id: str, message: str) -> tuple[str, int]:
    return render_policy(gui, gui.store.get_policy(policy_id), lifecycle_error=message), 422
