"""The Policy Access Point: services fetch published policies under their grants.

pbgm protects itself with its own PDP. The grants of the repository are compiled
into an internal `PolicySet` (`compile_grants`): one policy per grant target
(`resource.policy_id` or `resource.policy_group`), one Permit rule per action
(`read` for holders of read, write or admin; `write` for write or admin; `admin`
for admin), deny-unless-permit everywhere. It is recompiled when the store's access
revision moves (principals, memberships, grants). A request's subject carries `principals`, the bag
`["user:<id>", "group:<g>", ...]` the rules match on.

Who is the caller: a `Principal` (user or service account). Its groups are the
ones named on the principal plus the memberships in the store, resolved once
per call. An unknown or disabled principal, and a disabled grant, give nothing.

Not found and not permitted are the same `NotFoundError` with the same message,
so a caller cannot probe for policies it may not read. A policy that exists in
another policy group (or an asset without a policy of the asked type) is
reported as `id_type_mismatch` (400) only to a caller who may read that policy;
to anyone else it is not found. Only published policies are served.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pbgm.errors import InvalidInputError, MalformedIdError, NotFoundError
from pbgm.model import (
    POLICY_TYPES,
    Clock,
    Decision,
    Effect,
    Match,
    Permission,
    Policy,
    PolicySet,
    PolicyStatus,
    Request,
    Response,
    Rule,
    Status,
    Target,
    utc_now,
)
from pbgm.pdp import PolicyDecisionPoint
from pbgm.policy import canonical_json
from pbgm.store.base import Grant, PolicyRecord, Store

MAX_ID_BYTES = 512
MAX_REMEMBERED = 10_000
"""Principals remembered per store revision by an `AccessPoint` (then forgotten at once)."""
MAX_NAME_CHARS = 200
GRANTS_POLICY_SET = "pbgm-grants"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_TARGET_ATTRIBUTES = {"policy": "policy_id", "policy_group": "policy_group"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: a user or a service account (`kind` is `user` or `service`)."""

    id: str
    kind: str = "user"
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServedPolicy:
    """A published policy as services receive it; `etag` changes with the document."""

    id: str
    type: str
    policy_group: str
    asset_id: str | None
    version: int
    document: Mapping[str, Any]
    etag: str

    @classmethod
    def of(cls, record: PolicyRecord) -> ServedPolicy:
        document = record.published_document or {}
        return cls(
            id=record.id,
            type=record.type,
            policy_group=record.policy_group,
            asset_id=record.asset_id,
            version=record.published_version or 0,
            document=document,
            etag=policy_etag(record.id, document),
        )


def policy_etag(policy_id: str, document: Mapping[str, Any]) -> str:
    """The ETag of a served policy: a digest of its id and document, so a client can
    check that a copy it holds is the content the ETag names (`pbgm.loader` does)."""
    digest = hashlib.sha256(canonical_json([policy_id, document]).encode()).hexdigest()
    return f'"{digest[:32]}"'


def listing_etag(etags: Iterable[str]) -> str:
    """The ETag of a list of served policies (`GET /policy?asset_id=...`), from theirs."""
    digest = hashlib.sha256(canonical_json(list(etags)).encode()).hexdigest()
    return f'"{digest[:32]}"'


# --- ids on the wire -------------------------------------------------------------


