"""Caches of the request hot path: repository reads per revision, verified tokens.

Every protected request starts by taking the store's revisions (`begin_request`: the
repository, decision and access revisions). The Access Point, the token account check
and the decision service read the repository through `RevisionReads`, which answers
`revision()` with the repository revision and memoises the reads they make, each under
the narrowest revision that every change of what it reads moves (a store rule,
`pbgm.store.base`): principals, memberships and grants under the access revision, the
policy groups under the decision revision, policies under the repository revision. A
request that sees the new revision sees the change; entries read after a revision was
seen are at least that recent. A change of a policy therefore leaves the memoised
principals and grants in place: the first decision after it does not read them again.
Writes and every other call go to the store itself.

Where the revisions come from: by default one query per request. In a served worker the
decision points' follower reads them anyway every 50 ms (`pbgm.pdp.Follower`) and hands
them over (`followed`); a request then takes them without a query while they are
younger than `FOLLOWED_FOR_S` (read again by the request itself when older: a stalled
follower never makes requests staler than that). A change made elsewhere (another
worker, another server, the CLI) therefore reaches requests within `FOLLOWED_FOR_S`
(0.2 s; typically the 50 ms of the follower's period); a disabled or renewed service
account's tokens are refused within that bound. A change made through this process
(any non-safe request but a decision, `wrote`) is seen by its very next request: the
followed revisions are set aside until the follower reads them again after the change.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context

from pbgm.auth import Claims, TokenVerifier
from pbgm.errors import AuthenticationError, NotFoundError
from pbgm.model import Clock
from pbgm.store.base import Revisions, Store

MAX_ENTRIES = 10_000
KEYS_TTL_S = 0.5
FOLLOWED_FOR_S = 0.2
"""How old the followed revisions may be and still stand for a request's own read."""

CACHED_READS = frozenset(
    {
        "get_policy",
        "list_policies",
        "get_user",
        "get_service_account",
        "groups_of",
        "list_grants",
        "list_policy_groups",
    }
)


BY_ACCESS = frozenset({"get_user", "get_service_account", "groups_of", "list_grants"})
"""Reads that only a change of principals, memberships or grants alters."""
BY_DECISIONS = frozenset({"list_policy_groups"})
"""Reads that a policy group written alters (it moves the decision revision)."""


def _access(revisions: Revisions) -> int:
    return revisions.access


def _decisions(revisions: Revisions) -> int:
    return revisions.decisions


def _repository(revisions: Revisions) -> int:
    return revisions.repository


