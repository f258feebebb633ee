"""Creating and editing policies in generated forms; a lost race keeps the user's text.

A save validates the document with the PAP (the same rules as the REST API
and the CLI) and shows every problem next to the input its JSON path points
at; nothing is stored until there are none. The edit form carries the version
it was opened at: when someone saved meanwhile, the conflict page shows who
changed what since (and the diff), with everything the user typed still in
the form, ready to be saved over the newer version on purpose.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request
from werkzeug.wrappers import Response

from pbgm.errors import AlreadyExistsError, ConflictError, NotFoundError, Problem, ValidationError
from pbgm.model import POLICY_TYPES, Permission
from pbgm_admin import _render
from pbgm_admin._forms import EditorForm, build_form, fill_from_post, place_problems, read_form
from pbgm_admin._gui import Gui
from pbgm_admin._views_policies import MAX_REASON, _policy_id, policy_url

DEFAULT_TYPE = "operational_limits"


def _groups(gui: Gui, current: str | None = None) -> list[str]:
    groups = gui.groups_with(Permission.WRITE)
    if current and current not in groups:
        groups = sorted([*groups, current])
    return groups


def _checked(gui: Gui, form: EditorForm) -> tuple[dict[str, Any], list[Problem]]:
    """The posted document and every problem: unreadable inputs, then the PAP's."""
    document, problems = read_form(form)
    unreadable = {p.path for p in problems}
    try:
        gui.pap.validate(document)
    except ValidationError as error:
        problems += [p for p in error.problems if not any(p.path.startswith(u) for u in unreadable)]
    return document, problems


def _editor(gui: Gui, form: EditorForm, *, status: int = 200, **extra: Any) -> tuple[str, int]:
    return render_template("editor.html", form=form, types=POLICY_TYPES, **extra), status


def _posted_form(gui: Gui, policy_type: str, current_group: str | None = None) -> EditorForm:
    form = build_form(
        policy_type,
        _groups(gui, current_group),
        free_group=gui.is_global_admin(),
        document=None,
    )
    fill_from_post(form, request.form)
    return form


def _reason() -> str:
    return request.form.get("reason", "").strip()[:MAX_REASON]


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/policies/new", endpoint="new_policy")
    def new_policy() -> tuple[str, int]:
        policy_type = request.args.get("type", DEFAULT_TYPE)
        if policy_type not in POLICY_TYPES:
            policy_type = DEFAULT_TYPE
        groups = _groups(gui)
        form = build_form(policy_type, groups, free_group=gui.is_global_admin(), document=None)
        return _editor(gui, form, mode="create")

    @blueprint.post("/policies/new", endpoint="create_policy")
    def create_policy() -> Response | tuple[str, int]:
        policy_type = request.form.get("policy_type", "")
        if policy_type not in POLICY_TYPES:
            policy_type = DEFAULT_TYPE
        form = _posted_form(gui, policy_type)
        if request.form.get("resume"):  # carried over an expired session: shown, not saved
            return _editor(gui, form, mode="create", reason=_reason(), restored=True)
        document, problems = _checked(gui, form)
        if not problems:
            try:
                record = gui.pap.create(document, actor=gui.actor(), reason=_reason())
            except AlreadyExistsError as error:
                problems = [Problem("$.id", error.code, error.message)]
            except ValidationError as error:
                problems = list(error.problems)
            else:
                flash(f"created `{record.id}` (a draft, version 1)", "success")
                return redirect(policy_url("gui.policy", record.id))
        place_problems(form, problems)
        return _editor(gui, form, status=422, mode="create", reason=_reason())

    @blueprint.get("/policies/<policy_id>/edit", endpoint="edit_policy")
    def edit_policy(policy_id: str) -> tuple[str, int]:
        record = gui.store.get_policy(_policy_id())
        form = build_form(
            record.type,
            _groups(gui, record.policy_group),
            free_group=gui.is_global_admin(),
            document=record.document,
        )
        return _editor(gui, form, mode="edit", record=record, expected_version=record.version)

    @blueprint.post("/policies/<policy_id>/edit", endpoint="save_policy")
    def save_policy(policy_id: str) -> Response | tuple[str, int]:
        record = gui.store.get_policy(_policy_id())
        form = _posted_form(gui, record.type, record.policy_group)
        expected_text = request.form.get("expected_version", "")
        expected = int(expected_text) if expected_text.isdigit() else record.version
        if request.form.get("resume"):  # carried over an expired session: shown, not saved
            return _editor(
                gui,
                form,
                mode="edit",
                record=record,
                expected_version=expected,
                reason=_reason(),
                restored=True,
            )
        document, problems = _checked(gui, form)
        if not problems:
            try:
                saved = gui.pap.update(
                    record.id,
                    document,
                    expected_version=expected,
                    actor=gui.actor(),
                    reason=_reason(),
                )
            except ConflictError:
                return _conflict(gui, form, record.id, expected)
            except ValidationError as error:
                problems = list(error.problems)
            else:
                flash(f"saved `{saved.id}` as version {saved.version}", "success")
                return redirect(policy_url("gui.policy", saved.id))
        place_problems(form, problems)
        return _editor(
            gui,
            form,
            status=422,
            mode="edit",
            record=record,
            expected_version=expected,
            reason=_reason(),
        )


def _conflict(gui: Gui, form: EditorForm, policy_id: str, expected: int) -> tuple[str, int]:
    """The user's form, untouched, with what changed since `expected`."""
    current = gui.store.get_policy(policy_id)
    newer = [v for v in gui.store.policy_versions(policy_id) if v.version > expected]
    try:
        base = gui.store.get_policy_version(policy_id, expected).document
    except NotFoundError:  # a version that never existed: compare with nothing
        base = {}
    rows = _render.side_by_side(base, current.document)
    return _editor(
        gui,
        form,
        status=409,
        mode="edit",
        record=current,
        expected_version=current.version,
        conflict={"expected": expected, "newer": newer, "rows": rows},
        reason=_reason(),
    )
