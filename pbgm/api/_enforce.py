"""The one enforcement point of the REST API: a `before_request` hook.

For every endpoint but the public ones it authenticates the bearer token, works
out what the call addresses (`_resources`) and asks pbgm's own PDP
(`access_policy`) whether the caller may make it; the per-client rate limit
(`_limits`) is counted right after. Handlers
run only after a Permit and contain no access checks of their own; what they do
with grants (serving only readable policies) goes through the Access Point.

A refused administrative call is audited (`api.refuse`), so attempts show in the
audit log beside the changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from flask import Request as FlaskRequest
from flask import g, request

from pbgm.access import AccessPoint, Principal
from pbgm.api._cache import RevisionReads
from pbgm.api._http import current_request, path_names
from pbgm.api._resources import resource_of
from pbgm.api.access_policy import (
    ADMIN_ENDPOINTS,
    INSUFFICIENT_SCOPE,
    AdminGrants,
    api_policy_set,
)
from pbgm.api.auth import verify_bearer
from pbgm.auth import Claims, TokenVerifier
from pbgm.errors import AuthenticationError, PermissionDeniedError
from pbgm.model import Clock, Decision, Request, Response
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import PolicyInformationPoint
from pbgm.store.base import Store

MAX_REMEMBERED = 10_000


class Enforcer:
    """The `before_request` hook (see the module docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        reads: RevisionReads,
        access: AccessPoint,
        verifier: TokenVerifier,
        public: frozenset[str],
        clock: Clock,
        on_auth_failure: Callable[[str], None],
        authenticators: Mapping[str, Callable[[], Claims]] | None = None,
    ) -> None:
        self.store = store
        self.authenticators = dict(authenticators or {})
        self.reads = reads
        self.verifier = verifier
        self.public = public
        self.clock = clock
        self.on_auth_failure = on_auth_failure
        pip = PolicyInformationPoint([AdminGrants(access)])
        self.pdp = PolicyDecisionPoint(api_policy_set(), pip=pip, clock=clock)
        self._scoped: dict[tuple[str, str, tuple[str, ...]], Response] = {}

    def __call__(self) -> None:
        req = current_request()  # read a dozen times below: looked up once
        endpoint = req.endpoint
        if endpoint is None or endpoint in self.public:
            return  # unknown routes answer 404; public ones need no token
        self.reads.begin_request()
        claims = self._authenticate(req, endpoint)
        path_names(req)
        here = g._get_current_object()
        here.pbgm_claims = claims
        here.pbgm_principal = Principal(claims.subject, kind="service")
        decision = self.decide(claims, endpoint, req.method)
        if decision.decision is not Decision.PERMIT:
            self._refuse(claims, endpoint, decision)

    def decide(self, claims: Claims, endpoint: str, method: str) -> Response:
        """The PDP's answer for this call (subject from the token).

        Outside administration the API policy reads only the endpoint and the
        token's scopes (`access_policy`), so its answer for a pair is remembered;
        administrative calls are decided afresh, grants and all.
        """
        key = (endpoint, method, claims.scopes)
        if endpoint not in ADMIN_ENDPOINTS and key in self._scoped:
            return self._scoped[key]
        subject = {"id": claims.subject, "kind": "service", "scopes": claims.scopes}
        action = {"id": endpoint, "method": method}
        resource = resource_of(endpoint, cast(Store, self.reads))  # the request's memoised reads
        answer = self.pdp.decide(Request(subject=subject, resource=resource, action=action))
        if endpoint not in ADMIN_ENDPOINTS and len(self._scoped) < MAX_REMEMBERED:
            self._scoped[key] = answer
        return answer

    def _authenticate(self, req: FlaskRequest, endpoint: str) -> Claims:
        """The bearer token's claims; an endpoint with its own credential (the device
        notification sink) is authenticated by its `authenticators` entry instead."""
        special = self.authenticators.get(endpoint)
        try:
            if special is not None:
                return special()
            return verify_bearer(req, self.verifier)
        except AuthenticationError as error:
            self.on_auth_failure(error.code)
            raise

    def _refuse(self, claims: Claims, endpoint: str, response: Response) -> None:
        reason = response.advice[0].id if response.advice else "permission_denied"
        if endpoint in ADMIN_ENDPOINTS:
            self.store.record_audit(
                actor=claims.subject,
                action="api.refuse",
                object_type="endpoint",
                object_id=endpoint,
                details={"method": request.method, "reason": reason},
            )
        if reason == INSUFFICIENT_SCOPE:
            scope = response.advice[0].attributes.get("required_scope", "")
            raise PermissionDeniedError(
                f"the token lacks the scope `{scope}`",
                code=INSUFFICIENT_SCOPE,
                required_scope=scope,
            )
        raise PermissionDeniedError(
            "an admin grant on what this call addresses is required", code="permission_denied"
        )
