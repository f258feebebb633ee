"""`create_app`: the REST API's app factory. It wires objects and nothing else.

No module-level app, engine or session; no migration, no network call, no
sleep: the store opens its connections on first use, the key ring reads its
directory on first use, and no thread starts here (the decision points' follower
and the decision log's writer start when the server's worker starts, or on first
use). Several processes (gunicorn workers, servers on one PostgreSQL) stay
consistent because every decision point follows the repository's change feed in the
background, and the per-request caches key on the repository revision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, cast

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from pbgm.access import AccessPoint
from pbgm.api._admin_principals import admin_blueprint
from pbgm.api._audit import DecisionLog
from pbgm.api._cache import RevisionReads, VerifiedTokens
from pbgm.api._decisions import DecisionService, decisions_blueprint
from pbgm.api._device_app import DeviceParts, device_parts
from pbgm.api._enforce import Enforcer
from pbgm.api._flexoffers import flexoffers_blueprint
from pbgm.api._http import current_request
from pbgm.api._limits import install_rate_limit
from pbgm.api._metrics import Metrics
from pbgm.api._notify import install_change_notifications
from pbgm.api._observe import install_observation
from pbgm.api._ops import ops_blueprint
from pbgm.api._policies import policies_blueprint
from pbgm.api.access_policy import PUBLIC_ENDPOINTS
from pbgm.api.auth import make_auth_blueprint, make_verifier
from pbgm.api.errors import register_error_handlers
from pbgm.api.settings import Settings, load_settings, settings_from
from pbgm.auth import KeyRing, TokenIssuer, TokenVerifier
from pbgm.bus import Bus
from pbgm.model import Clock, utc_now
from pbgm.network import Network
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.store.base import Store
from pbgm.store.factory import open_store


@dataclass(frozen=True)
class Services:
    """What the app was wired with: `app.extensions["pbgm"]`, for tests and tools."""

    settings: Settings
    store: Store
    access: AccessPoint
    keyring: KeyRing
    issuer: TokenIssuer
    metrics: Metrics
    enforcer: Enforcer
    public: frozenset[str]
    decisions: DecisionService
    decision_log: DecisionLog
    devices: DeviceParts
    mounted: frozenset[str] = frozenset()
    """Blueprints mounted beside the API (the admin GUI): they enforce access themselves."""
    clock: Clock = utc_now


class ApiFlask(Flask):
    """Flask, with the sync-or-async test of each hook and view made once per function:
    Flask asks `inspect.iscoroutinefunction` of every hook and the view on every request
    (eight times for a decision), and a function's answer never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._callables: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._callables[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable object: asked each time
            return super().ensure_sync(func)
        made = super().ensure_sync(func)
        if len(self._callables) < MAX_REMEMBERED_CALLABLES:
            self._callables[func] = made
        return made


MAX_REMEMBERED_CALLABLES = 4096
"""Hooks, views and error handlers are registered once; bound methods made per request
(none in pbgm) would only fill this up, and are then asked each time."""


MOUNTS_ENTRY_POINT_GROUP = "pbgm.api.mounts"
"""Entry points `name = package.module:mount`, each `mount(app, services) -> blueprint name`."""


def _settings(settings: Settings | Mapping[str, Any] | None) -> Settings:
    if settings is None:
        return load_settings()
    if isinstance(settings, Settings):
        return settings.replace()
    return settings_from(settings)


