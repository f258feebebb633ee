"""The per-client request rate limit of the REST API, by Flask-Limiter.

`PBGM_RATE_LIMIT` (default `600/minute`, Flask-Limiter's syntax, `0` for none)
is counted per caller: the token's subject once the enforcement hook has
authenticated it (the limiter's check runs after that hook), so one client
cannot spend another's budget, whatever address it comes from. The public
endpoints (token, JWKS, health, OpenAPI) are not counted: the token endpoint
has its own back-off on failed logins (`pbgm.api.auth`), and health checks must
not be refused. A refused call is `429 rate_limited` with `Retry-After`.

Counts live in `PBGM_RATE_LIMIT_STORAGE`: `memory://` keeps them per process
(with N gunicorn workers a client gets up to N times the budget); a shared
storage such as `redis://host:6379` makes the budget one for every worker and
server.
"""

from __future__ import annotations

from flask import Flask, g
from flask_limiter import Limiter

from pbgm.api._http import current_request
from pbgm.api.settings import Settings


def _caller() -> str:
    who = g._get_current_object().get("pbgm_principal")
    return f"client:{who.id}" if who is not None else f"address:{current_request().remote_addr}"


def install_rate_limit(app: Flask, settings: Settings, public: frozenset[str]) -> Limiter | None:
    """A `Limiter` on `app` with the settings' limit, or None when the limit is off.

    Call it after the enforcement hook is registered, so that the caller is known.
    """
    if not settings.rate_limit:
        return None
    limiter = Limiter(
        _caller,
        app=app,
        default_limits=[settings.rate_limit],
        storage_uri=settings.rate_limit_storage,
        headers_enabled=True,
        strategy="moving-window",
    )

    @limiter.request_filter
    def uncounted() -> bool:
        endpoint = current_request().endpoint
        return endpoint is None or endpoint in public

    return limiter