class _Failure:
    """A memoised exception (a not-found is an answer too)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class RevisionReads:
    """A read-through view of a `Store`, memoised per revision (see the module docstring).

    Results are shared between requests: callers must not change them.
    """

    def __init__(self, store: Store, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._memos: dict[Callable[[Revisions], int], tuple[int, dict[Any, Any]]] = {}
        self._writes = 0
        self._followed: tuple[float, int, Revisions] | None = None

    @property
    def writes(self) -> int:
        """How many writes this process made (`wrote`): a follower takes it before it
        reads the revisions, and hands both to `followed`."""
        return self._writes

    def followed(self, revisions: Revisions, *, read_at: float, writes: int) -> None:
        """The revisions a follower read at `read_at` (monotonic, taken before the read),
        when this process had made `writes` writes: requests take them instead of a
        query of their own (module docstring). Ignored if a write came in between."""
        with self._lock:
            if writes == self._writes:
                self._followed = (read_at, writes, revisions)

    def wrote(self) -> None:
        """This process changed the repository: the next request reads the revisions
        itself, until a follower has read them after the change."""
        with self._lock:
            self._writes += 1
            self._followed = None

    def begin_request(self) -> int:
        """Take the revisions for this request (the followed ones while fresh, else one
        query) and remember them on `g`."""
        followed = self._followed
        if (
            followed is not None
            and followed[1] == self._writes
            and self._monotonic() - followed[0] < FOLLOWED_FOR_S
        ):
            revisions = followed[2]
        else:
            revisions = self.store.revisions()
        g._get_current_object().pbgm_revisions = revisions
        return revisions.repository

    def revisions(self) -> Revisions:
        if has_request_context():
            taken: Revisions | None = g._get_current_object().get("pbgm_revisions")
            if taken is not None:
                return taken
        return self.store.revisions()

    def revision(self) -> int:
        return self.revisions().repository

    def __getattr__(self, name: str) -> Any:
        """The store's attribute; for a cached read, a memoising wrapper, made once and
        kept on this view (so the next lookup is a plain attribute)."""
        attribute = getattr(self.store, name)
        if name not in CACHED_READS:
            return attribute
        domain = (
            _access if name in BY_ACCESS else _decisions if name in BY_DECISIONS else _repository
        )

        def read(*args: Any, **kwargs: Any) -> Any:
            return self._read(name, attribute, domain, args, kwargs)

        setattr(self, name, read)
        return read

    def access_revision(self) -> int:
        """The revision that principals, memberships and grants move."""
        return self.revisions().access

    def _read(
        self,
        name: str,
        read: Callable[..., Any],
        domain: Callable[[Revisions], int],
        args: Any,
        kwargs: Any,
    ) -> Any:
        key = (name, args, tuple(sorted(kwargs.items())) if kwargs else ())
        memo = self._memo_for(domain, domain(self.revisions()))
        if key not in memo:
            if len(memo) >= MAX_ENTRIES:
                memo.clear()  # a flood of distinct ids must not grow memory without bound
            try:
                memo[key] = read(*args, **kwargs)
            except NotFoundError as error:  # an answer too: remembered, raised again
                memo[key] = _Failure(error)
        found = memo[key]
        if isinstance(found, _Failure):
            raise found.error
        return found

    def _memo_for(self, domain: Callable[[Revisions], int], revision: int) -> dict[Any, Any]:
        with self._lock:
            seen, memo = self._memos.get(domain, (None, {}))
            if revision != seen:
                if seen is not None and revision < seen:
                    return {}  # an older view than the cached one: read afresh, keep nothing
                memo = {}
                self._memos[domain] = (revision, memo)
            return memo


class VerifiedTokens:
    """A `TokenVerifier` that remembers the tokens it verified, until they expire.

    The signature and the claims of a given token cannot change, so a token seen again
    skips the signature check; tokens are remembered by their signature (the part a
    forger cannot choose), with their whole text compared too, at most `MAX_ENTRIES`
    of them, the least recently used forgotten first. What can change is still checked
    on every call: expiry against the clock, that its signing key is still published (a
    key removed from the ring stops its tokens within `KEYS_TTL_S`), and the account
    check (the account may have been disabled or renewed since), whose answer is kept
    only while the access revision (`revision`, the request's) stays the same: every
    change of an account moves it.
    """

    def __init__(
        self, verifier: TokenVerifier, clock: Clock, revision: Callable[[], int] | None = None
    ) -> None:
        self.verifier = verifier
        self.account_check = verifier.account_check
        self._clock = clock
        self._revision = revision
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._kids: tuple[float, frozenset[str]] = (-KEYS_TTL_S, frozenset())

    def _published_kids(self) -> frozenset[str]:
        """The kids of the ring's published keys, read again after `KEYS_TTL_S`."""
        read_at, kids = self._kids
        if time.monotonic() - read_at >= KEYS_TTL_S:
            kids = frozenset(self.verifier.keys())
            self._kids = (time.monotonic(), kids)
        return kids

    def verify(self, token: str) -> Claims:
        if not isinstance(token, str):
            return self.verifier.verify(token)
        signature = token.rpartition(".")[2]
        with self._lock:
            known = self._known.get(signature)
            if known is not None:
                self._known.move_to_end(signature)
        if known is None or known.token != token:
            claims = self.verifier.verify(token)  # account-checked: scopes already cut
            revision = self._revision() if self._revision is not None else None
            with self._lock:
                self._known[signature] = _Known(token, claims, (revision, claims))
                while len(self._known) > MAX_ENTRIES:
                    self._known.popitem(last=False)
            return claims
        claims = known.claims
        if self._clock() >= claims.expires_at + self.verifier.leeway:
            with self._lock:
                self._known.pop(signature, None)
            raise AuthenticationError("the token has expired", code="token_expired")
        if claims.kid not in self._published_kids():
            raise AuthenticationError(
                "the token names an unknown signing key", code="token_unknown_key"
            )
        revision = self._revision() if self._revision is not None else None
        seen, checked = known.account
        if revision is not None and seen == revision:
            return checked
        checked = self.verifier.check_account(claims)
        if revision is not None:
            known.account = (revision, checked)
        return checked


class _Known:
    """A verified token: its text, its claims, and its account-checked claims with the
    repository revision they were checked at (one tuple, replaced whole)."""

    __slots__ = ("account", "claims", "token")

    def __init__(self, token: str, claims: Claims, account: tuple[int | None, Claims]) -> None:
        self.token, self.claims, self.account = token, claims, account
