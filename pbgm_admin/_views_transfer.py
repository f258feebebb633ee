"""Import and export of bundles: a dry-run preview first, then an atomic apply with progress.

The preview reads the uploaded bundle (JSON or YAML, one file) through the same
gate and checks as `pbgm policy import` (`pbgm.bundle`), and lists what would be
added, changed or left as it is, and every validation problem. Imports are
additive: policies of the repository that the bundle does not name are listed
as kept. The apply posts the same bundle text back (nothing is held on the
server between the two steps) and streams its progress as the changes are
made inside one transaction: all land or none does.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, render_template, request, stream_with_context

from pbgm.bundle import Bundle, bundle_data, bundle_from_data, export_bundle, import_bundle
from pbgm.errors import PbgmError, Problem, ValidationError
from pbgm.policy import load_document
from pbgm.store.base import PolicyQuery
from pbgm_admin._gui import Gui

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
PROGRESS_STEPS = 20


def _read(text: bytes, source: str) -> tuple[Bundle | None, list[Problem]]:
    problems: list[Problem] = []
    try:
        data = load_document(text, source=source, max_bytes=MAX_BUNDLE_BYTES)
    except PbgmError as error:
        return None, [Problem("$", error.code, error.message)]
    bundle = bundle_from_data(data, source=source, problems=problems, with_policies=True)
    return (None if problems else bundle), problems


def _uploaded() -> tuple[bytes, str]:
    upload = request.files.get("bundle")
    if upload is not None and upload.filename:
        return upload.read(MAX_BUNDLE_BYTES + 1), upload.filename
    return request.form.get("bundle_text", "").encode(), "bundle"


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/transfer", endpoint="transfer")
    def transfer() -> str:
        return render_template("transfer.html", groups=gui.all_groups())

    @blueprint.post("/transfer/preview", endpoint="import_preview")
    def import_preview() -> tuple[str, int]:
        text, source = _uploaded()
        bundle, problems = _read(text, source)
        publish = request.form.get("publish") == "on"
        plan = None
        if bundle is not None:
            try:
                plan = import_bundle(
                    gui.store, bundle, actor=gui.actor(), dry_run=True, publish=publish
                )
            except ValidationError as error:
                problems = list(error.problems)
            except PbgmError as error:
                problems = [Problem("$", error.code, error.message)]
        kept: list[str] = []
        if plan is not None and bundle is not None:
            named = {d["id"] for d in bundle.policies}
            every = gui.store.page_policies(PolicyQuery(), limit=1000)
            kept = [r.id for r in every.records if r.id not in named]
        bundle_text = (
            json.dumps(bundle_data(bundle), ensure_ascii=False) if bundle is not None else ""
        )
        status = 200 if plan is not None else 422
        return render_template(
            "import_preview.html",
            plan=plan,
            problems=problems,
            kept=kept,
            bundle_text=bundle_text,
            publish=publish,
            source=source,
        ), status

    @blueprint.post("/transfer/apply", endpoint="import_apply")
    def import_apply() -> Response:
        bundle, problems = _read(request.form.get("bundle_text", "").encode(), "bundle")
        publish = request.form.get("publish") == "on"
        reason = request.form.get("reason", "").strip()[:2000] or "bundle import (admin GUI)"
        actor = gui.actor()
        head = render_template("import_apply_head.html")
        if bundle is None:
            tail = render_template("import_apply_tail.html", problems=problems, plan=None)
            return Response(head + tail, status=422, mimetype="text/html")
        events = _run_in_background(gui, bundle, actor=actor, publish=publish, reason=reason)

        def stream() -> Iterator[str]:
            yield head
            for kind, value in events:
                if kind == "progress":
                    done, total = value
                    yield f"<li>{done} of {total} changes applied</li>\n"
                elif kind == "done":
                    yield render_template("import_apply_tail.html", plan=value, problems=[])
                else:
                    found = (
                        list(value.problems)
                        if isinstance(value, ValidationError)
                        else [
                            Problem(
                                "$",
                                getattr(value, "code", "import_failed"),
                                getattr(value, "message", "the import failed"),
                            )
                        ]
                    )
                    yield render_template("import_apply_tail.html", plan=None, problems=found)

        return Response(stream_with_context(stream()), mimetype="text/html")

    @blueprint.get("/transfer/export", endpoint="export")
    def export() -> Response:
        group = request.args.get("policy_group") or None
        bundle = export_bundle(gui.store, policy_group=group)
        body = json.dumps(bundle_data(bundle), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        name = f"pbgm-bundle-{group or 'all'}.json".replace("/", "_").replace('"', "_")
        gui.store.record_audit(
            actor=gui.actor(),
            action="gui.export",
            object_type="bundle",
            object_id=group or "*",
            details={"policies": len(bundle.policies)},
        )
        return Response(
            body,
            mimetype="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _run_in_background(
    gui: Gui, bundle: Bundle, *, actor: str, publish: bool, reason: str
) -> Iterator[tuple[str, Any]]:
    """Run the import in a thread; yield ("progress", (done, total)) about every 5 %,
    then ("done", plan) or ("error", exception)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def progress(done: int, total: int) -> None:
        step = max(1, total // PROGRESS_STEPS)
        if done % step == 0 or done == total:
            events.put(("progress", (done, total)))

    def work() -> None:
        try:
            plan = import_bundle(
                gui.store, bundle, actor=actor, publish=publish, progress=progress, reason=reason
            )
        except Exception as error:
            events.put(("error", error))
        else:
            events.put(("done", plan))

    threading.Thread(target=work, name="pbgm-admin-import", daemon=True).start()
    while True:
        kind, value = events.get()
        yield kind, value
        if kind != "progress":
            return
