"""What the loader holds per policy, what it hands out, and the check of a new copy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pbgm.errors import InvalidInputError, NotFoundError, PbgmError
from pbgm.loader._cache import GoodCopy, content_matches
from pbgm.loader._client import Fetched, answer_json
from pbgm.loader._config import PolicySpec
from pbgm.policy import format_datetime, freeze, thaw, validate_policy_document

COUNTERS = (
    "fetched",
    "not_modified",
    "changed",
    "rejected",
    "errors",
    "delivered",
    "delivery_errors",
)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy as a service receives it.

    `document` is the published `pbgm/v1` document as plain JSON data, a copy of
    the loader's own (its `content` is what most services read). `source` is
    `server` when the server confirmed this copy on the last attempt, `cache`
    when it is the last good copy kept because the server could not be reached
    or served something unusable; `age_s` is the time since the server last
    confirmed it (`fetched_at`).
    """

    name: str
    document: Mapping[str, Any]
    version: int
    etag: str
    fetched_at: datetime
    source: str
    age_s: float

    @property
    def content(self) -> Mapping[str, Any]:
        content = self.document.get("content")
        return content if isinstance(content, Mapping) else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "document": self.document,
            "version": self.version,
            "etag": self.etag,
            "fetched_at": format_datetime(self.fetched_at),
            "source": self.source,
            "age_s": round(self.age_s, 3),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class PolicyState:
    """How one policy stands.

    `state`: `pending` (never fetched, nothing cached), `fresh` (the server
    confirmed the copy on the last attempt), `unreachable` (the server could not
    be used; the copy held, if any, is served), `rejected` (the server's new
    content failed validation; the previous copy stays in force), `failed` (the
    server answered with an error such as not found; the previous copy stays).
    """

    name: str
    state: str
    source: str | None
    version: int | None
    etag: str | None
    fetched_at: datetime | None
    age_s: float | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_message: str | None
    counters: Mapping[str, int]

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"

    def as_dict(self) -> dict[str, Any]:
        def moment(value: datetime | None) -> str | None:
            return format_datetime(value) if value is not None else None

        return {
            "name": self.name,
            "state": self.state,
            "source": self.source,
            "version": self.version,
            "etag": self.etag,
            "fetched_at": moment(self.fetched_at),
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "last_attempt_at": moment(self.last_attempt_at),
            "last_error": self.last_error,
            "last_error_message": self.last_error_message,
            "counters": dict(self.counters),
        }


@dataclass
class Slot:
    """The loader's mutable record for one configured policy (guarded by its lock)."""

    spec: PolicySpec
    good: GoodCopy | None = None
    state: str = "pending"
    due_at: float = 0.0
    delivered_etag: str | None = None
    rejected_etag: str | None = None
    last_attempt_at: datetime | None = None
    last_error: PbgmError | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def attempted(self, now: datetime) -> None:
        self.last_attempt_at = now

    def not_modified(self, now: datetime) -> None:
        assert self.good is not None
        self.good = self.good.confirmed(now)
        self.state, self.last_error = "fresh", None
        self.count("not_modified")

    def accepted(self, copy: GoodCopy) -> None:
        if self.good is None or self.good.etag != copy.etag:
            self.count("changed")
        self.good = copy
        self.state, self.last_error, self.rejected_etag = "fresh", None, None
        self.count("fetched")

    def rejected(self, error: PbgmError, etag: str | None) -> bool:
        """Record a refused update; True the first time this content is refused."""
        self.state, self.last_error = "rejected", error
        first = etag is None or etag != self.rejected_etag
        if first:
            self.count("rejected")
        self.rejected_etag = etag
        return first

    def failed(self, error: PbgmError, state: str) -> None:
        self.state, self.last_error = state, error
        self.count("errors")

    def named_by(
        self, *, policy_ids: set[str], policy_groups: set[str], asset_ids: set[str]
    ) -> bool:
        """Whether a change notice naming these ids, groups and assets concerns this policy."""
        spec, document = self.spec, self.good.document if self.good is not None else {}
        return bool(
            {spec.policy_id, document.get("id")} & policy_ids
            or {spec.policy_group, document.get("policy_group")} & policy_groups
            or {spec.asset_id, document.get("asset_id")} & asset_ids
        )

    def source(self) -> str | None:
        if self.good is None:
            return None
        return "server" if self.state == "fresh" else "cache"

    def loaded(self, now: datetime) -> LoadedPolicy | None:
        if self.good is None:
            return None
        good = self.good
        age = max(0.0, (now - good.fetched_at).total_seconds())
        source = self.source() or "cache"
        document = thaw(good.document)  # a plain copy each time: the holder may change it
        return LoadedPolicy(
            self.spec.name, document, good.version, good.etag, good.fetched_at, source, age
        )

    def state_at(self, now: datetime) -> PolicyState:
        loaded = self.loaded(now)
        error = self.last_error
        return PolicyState(
            name=self.spec.name,
            state=self.state,
            source=self.source(),
            version=loaded.version if loaded else None,
            etag=loaded.etag if loaded else None,
            fetched_at=loaded.fetched_at if loaded else None,
            age_s=loaded.age_s if loaded else None,
            last_attempt_at=self.last_attempt_at,
            last_error=error.code if error else None,
            last_error_message=error.message if error else None,
            counters=MappingProxyType(dict(self.counters)),
        )


