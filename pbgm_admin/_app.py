"""Mounting the admin GUI on the API's app: the blueprint, sessions, CSRF, Flask-Login."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, render_template
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from pbgm.access import encode_id
from pbgm.api.errors import status_of, unexpected_error_response
from pbgm.errors import ConfigurationError, PbgmError
from pbgm_admin import (
    _views_audit,
    _views_auth,
    _views_editor,
    _views_flexoffers,
    _views_groups,
    _views_policies,
    _views_principals,
    _views_transfer,
    _views_try,
)
from pbgm_admin._enforce import GuiEnforcer, security_headers
from pbgm_admin._gui import DEFAULT_IDLE_TIMEOUT_S, Gui
from pbgm_admin._session import GuiSessionInterface, load_user, session_key

BLUEPRINT_NAME = "gui"
URL_PREFIX = "/admin"


def _idle_timeout() -> int:
    text = os.environ.get("PBGM_ADMIN_IDLE_TIMEOUT", str(DEFAULT_IDLE_TIMEOUT_S))
    if not text.isdigit() or not 60 <= int(text) <= 86_400:
        raise ConfigurationError("`PBGM_ADMIN_IDLE_TIMEOUT` must be 60 to 86400 seconds")
    return int(text)


def admin_gui_blueprint(gui: Gui, csrf: CSRFProtect) -> Blueprint:
    """Every page of the GUI on one blueprint, behind one enforcement hook."""
    blueprint = Blueprint(
        BLUEPRINT_NAME,
        __name__,
        url_prefix=URL_PREFIX,
        template_folder="templates",
        static_folder="static",
    )
    blueprint.before_request(GuiEnforcer(gui, csrf))
    blueprint.context_processor(
        lambda: {"encode_id": encode_id, "global_admin": gui.is_global_admin}
    )
    blueprint.after_request(security_headers)
    for module in (
        _views_auth,
        _views_policies,
        _views_groups,
        _views_editor,
        _views_try,
        _views_transfer,
        _views_principals,
        _views_audit,
        _views_flexoffers,
    ):
        module.add_routes(blueprint, gui)
    _add_error_pages(blueprint)
    return blueprint


def _error_page(status: int, title: str, message: str, code: str = "") -> tuple[str, int]:
    return render_template(
        "error.html", status=status, title=title, message=message, code=code
    ), status


def _add_error_pages(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return _error_page(
            400,
            "form refused",
            f"{error.description}: reload the page and send the form again",
            "csrf_failed",
        )

    @blueprint.errorhandler(PbgmError)
    def pbgm_error(error: PbgmError) -> tuple[str, int]:
        status = status_of(error)
        message = error.message if status < 500 else "the server could not answer"
        return _error_page(status, "refused", message, error.code)

    @blueprint.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int]:
        logged = unexpected_error_response(error)  # logs it, as the API does
        correlation = (logged.get_json(silent=True) or {}).get("correlation_id", "")
        message = f"the server could not answer; quote `{correlation}` when reporting this"
        return _error_page(500, "internal error", message, "internal_error")

    @blueprint.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        status = error.code or 500
        messages = {
            403: "you may not do this: ask an administrator for a grant",
            404: "there is nothing here, or nothing you may see",
        }
        message = messages.get(status, error.description or "")
        return _error_page(status, error.name, message)


def _only_on(blueprint: Blueprint, app: Flask, hook: Any) -> None:
    """Run an app-wide `after_request` hook of an extension on the GUI's responses only:
    Flask-Login's remember-me cookie, which opens the session of every response, has
    nothing to do on the API's (each decision paid for it)."""
    hooks = app.after_request_funcs.get(None, [])
    if hook is not None and hook in hooks:
        hooks.remove(hook)
        blueprint.after_request(hook)


def mount(app: Flask, services: Any) -> str:
    """Mount the GUI on the API's app (`pbgm.api.mounts` entry point); its blueprint name."""
    gui = Gui(services.store, services.access, services.clock, _idle_timeout())
    keys_dir = services.settings.keys_dir
    app.config.update(
        SESSION_COOKIE_NAME="pbgm_admin",
        SESSION_COOKIE_PATH=URL_PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the GUI's hook, never on the API
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a long edit is not lost
        WTF_CSRF_SSL_STRICT=True,
    )
    app.session_interface = GuiSessionInterface(URL_PREFIX, lambda: session_key(keys_dir))
    csrf = CSRFProtect(app)
    logins = LoginManager(app)
    logins.user_loader(lambda session_id: load_user(gui.access.store, session_id))
    logins.login_view = f"{BLUEPRINT_NAME}.sign_in"
    blueprint = admin_gui_blueprint(gui, csrf)
    _only_on(blueprint, app, getattr(logins, "_update_remember_cookie", None))
    app.register_blueprint(blueprint)
    app.extensions["pbgm_admin"] = gui
    return BLUEPRINT_NAME
