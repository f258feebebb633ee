"""The one enforcement point of the admin GUI: the blueprint's `before_request` hook.

For every request to the GUI it checks the CSRF token of state-changing
methods (Flask-WTF), ends a session idle for too long, works out what the
request addresses (`_targets`) and asks pbgm's own PDP (`access_policy`)
whether the user may make it. Views run only after a Permit and contain no
access checks of their own; lists show only what the user may read.

Refusals: an anonymous user is sent to the sign-in page; a signed-in one gets
404 for a policy they may not read (it looks the same as one that does not
exist) and 403 for everything else. Refused requests of signed-in users are
audited (`gui.refuse`).

`security_headers` sets the Content-Security-Policy (scripts and styles only
from pbgm itself, no inline script), `X-Frame-Options: DENY` and no-store
caching on every GUI answer.
"""

from __future__ import annotations

from datetime import datetime

from flask import (
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from pbgm.model import Decision, Request
from pbgm.model import Response as Decided
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import PolicyInformationPoint
from pbgm_admin._carry import carry
from pbgm_admin._gui import Gui
from pbgm_admin._targets import path_policy_id, policy_target, targets_of
from pbgm_admin.access_policy import (
    LEVEL_ENDPOINTS,
    PERMISSION_DENIED,
    SIGN_IN_REQUIRED,
    gui_policy_set,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
LAST_SEEN = "gui_seen"


class GuiEnforcer:
    """The `before_request` hook (see the module docstring)."""

    def __init__(self, gui: Gui, csrf: CSRFProtect) -> None:
        self.gui = gui
        self.csrf = csrf
        pip = PolicyInformationPoint([gui.grants])
        self.pdp = PolicyDecisionPoint(gui_policy_set(), pip=pip, clock=gui.clock)

    def __call__(self) -> Response | None:
        begin = getattr(self.gui.access.store, "begin_request", None)
        if begin is not None:
            begin()  # one revision read per request, as the API does
        if request.method not in SAFE_METHODS:
            self.csrf.protect()
        self._expire_idle_session()
        endpoint = request.endpoint or ""
        decided = self.decide(endpoint)
        if decided.decision is Decision.PERMIT:
            return None
        return self._refuse(endpoint, decided)

    def decide(self, endpoint: str) -> Decided:
        name = current_user.name if current_user.is_authenticated else ""
        resource = {"targets": targets_of(endpoint, self.gui.store)}
        action = {"id": endpoint, "method": request.method}
        asked = Request(subject={"id": name}, resource=resource, action=action)
        return self.pdp.decide(asked, now=self.gui.now())

    def _expire_idle_session(self) -> None:
        if not current_user.is_authenticated:
            return
        now = self.gui.now()
        seen = session.get(LAST_SEEN)
        try:
            last = datetime.fromisoformat(seen) if isinstance(seen, str) else None
        except ValueError:
            last = None
        if last is None or (now - last).total_seconds() > self.gui.idle_timeout_s:
            g.gui_expired = current_user.name  # whose form a refused POST carries over
            logout_user()
            session.pop(LAST_SEEN, None)
            flash("your session expired: sign in again", "info")
            return
        session[LAST_SEEN] = now.isoformat()

    def _refuse(self, endpoint: str, decided: Decided) -> Response:
        reason = decided.advice[0].id if decided.advice else PERMISSION_DENIED
        if reason == SIGN_IN_REQUIRED or not current_user.is_authenticated:
            if request.method in SAFE_METHODS:
                return redirect(url_for("gui.sign_in", next=request.full_path))
            if "gui_expired" in g:
                return self._sign_in_again(g.gui_expired, endpoint)
            return redirect(url_for("gui.sign_in"))
        self.gui.store.record_audit(
            actor=self.gui.actor(),
            action="gui.refuse",
            object_type="endpoint",
            object_id=endpoint or "unknown",
            details={"method": request.method, "reason": reason},
        )
        if endpoint in LEVEL_ENDPOINTS["read"] or not self._can_read_targets(endpoint):
            abort(404)
        abort(403)

    def _sign_in_again(self, name: str, endpoint: str) -> Response:
        """The sign-in page, carrying the form that the expired session sent (`_carry`)."""
        page = render_template(
            "sign_in.html",
            name=name,
            next="",
            carried=carry(name, endpoint),
            error="your session expired before this form was sent; nothing was saved. "
            "Sign in again to get back to it with what you typed.",
        )
        return make_response(page, 401)

    def _can_read_targets(self, endpoint: str) -> bool:
        """Whether the user may read the policy in the path (if any) as it is now."""
        policy_id = path_policy_id()
        if policy_id is None:
            return True
        target = policy_target(self.gui.store, policy_id)
        return self.gui.access.allowed(self.gui.principal(), "read", target)


def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "gui.static":
        response.headers["Cache-Control"] = "no-store"
    return response