# --- checking a new copy --------------------------------------------------------------


def accept(spec: PolicySpec, fetched: Fetched, now: datetime) -> GoodCopy:
    """The fetched policy as a `GoodCopy`, or the error that makes it unusable.

    It must be exactly one policy (an asset with several of the type needs the
    entry's `policy_group` to pick one), the one asked for, a document that passes
    validation, and the content its ETag names (`pbgm.loader._cache`).
    """
    policies = _policies(spec, answer_json(fetched.body))
    served = _chosen(spec, policies)
    document = served.get("document")
    _check_identity(spec, served, document)
    validate_policy_document(document)
    version = served.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInputError("the served policy has no version", code="bad_answer")
    listing = None if spec.policy_id is not None else [p.get("etag") for p in policies]
    etag = fetched.etag or (served.get("etag") if listing is None else None)
    if not isinstance(etag, str) or not etag:
        raise InvalidInputError("the served policy has no ETag", code="bad_answer")
    if not isinstance(document, Mapping) or not content_matches(document, etag, listing):
        raise InvalidInputError(
            "the served policy is not the content its ETag names", code="bad_answer"
        )
    held = tuple(str(e) for e in listing) if listing is not None else None
    return GoodCopy(freeze(document), version, etag, now, held)


def _policies(spec: PolicySpec, data: Any) -> tuple[Mapping[str, Any], ...]:
    """The served policies: one object by id, `{"policies": [...]}` by asset."""
    if spec.policy_id is not None:
        policies = (data,) if isinstance(data, dict) else None
    else:
        found = data.get("policies") if isinstance(data, dict) else None
        policies = tuple(found) if isinstance(found, list) else None
    if policies is None or not all(isinstance(p, dict) for p in policies):
        raise InvalidInputError("the server's answer is not a policy", code="bad_answer")
    return policies


def _chosen(spec: PolicySpec, policies: tuple[Mapping[str, Any], ...]) -> Mapping[str, Any]:
    found = list(policies)
    if spec.asset_id is not None and spec.policy_group is not None:
        found = [p for p in found if p.get("policy_group") == spec.policy_group]
    if not found:
        raise NotFoundError(f"the server serves no policy for `{spec.name}`")
    if len(found) > 1:
        raise InvalidInputError(
            f"asset `{spec.asset_id}` has {len(found)} `{spec.policy_type}` policies: "
            "name the `policy_group` of the one to use",
            code="ambiguous_policy",
        )
    return found[0]


def _check_identity(spec: PolicySpec, served: Mapping[str, Any], document: Any) -> None:
    if not isinstance(document, Mapping):
        raise InvalidInputError("the served policy has no document", code="bad_answer")
    expected = {k: v for k, v in spec.query.items() if k != "policy_type"}
    if spec.policy_type is not None:
        expected["type"] = spec.policy_type
    if "policy_id" in expected:
        expected["id"] = expected.pop("policy_id")
    for key, value in expected.items():
        if served.get(key) != value or document.get(key) != value:
            raise InvalidInputError(
                f"the server served another policy than `{spec.name}` asked for "
                f"(`{key}` is not `{value}`)",
                code="unexpected_policy",
            )