def encode_id(value: str) -> str:
    """URL-safe base64 without padding: how ids travel in query strings."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_id(encoded: str, *, what: str = "policy_id") -> str:
    """Decode an id sent as URL-safe base64 (padding optional), strictly.

    Refused with `malformed_id`: empty, not the URL-safe alphabet, a length no
    base64 text has, a non-canonical encoding, more than 512 bytes, bytes that
    are not UTF-8, and control characters.
    """
    if not isinstance(encoded, str) or not encoded:
        raise MalformedIdError(f"`{what}` is empty: send the id encoded as URL-safe base64")
    if len(encoded) > (MAX_ID_BYTES * 4) // 3 + 4:
        raise MalformedIdError(f"`{what}` is too long: at most {MAX_ID_BYTES} bytes decoded")
    shown = encoded if len(encoded) <= 40 else encoded[:40] + "..."
    if not _BASE64URL.fullmatch(encoded):
        raise MalformedIdError(
            f"`{what}` `{shown}` is not URL-safe base64: use only A-Z, a-z, 0-9, `-` and `_`"
        )
    raw = _b64decode(encoded, what, shown)
    return _checked_text(raw, what)


def _b64decode(encoded: str, what: str, shown: str) -> bytes:
    bare = encoded.rstrip("=")
    padded_wrong = "=" in encoded and len(encoded) % 4 != 0
    if len(bare) % 4 == 1 or padded_wrong:
        raise MalformedIdError(f"`{what}` `{shown}` has a length base64 cannot have: was it cut?")
    try:
        raw = base64.b64decode(bare + "=" * (-len(bare) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedIdError(f"`{what}` `{shown}` is not valid base64") from None
    if encode_id_bytes(raw) != bare:
        raise MalformedIdError(f"`{what}` `{shown}` is not canonical base64: check its last letter")
    return raw


def encode_id_bytes(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _checked_text(raw: bytes, what: str) -> str:
    if not raw:
        raise MalformedIdError(f"`{what}` decodes to nothing: send a non-empty id")
    if len(raw) > MAX_ID_BYTES:
        raise MalformedIdError(f"`{what}` is too long: at most {MAX_ID_BYTES} bytes decoded")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedIdError(f"`{what}` is not UTF-8 once decoded: encode UTF-8 bytes") from None
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise MalformedIdError(f"`{what}` contains control characters once decoded")
    return text


def _checked_name(value: str, what: str) -> str:
    """A plain (not encoded) name from a query, such as the policy group."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise InvalidInputError(f"`{what}` must be 1 to {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidInputError(f"`{what}` contains control characters")
    return value


# --- grants as policies ------------------------------------------------------------


def compile_grants(grants: Iterable[Grant], *, revision: int = 0) -> PolicySet:
    """The enabled grants as a deny-unless-permit `PolicySet` (see the module docstring)."""
    holders: dict[tuple[str, str], dict[Permission, set[str]]] = defaultdict(
        lambda: defaultdict(set)
    )
    for grant in grants:
        if grant.enabled and grant.target_kind in _TARGET_ATTRIBUTES:
            principal = f"{grant.principal_kind}:{grant.principal}"
            holders[(grant.target_kind, grant.target)][Permission(grant.permission)].add(principal)
    policies = tuple(
        _grant_policy(kind, target, holders[(kind, target)]) for kind, target in sorted(holders)
    )
    return PolicySet(
        id=GRANTS_POLICY_SET,
        policies=policies,
        policy_combining="deny-unless-permit",
        revision=revision,
        description="grants on policies and policy groups",
    )


def _grant_policy(kind: str, target: str, levels: Mapping[Permission, set[str]]) -> Policy:
    rules = []
    for action in Permission:
        principals = frozenset().union(
            *(p for level, p in levels.items() if level.includes(action))
        )
        if principals:
            matches = (
                Match("action", "id", frozenset({str(action)})),
                Match("subject", "principals", principals),
            )
            rules.append(Rule(id=str(action), effect=Effect.PERMIT, target=Target(matches)))
    return Policy(
        id=f"grant:{kind}:{target}",
        type="data_access",
        policy_group=GRANTS_POLICY_SET,
        rules=tuple(rules),
        rule_combining="deny-unless-permit",
        target=Target((Match("resource", _TARGET_ATTRIBUTES[kind], frozenset({target})),)),
    )


def policy_resource(record: PolicyRecord) -> dict[str, Any]:
    """The `resource` attributes of a request about a stored policy."""
    return {"policy_id": record.id, "policy_group": record.policy_group, "type": record.type}


# --- the access point --------------------------------------------------------------


class AccessPoint:
    """Serves published policies and answers "may this principal do that" questions.

    Per call it asks the store for its access revision (one cheap query) and decides
    with the grants compiled for that revision. What it learns of a principal
    (enabled, its groups) is kept until that revision moves, which every change to
    principals, memberships and grants does (and no change of policies: a publish does
    not make it compile the grants again). `revision_every` (seconds, default 0: every call)
    lets it ask for the revision at most that often: a change then takes effect at
    most that late.
    """

    def __init__(
        self,
        store: Store,
        *,
        pdp_factory: Callable[[], PolicyDecisionPoint] | None = None,
        clock: Clock = utc_now,
        revision_every: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self._pdp = pdp_factory() if pdp_factory else PolicyDecisionPoint(clock=clock)
        self._revision: int | None = None
        self._revision_every, self._monotonic = revision_every, monotonic
        self._checked_at = -math.inf
        self._subjects: dict[Principal, Mapping[str, Any] | None] = {}
        self._lock = threading.Lock()

    def authorize(self, principal: Principal, action: str, resource: Mapping[str, Any]) -> Response:
        """The PDP's answer for `principal` doing `action` (read|write|admin) on `resource`."""
        pdp = self._decision_point()
        subject = self._subject(principal)
        if subject is None:
            return Response(Decision.DENY, Status("ok", "unknown or disabled principal"))
        request = Request(subject=subject, resource=dict(resource), action={"id": action})
        now = self.clock() if pdp.compiled.uses_time else None
        return pdp.decide(request, now=now)

    def allowed(self, principal: Principal, action: str, resource: Mapping[str, Any]) -> bool:
        return self.authorize(principal, action, resource).decision is Decision.PERMIT

    def fetch_by_policy_id(
        self, encoded_policy_id: str, policy_group: str, principal: Principal
    ) -> ServedPolicy:
        """The published policy with this (base64) id in `policy_group`."""
        policy_id = decode_id(encoded_policy_id, what="policy_id")
        group = _checked_name(policy_group, "policy_group")
        not_found = NotFoundError(f"policy `{policy_id}` not found in policy group `{group}`")
        record = self._published(policy_id)
        if record is None or not self._may_read(principal, record):
            raise not_found
        if record.policy_group != group:
            raise InvalidInputError(
                f"policy `{policy_id}` is not in policy group `{group}`: ask its own group",
                code="id_type_mismatch",
            )
        return ServedPolicy.of(record)

    def fetch_by_asset(
        self, encoded_asset_id: str, policy_type: str, principal: Principal
    ) -> list[ServedPolicy]:
        """The readable published policies of `policy_type` for an asset, by id.

        An asset may have several (in different policy groups); none is
        `NotFoundError`.
        """
        asset_id = decode_id(encoded_asset_id, what="asset_id")
        if policy_type not in POLICY_TYPES:
            known = ", ".join(f"`{t}`" for t in POLICY_TYPES)
            raise InvalidInputError(
                f"unknown policy type `{policy_type}`: use one of {known}",
                code="unknown_policy_type",
            )
        readable = [
            r
            for r in self.store.list_policies(asset_id=asset_id, status=PolicyStatus.PUBLISHED)
            if self._may_read(principal, r)
        ]
        served = [ServedPolicy.of(r) for r in readable if r.type == policy_type]
        if served:
            return served
        if readable:
            types = ", ".join(sorted({f"`{r.type}`" for r in readable}))
            raise InvalidInputError(
                f"asset `{asset_id}` has no policy of type `{policy_type}`, only {types}",
                code="id_type_mismatch",
            )
        raise NotFoundError(f"no policy of type `{policy_type}` found for asset `{asset_id}`")

    def readable_policies(
        self,
        principal: Principal,
        policy_group: str | None = None,
        policy_type: str | None = None,
    ) -> list[ServedPolicy]:
        """Every published policy the principal may read, in id order."""
        records = self.store.list_policies(
            policy_group=policy_group, policy_type=policy_type, status=PolicyStatus.PUBLISHED
        )
        return [ServedPolicy.of(r) for r in records if self._may_read(principal, r)]

    # -- internals ------------------------------------------------------------------

    def _published(self, policy_id: str) -> PolicyRecord | None:
        try:
            record = self.store.get_policy(policy_id)
        except NotFoundError:
            return None
        published = record.status is PolicyStatus.PUBLISHED
        return record if published and record.published_document is not None else None

    def _may_read(self, principal: Principal, record: PolicyRecord) -> bool:
        return self.allowed(principal, "read", policy_resource(record))

    def _subject(self, principal: Principal) -> Mapping[str, Any] | None:
        """The request's subject for `principal`, None when unknown or disabled;
        remembered until the store's revision moves (a new dict per revision, so
        that an answer read before a change never lands among those read after it)."""
        subjects = self._subjects
        if principal in subjects:
            return subjects[principal]
        subject = self._read_subject(principal)
        if len(subjects) >= MAX_REMEMBERED:
            subjects.clear()
        subjects[principal] = subject
        return subject

    def _read_subject(self, principal: Principal) -> Mapping[str, Any] | None:
        if not self._active(principal):
            return None
        groups = tuple(sorted(set(principal.groups) | set(self.store.groups_of(principal.id))))
        principals = (f"{principal.kind}:{principal.id}", *(f"group:{g}" for g in groups))
        subject = {"id": principal.id, "kind": principal.kind, "groups": groups}
        return MappingProxyType({**subject, "principals": principals})

    def _active(self, principal: Principal) -> bool:
        try:
            if principal.kind == "user":
                return self.store.get_user(principal.id).enabled
            if principal.kind == "service":
                return self.store.get_service_account(principal.id).enabled
        except NotFoundError:
            return False
        return False

    def _decision_point(self) -> PolicyDecisionPoint:
        """The PDP over the current grants; recompiled (once) when the revision moved."""
        moment = self._monotonic()
        if self._revision is not None and moment - self._checked_at < self._revision_every:
            return self._pdp
        with self._lock:
            revision = self.store.revisions().access  # grants and principals, not policies
            self._checked_at = moment
            if revision != self._revision:
                self._pdp.load(compile_grants(self.store.list_grants(), revision=revision))
                self._subjects = {}
                self._revision = revision
        return self._pdp
