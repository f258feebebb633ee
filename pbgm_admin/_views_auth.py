"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from pbgm_admin._carry import carried
from pbgm_admin._enforce import LAST_SEEN
from pbgm_admin._gui import Gui
from pbgm_admin._session import GuiUser, check_password

MAX_NAME = 255
MAX_PASSWORD = 1024


def _safe_next(target: str | None) -> str:
    """Only a path of the GUI itself: never an open redirect."""
    if not target:
        return url_for("gui.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/") or "\\" in target:
        return url_for("gui.overview")
    return target


def _resume(name: str, text: str) -> str | None:
    """The resume page of a form carried over the sign-in (`_carry`), for its own user."""
    form = carried(text)
    if form is None:
        return None
    if form.user != name:
        flash("a form left by another user's expired session was discarded", "info")
        return None
    return render_template("resume.html", form=form)


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
    def sign_in() -> Response | tuple[str, int] | str:
        next_page = request.values.get("next", "")
        if request.method == "GET":
            return render_template("sign_in.html", next=next_page, name="")
        kept = request.form.get("carried", "")  # a form sent after its session expired
        name = request.form.get("name", "")[:MAX_NAME]
        password = request.form.get("password", "")[:MAX_PASSWORD]
        source = request.remote_addr or "unknown"
        wait = gui.throttle.wait_s(name, source)
        if wait:
            message = (
                f"too many failed sign-ins for `{name}` from here: wait {wait} s and try again"
            )
            page = render_template(
                "sign_in.html", next=next_page, name=name, error=message, carried=kept
            )
            return page, 429
        user = check_password(gui.store, name, password)
        if user is None:
            gui.throttle.failed(name, source)
            gui.store.record_audit(
                actor=name or "anonymous",
                action="gui.sign_in_failed",
                object_type="user",
                object_id=name or "anonymous",
                details={"source": source},
            )
            error = "wrong user name or password"
            page = render_template(
                "sign_in.html", next=next_page, name=name, error=error, carried=kept
            )
            return page, 401
        gui.throttle.succeeded(name, source)
        session.clear()  # a fresh session: no fixation
        login_user(GuiUser(user))
        session[LAST_SEEN] = gui.now().isoformat()
        gui.store.record_audit(
            actor=name,
            action="gui.sign_in",
            object_type="user",
            object_id=name,
            details={"source": source},
        )
        return _resume(name, kept) or redirect(_safe_next(next_page))

    @blueprint.post("/sign-out", endpoint="sign_out")
    def sign_out() -> Response:
        logout_user()
        session.clear()
        flash("you are signed out", "info")
        return redirect(url_for("gui.sign_in"))
