"""The Policy Administration Point: author, validate, version, publish, retire.

Every write goes through `validate_policy_document` first, so the repository only
ever holds documents the PDP can compile; a document that fails validation leaves
the store untouched. The PAP is also the `source` a `PolicyDecisionPoint`
refreshes from: `load_policy_set()` builds a `PolicySet` of the *published*
policies, stamped with the store revision it was read at.

A published policy decides for its policy group, so what is published always
belongs to the group the repository files the policy under: `publish` refuses a
version of another group (roll back to it instead: the new version moves the
policy), an update or a rollback that leaves the old version published refuses
to move a published policy to another group (retire it first), and
`load_policy_set(group)` skips a published document that names another group,
should older data hold one. `version_in_other_group` and
`published_in_other_group` are the problem codes.

Documents are stored as given (after validation), as plain JSON data: YAML
timestamps become ISO 8601 strings, read-only mappings become dicts. Exports and
diffs use `canonical_json`, so key order in the stored document never matters.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pbgm.errors import NotFoundError, Problem, ValidationError
from pbgm.model import Clock, Policy, PolicyGroup, PolicySet, PolicyStatus, utc_now
from pbgm.policy import (
    canonical_json,
    format_datetime,
    load_document,
    parse_policy,
    validate_policy_document,
)
from pbgm.store.base import PolicyRecord, Store, iter_published

Document = Mapping[str, Any] | str | bytes

ALL_POLICIES = "all-policies"
"""Id of the policy set `load_policy_set()` builds when no policy group is named."""


_SCALARS = frozenset((str, int, float, bool, type(None)))


def plain_json(value: Any) -> Any:
    """JSON-ready copy of a document: dicts, lists, ISO strings for date-times."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:  # the common case, without the ABC checks below
        return {k if type(k) is str else str(k): plain_json(v) for k, v in value.items()}
    if kind is list:
        return [plain_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def checked_document(doc: Document, *, source: str = "<input>") -> tuple[dict[str, Any], Policy]:
    """Read (if text) and validate a policy document; the plain document and its `Policy`."""
    data = load_document(doc, source=source) if isinstance(doc, str | bytes) else doc
    plain = plain_json(data)
    return plain, validate_policy_document(plain)


class PolicyAdministrationPoint:
    """Authoring operations on a `Store`, each validated and audited (by the store).

    Timestamps come from the store's own clock; `clock` is kept for callers that
    need the PAP's notion of now (it is not used by the operations themselves).
    """

    def __init__(self, store: Store, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock

    # -- authoring -------------------------------------------------------------

    def validate(self, doc: Document) -> Policy:
        """The parsed policy, or `ValidationError` listing every problem."""
        return checked_document(doc)[1]

    def create(self, doc: Document, *, actor: str, reason: str = "") -> PolicyRecord:
        """Store a new policy as version 1 (a draft until published)."""
        plain, _ = checked_document(doc)
        return self.store.create_policy(plain, actor=actor, reason=reason)

    def update(
        self,
        policy_id: str,
        doc: Document,
        *,
        expected_version: int,
        actor: str,
        reason: str = "",
    ) -> PolicyRecord:
        """A new version; `ConflictError` when `expected_version` is not the latest."""
        plain, policy = checked_document(doc)
        _require_same_id(policy_id, policy.id)
        _refuse_moving_published(self.store.get_policy(policy_id), policy.policy_group)
        return self.store.update_policy(
            policy_id, plain, expected_version=expected_version, actor=actor, reason=reason
        )

    def publish(
        self, policy_id: str, *, actor: str, version: int | None = None, reason: str = ""
    ) -> PolicyRecord:
        """Make `version` (default: the latest) the one services receive and the PDP uses."""
        if version is not None:
            current = self.store.get_policy(policy_id)
            group = self.store.get_policy_version(policy_id, version).document.get("policy_group")
            if group != current.policy_group:
                message = (
                    f"version {version} of `{policy_id}` belongs to policy group `{group}`, "
                    f"not `{current.policy_group}`: roll back to it instead"
                )
                raise ValidationError([Problem("$.version", "version_in_other_group", message)])
        return self.store.set_policy_status(
            policy_id, PolicyStatus.PUBLISHED, actor=actor, reason=reason, version=version
        )

    def retire(self, policy_id: str, *, actor: str, reason: str = "") -> PolicyRecord:
        """Stop serving and evaluating a policy; its history stays readable."""
        return self.store.set_policy_status(
            policy_id, PolicyStatus.RETIRED, actor=actor, reason=reason
        )

    def rollback(
        self,
        policy_id: str,
        to_version: int,
        *,
        actor: str,
        reason: str = "",
        publish: bool | None = None,
    ) -> PolicyRecord:
        """A new version equal to `to_version`; history is kept, nothing is rewritten.

        The old document is validated again (the rules may have tightened since).
        `publish=None` keeps the lifecycle: a published policy gets the new version
        published, a draft or retired one stays as it was.
        """
        with self.store.atomic() as view:
            current = view.get_policy(policy_id)
            old = view.get_policy_version(policy_id, to_version)
            plain, policy = checked_document(old.document)
            republish = publish or (publish is None and current.status is PolicyStatus.PUBLISHED)
            if not republish:
                _refuse_moving_published(current, policy.policy_group)
            record = view.update_policy(
                policy_id,
                plain,
                expected_version=current.version,
                actor=actor,
                reason=reason or f"rollback to version {to_version}",
                action="rollback",
            )
            if republish:
                record = view.set_policy_status(
                    policy_id, PolicyStatus.PUBLISHED, actor=actor, reason=reason
                )
        return record

    # -- reading -----------------------------------------------------------------

    def diff(self, policy_id: str, v1: int, v2: int) -> str:
        """Unified diff of the canonical JSON of two versions ("" when equal)."""
        old = self.store.get_policy_version(policy_id, v1)
        new = self.store.get_policy_version(policy_id, v2)
        lines = difflib.unified_diff(
            canonical_json(old.document).splitlines(keepends=True),
            canonical_json(new.document).splitlines(keepends=True),
            fromfile=f"{policy_id}@{v1}",
            tofile=f"{policy_id}@{v2}",
        )
        return "".join(lines)

    def load_policy_set(self, policy_group: str | None = None) -> PolicySet:
        """The published policies (of one group, or all) as a `PolicySet`.

        The revision is read *before* the policies, so a change made meanwhile
        shows up as a newer revision and the next `refresh()` picks it up.
        Without a group, every published policy is combined with deny-overrides.
        Policies come in id order: a repository group has no other order, so under
        first-applicable the policy ids decide which policy is first.
        """
        revision = self.store.revision()
        group = self._policy_group(policy_group)
        policies = tuple(
            parse_policy(r.published_document or r.document, version=r.published_version or 0)
            for r in iter_published(self.store, policy_group=policy_group)
            if policy_group is None or _published_group(r) == policy_group
        )
        return PolicySet(
            id=group.id,
            policies=policies,
            policy_combining=group.policy_combining,
            revision=revision,
            description=group.description,
        )

    def policy_source(self, policy_group: str | None = None) -> Callable[[], PolicySet]:
        """A zero-argument `source` for `PolicyDecisionPoint(source=...)`."""
        return lambda: self.load_policy_set(policy_group)

    def _policy_group(self, policy_group: str | None) -> PolicyGroup:
        if policy_group is None:
            return PolicyGroup(ALL_POLICIES, description="every published policy")
        try:
            return self.store.get_policy_group(policy_group)
        except NotFoundError:
            return PolicyGroup(policy_group)


def _published_group(record: PolicyRecord) -> Any:
    return (record.published_document or record.document).get("policy_group")


def _refuse_moving_published(current: PolicyRecord, group: str) -> None:
    """A published policy stays in its group until it is retired (module docstring)."""
    if current.status is PolicyStatus.PUBLISHED and group != current.policy_group:
        message = (
            f"`{current.id}` is published in policy group `{current.policy_group}`: "
            f"retire it before moving it to `{group}`"
        )
        raise ValidationError([Problem("$.policy_group", "published_in_other_group", message)])


def _require_same_id(policy_id: str, document_id: str) -> None:
    if policy_id != document_id:
        raise ValidationError(
            [
                Problem(
                    "$.id",
                    "id_mismatch",
                    f"the document has id `{document_id}` but updates policy `{policy_id}`",
                )
            ]
        )
