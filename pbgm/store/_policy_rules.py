"""Rules for policies, their versions and policy groups, shared by both stores.

The memory and SQL stores build policy records and history entries with these
functions and run the same checks before a create, an update, a status change or
a rollback, so that the two cannot drift apart on what a version is or when a
change conflicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pbgm.errors import ConflictError, InvalidInputError, NotFoundError
from pbgm.model import COMBINING_ALGORITHMS, PolicyGroup, PolicyStatus
from pbgm.policy import FORMAT
from pbgm.store._common import check_id, check_text, json_copy, to_json
from pbgm.store.base import PolicyRecord, PolicyVersion

VERSION_ACTIONS = ("update", "rollback")
STATUS_ACTIONS = {
    PolicyStatus.DRAFT: "policy.draft",
    PolicyStatus.PUBLISHED: "policy.publish",
    PolicyStatus.RETIRED: "policy.retire",
}


@dataclass(frozen=True, slots=True)
class PolicyKeys:
    """The indexed fields of a policy document."""

    id: str
    type: str
    policy_group: str
    asset_id: str | None
    format: str


def policy_keys(document: Mapping[str, Any]) -> PolicyKeys:
    """Read the indexed fields; the rest of the document is the caller's to validate."""
    if not isinstance(document, Mapping):
        raise InvalidInputError("a policy document must be a JSON object")
    asset_id = document.get("asset_id")
    return PolicyKeys(
        id=check_id(document.get("id"), "policy `id`"),
        type=check_id(document.get("type"), "policy `type`"),
        policy_group=check_id(document.get("policy_group"), "policy `policy_group`"),
        asset_id=None if asset_id is None else check_id(asset_id, "policy `asset_id`"),
        format=check_id(document.get("format", FORMAT), "policy `format`"),
    )


def new_record(keys: PolicyKeys, doc: dict[str, Any], at: datetime, actor: str) -> PolicyRecord:
    """The record of a policy just created: version 1, a draft."""
    return PolicyRecord(
        id=keys.id,
        type=keys.type,
        policy_group=keys.policy_group,
        asset_id=keys.asset_id,
        version=1,
        status=PolicyStatus.DRAFT,
        document=doc,
        published_version=None,
        published_document=None,
        created_at=at,
        updated_at=at,
        updated_by=actor,
    )


def next_record(
    current: PolicyRecord, keys: PolicyKeys, doc: dict[str, Any], at: datetime, actor: str
) -> PolicyRecord:
    """The record after an update: a new latest version; status and what is
    published stay as they were until the next publish."""
    return replace(
        current,
        type=keys.type,
        policy_group=keys.policy_group,
        asset_id=keys.asset_id,
        version=current.version + 1,
        document=doc,
        updated_at=at,
        updated_by=actor,
    )


def check_new_policy(
    document: Mapping[str, Any], actor: str, reason: str
) -> tuple[dict[str, Any], PolicyKeys]:
    """The checks of `create_policy`: the document's private JSON copy and its keys."""
    doc = to_json(document)
    keys = policy_keys(doc)
    check_change(actor, reason)
    return doc, keys


def check_new_policies(
    documents: Sequence[Mapping[str, Any]], actor: str, reason: str
) -> list[tuple[dict[str, Any], str, PolicyKeys]]:
    """The checks of `create_policies`: per document its private JSON copy, that copy as
    JSON text (written as it is) and its keys; the actor and reason checked once."""
    check_change(actor, reason)
    checked = []
    for document in documents:
        doc, text = json_copy(document)
        checked.append((doc, text, policy_keys(doc)))
    return checked


def check_policy_update(
    policy_id: str, document: Mapping[str, Any], actor: str, reason: str, action: str
) -> tuple[dict[str, Any], PolicyKeys]:
    """The checks of `update_policy`: the new document's private JSON copy and its keys."""
    doc = to_json(document)
    keys = policy_keys(doc)
    check_document_id(policy_id, keys)
    check_version_action(action)
    check_change(actor, reason)
    return doc, keys


def check_status_change(status: Any, version: int | None, actor: str, reason: str) -> PolicyStatus:
    """The checks of `set_policy_status`; the status as a `PolicyStatus`."""
    checked = check_status(status)
    check_status_version(checked, version)
    check_change(actor, reason)
    return checked


def version_entry(record: PolicyRecord, reason: str, action: str) -> PolicyVersion:
    """The history entry of the record's latest version, as a create or update leaves it."""
    return PolicyVersion(
        record.id,
        record.version,
        record.document,
        record.updated_by,
        record.updated_at,
        reason,
        action,
    )


def check_version_action(action: str) -> str:
    if action not in VERSION_ACTIONS:
        raise InvalidInputError(f"unknown version action `{action}`; expected update or rollback")
    return action


def check_status(status: Any) -> PolicyStatus:
    try:
        return PolicyStatus(status)
    except ValueError:
        raise InvalidInputError(f"unknown policy status `{status}`") from None


def check_policy_group(group: PolicyGroup) -> PolicyGroup:
    check_id(group.id, "policy group id")
    check_text(group.description, "description")
    if group.policy_combining not in COMBINING_ALGORITHMS:
        raise InvalidInputError(f"unknown combining algorithm `{group.policy_combining}`")
    return group


def with_reason(details: dict[str, Any], reason: str) -> dict[str, Any]:
    """Audit details, with the reason when one was given."""
    if reason:
        details["reason"] = reason
    return details


def check_expected(policy_id: str, current: int, expected: int) -> None:
    """Optimistic concurrency: `expected` must name the latest version."""
    if expected != current:
        raise ConflictError(
            f"policy `{policy_id}` is at version {current}, not {expected}",
            expected_version=expected,
            current_version=current,
        )


def check_document_id(policy_id: str, keys: PolicyKeys) -> None:
    if keys.id != policy_id:
        raise InvalidInputError(f"the document id `{keys.id}` differs from `{policy_id}`")


def check_change(actor: str, reason: str) -> None:
    """Who made a change, and why."""
    check_id(actor, "actor")
    check_text(reason, "reason")


def no_version(policy_id: str, version: object) -> NotFoundError:
    return NotFoundError(f"policy `{policy_id}` has no version `{version}`")


def check_status_version(status: PolicyStatus, version: int | None) -> None:
    if version is not None and status is not PolicyStatus.PUBLISHED:
        raise InvalidInputError("a version can only be named when publishing")
