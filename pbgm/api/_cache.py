"""Caches of the request hot path: repository reads per revision, verified tokens.

Every protected request starts by reading the store's revisions once
(`begin_request`, one query: the repository, decision and access revisions). The
Access Point, the token account check and the decision service read the repository
through `RevisionReads`, which answers `revision()` with that number and memoises the
reads they make (principals, memberships, grants, policies) under it. Every change to
what they read bumps the revision (a store rule), so the next request of any worker or
server sees the change; entries read after a revision was seen are at least that
recent. Writes and every other call go to the store itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context

from pbgm.auth import Claims, TokenVerifier
from pbgm.errors import AuthenticationError, NotFoundError
from pbgm.model import Clock
from pbgm.store.base import Revisions, Store

MAX_ENTRIES = 10_000
KEYS_TTL_S = 0.5

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


class _Failure:
    """A memoised exception (a not-found is an answer too)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class RevisionReads:
    """A read-through view of a `Store`, memoised per revision (see the module docstring).

    Results are shared between requests: callers must not change them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._memo: dict[Any, Any] = {}

    def begin_request(self) -> int:
        """Read the revisions for this request (one query) and remember them on `g`."""
        revisions = self.store.revisions()
        g.pbgm_revisions = revisions
        return revisions.repository

    def revisions(self) -> Revisions:
        if has_request_context() and "pbgm_revisions" in g:
            return g.pbgm_revisions  # type: ignore[no-any-return]
        return self.store.revisions()

    def revision(self) -> int:
        return self.revisions().repository

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name not in CACHED_READS:
            return attribute
        return lambda *args, **kwargs: self._read(name, attribute, args, kwargs)

    def _read(self, name: str, read: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        revision = self.revision()
        key = (name, args, tuple(sorted(kwargs.items())))
        memo = self._memo_for(revision)
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

    def _memo_for(self, revision: int) -> dict[Any, Any]:
        with self._lock:
            if revision != self._revision:
                if self._revision is not None and revision < self._revision:
                    return {}  # an older view than the cached one: read afresh, keep nothing
                self._revision, self._memo = revision, {}
            return self._memo


class VerifiedTokens:
    """A `TokenVerifier` that remembers the tokens it verified, until they expire.

    The signature and the claims of a given token string cannot change, so a token
    seen again skips the signature check. What can change is still checked on
    every call: expiry against the clock, that its signing key is still
    published (a key removed from the ring stops its tokens within a second), and the
    account check (the account may have been disabled since). The published
    keys are read at most every `KEYS_TTL_S` seconds for this.
    """

    def __init__(self, verifier: TokenVerifier, clock: Clock) -> None:
        self.verifier = verifier
        self.account_check = verifier.account_check
        self._clock = clock
        self._lock = threading.Lock()
        self._claims: dict[str, Claims] = {}
        self._kids: tuple[float, frozenset[str]] = (-KEYS_TTL_S, frozenset())

    def _published_kids(self) -> frozenset[str]:
        """The kids of the ring's published keys, read again after `KEYS_TTL_S`."""
        read_at, kids = self._kids
        if time.monotonic() - read_at >= KEYS_TTL_S:
            kids = frozenset(self.verifier.keys())
            self._kids = (time.monotonic(), kids)
        return kids

    def verify(self, token: str) -> Claims:
        claims = self._claims.get(token) if isinstance(token, str) else None
        if claims is None:
            claims = self.verifier.verify(token)  # account-checked: scopes already cut
            with self._lock:
                if len(self._claims) >= MAX_ENTRIES:
                    self._claims.clear()
                self._claims[token] = claims
            return claims
        if self._clock() >= claims.expires_at + self.verifier.leeway:
            self._claims.pop(token, None)
            raise AuthenticationError("the token has expired", code="token_expired")
        if claims.kid not in self._published_kids():
            raise AuthenticationError(
                "the token names an unknown signing key", code="token_unknown_key"
            )
        return self.verifier.check_account(claims)