def create_app(
    settings: Settings | Mapping[str, Any] | None = None,
    *,
    store: Store | None = None,
    pdp: PolicyDecisionPoint | None = None,
    keyring: KeyRing | None = None,
    clock: Clock | None = None,
    bus: Bus | None = None,
    network: Network | None = None,
) -> Flask:
    """The pbgm REST API as a Flask app.

    `settings`: a `Settings`, a mapping of its field names, or None to read
    `PBGM_*` variables (and `PBGM_CONFIG`). `store` defaults to
    `open_store(settings.database_url)`, `keyring` to `KeyRing(settings.keys_dir)`;
    `pdp` answers `POST /api/v1/decisions` without a `policy_group` (default: one
    PDP per policy group over the store's published policies); `clock` is used by
    tokens, decisions and FlexOffer checks. With a `bus`, every committed
    administrative change is announced on `settings.notify_topic` so policy
    loaders refresh at once instead of at their next poll. `network` is the operator's
    network API for device actions (default: the one `settings.network_config` names,
    opened on first use); device events go on `bus`.
    """
    settings = _settings(settings)
    clock = clock or utc_now
    store = store if store is not None else open_store(settings.database_url, clock=clock)
    keyring = keyring if keyring is not None else KeyRing(settings.keys_dir, clock=clock)
    app = ApiFlask("pbgm.api", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    if settings.proxy_hops:  # the client address and scheme as the trusted proxies saw them
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    mounted: set[str] = set()
    services = _wire(app, settings, store, keyring, pdp, clock, mounted, bus, network)
    app.extensions["pbgm"] = services
    for mount in entry_points(group=MOUNTS_ENTRY_POINT_GROUP):
        mounted.add(mount.load()(app, services))
    app.extensions["pbgm"] = replace(services, mounted=frozenset(mounted))
    if bus is not None:
        install_change_notifications(app, bus, store, topic=settings.notify_topic)
    return app


def _wire(
    app: Flask,
    settings: Settings,
    store: Store,
    keyring: KeyRing,
    pdp: PolicyDecisionPoint | None,
    clock: Clock,
    mounted: set[str],
    bus: Bus | None = None,
    network: Network | None = None,
) -> Services:
    reads = cast(Store, RevisionReads(store))
    access = AccessPoint(reads, clock=clock)
    audience, lifetime = settings.token_audience, timedelta(seconds=settings.token_lifetime)
    issuer = TokenIssuer(
        keyring, issuer=settings.token_issuer, audience=audience, lifetime=lifetime, clock=clock
    )
    verifier = make_verifier(
        keyring, reads, issuer=settings.token_issuer, audience=audience, clock=clock
    )
    metrics = Metrics()
    public = PUBLIC_ENDPOINTS | ({"ops.metrics"} if settings.metrics_public else set())
    devices = device_parts(settings, store, clock, bus=bus, network=network, metrics=metrics)
    enforcer = Enforcer(
        store=store,
        reads=cast(RevisionReads, reads),
        access=access,
        verifier=cast(
            TokenVerifier,
            VerifiedTokens(verifier, clock, revision=cast(RevisionReads, reads).access_revision),
        ),
        public=frozenset(public),
        clock=clock,
        on_auth_failure=lambda code: metrics.authentication_failures.labels(code).inc(),
        authenticators=devices.authenticators,
    )
    install_observation(app, metrics, store)
    app.before_request(_unless_mounted(enforcer, mounted))
    app.after_request(_writes_seen(cast(RevisionReads, reads)))
    install_rate_limit(app, settings, frozenset(public))
    register_error_handlers(app)
    decisions = DecisionService(store, reads, access, pdp=pdp, clock=clock)
    log = DecisionLog(
        store,
        settings.audit_mask,
        max_request=settings.audit_max_request,
        capacity=settings.decision_log_queue,
        metrics=metrics,
    )
    pap = PolicyAdministrationPoint(store, clock=clock)
    for blueprint in (
        make_auth_blueprint(store=store, issuer=issuer, keyring=keyring, clock=clock),
        policies_blueprint(reads, access, metrics),
        decisions_blueprint(decisions, log, metrics, max_batch=settings.max_batch),
        flexoffers_blueprint(store, access, clock),
        admin_blueprint(pap),
        ops_blueprint(store, metrics, decisions),
        *devices.blueprints,
    ):
        app.register_blueprint(blueprint)
    return Services(
        settings,
        store,
        access,
        keyring,
        issuer,
        metrics,
        enforcer,
        frozenset(public),
        decisions,
        log,
        devices,
        clock=clock,
    )


def _unless_mounted(enforcer: Enforcer, mounted: set[str]) -> Callable[[], None]:
    """The API's hook for every request but those of mounted blueprints (own hook)."""

    def enforce() -> None:
        if current_request().blueprint in mounted:
            return None
        return enforcer()

    return enforce


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_WRITING = frozenset({"decisions.decide"})
"""Endpoints whose non-safe calls change nothing a request cache reads."""


def _writes_seen(reads: RevisionReads) -> Callable[[Response], Response]:
    """After a call that may have changed the repository (any non-safe method but a
    decision), the next request of this process reads the revisions itself."""

    def after(response: Response) -> Response:
        req = current_request()
        if req.method not in SAFE_METHODS and req.endpoint not in NOT_WRITING:
            reads.wrote()
        return response

    return after
