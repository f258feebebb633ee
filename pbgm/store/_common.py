"""Rules both store implementations share, so that they behave the same.

Input checks live here rather than in each store: the contract suite then only has
to prove that each store calls them, and the memory and SQL stores cannot drift
apart on what they accept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pbgm.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from pbgm.model import COMBINING_ALGORITHMS, Permission, PolicyStatus
from pbgm.secrets import is_secret_hash
from pbgm.store.base import (
    Clock,
    FlexOfferRecord,
    Grant,
    Group,
    PolicyGroup,
    PolicyRecord,
    PolicyVersion,
    ServiceAccount,
    User,
)
from pbgm.syntax import FORMAT, thaw

MAX_ID_LENGTH = 255
MAX_AUDIT_LIMIT = 10_000
PRINCIPAL_KINDS = ("user", "group", "service")
TARGET_KINDS = ("policy", "policy_group")
VERSION_ACTIONS = ("update", "rollback")
STATUS_ACTIONS = {
    PolicyStatus.DRAFT: "policy.draft",
    PolicyStatus.PUBLISHED: "policy.publish",
    PolicyStatus.RETIRED: "policy.retire",
}


def check_id(value: Any, what: str) -> str:
    """An id or name: a non-empty string of at most 255 characters without NUL.

    Anything else is stored verbatim (unicode, quotes, SQL-looking text): the SQL
    store only ever binds ids as parameters.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise InvalidInputError(f"{what} must not contain a NUL character")
    return value


def _reject_nul(value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInputError("a document must not contain a NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item)


def to_json(value: Any) -> Any:
    """A private JSON copy of `value` (mappings become dicts, tuples lists).

    Refuses what one of the databases could not store: NaN or infinity, NUL
    characters, and values JSON cannot represent.
    """
    try:
        text = json.dumps(thaw(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the document is not storable as JSON: {exc}") from None
    copy = json.loads(text)
    _reject_nul(copy)
    return copy


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


MAX_ROW_NUMBER = 2**63 - 1  # the largest integer every database binds


def positive_int(value: Any) -> int | None:
    """`value` as a version number or grant id, or None if it cannot be one."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ROW_NUMBER:
        return value
    return None


def check_version_action(action: str) -> str:
    if action not in VERSION_ACTIONS:
        raise InvalidInputError(f"unknown version action `{action}`; expected update or rollback")
    return action


def check_status(status: Any) -> PolicyStatus:
    try:
        return PolicyStatus(status)
    except ValueError:
        raise InvalidInputError(f"unknown policy status `{status}`") from None


def check_text(value: Any, what: str) -> str:
    """Free text (a reason, a description): any string without NUL."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string")
    if "\x00" in value:
        raise InvalidInputError(f"{what} must not contain a NUL character")
    return value


def check_policy_group(group: PolicyGroup) -> PolicyGroup:
    check_id(group.id, "policy group id")
    check_text(group.description, "description")
    if group.policy_combining not in COMBINING_ALGORITHMS:
        raise InvalidInputError(f"unknown combining algorithm `{group.policy_combining}`")
    return group


def check_password_hash(value: str | None) -> None:
    """Only hashes are stored, never a password or secret handed over by mistake."""
    if value is not None and not is_secret_hash(value):
        raise InvalidInputError("expected a hash made by `hash_secret`, not a plain secret")


def check_user(user: User, at: datetime) -> User:
    check_id(user.name, "user name")
    check_text(user.display_name, "display name")
    check_password_hash(user.password_hash)
    return replace(user, created_at=as_utc(user.created_at, at))


def check_service_account(account: ServiceAccount, at: datetime) -> ServiceAccount:
    check_id(account.client_id, "client id")
    check_text(account.description, "description")
    check_password_hash(account.secret_hash)
    scopes = tuple(check_id(scope, "scope") for scope in account.scopes)
    return replace(account, scopes=scopes, created_at=as_utc(account.created_at, at))


def check_group(group: Group) -> Group:
    check_id(group.name, "group name")
    check_text(group.description, "description")
    return group


def check_audit(
    actor: str, action: str, object_type: str, object_id: str, details: Any
) -> dict[str, Any]:
    """Check an explicit audit entry; returns a JSON copy of its details."""
    check_id(actor, "actor")
    check_id(action, "action")
    check_id(object_type, "object type")
    check_id(object_id, "object id")
    copy = to_json(details or {})
    if not isinstance(copy, dict):
        raise InvalidInputError("audit details must be a JSON object")
    return copy


def check_grant(grant: Grant, actor: str, at: datetime) -> Grant:
    """Kinds and permission checked; `created_by` and `created_at` filled in."""
    if grant.principal_kind not in PRINCIPAL_KINDS:
        raise InvalidInputError(f"unknown principal kind `{grant.principal_kind}`")
    if grant.target_kind not in TARGET_KINDS:
        raise InvalidInputError(f"unknown target kind `{grant.target_kind}`")
    try:
        permission = Permission(grant.permission)
    except ValueError:
        raise InvalidInputError(f"unknown permission `{grant.permission}`") from None
    check_id(grant.principal, "grant principal")
    check_id(grant.target, "grant target")
    return replace(
        grant,
        permission=permission,
        created_by=grant.created_by or actor,
        created_at=as_utc(grant.created_at, at),
    )


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_AUDIT_LIMIT}")
    return limit


def now(clock: Clock) -> datetime:
    """The clock's time in UTC; a naive time is a configuration error."""
    moment = clock()
    if moment.tzinfo is None:
        raise ConfigurationError("the store clock must return timezone-aware times")
    return moment.astimezone(UTC)


def as_utc(moment: datetime | None, default: datetime) -> datetime:
    """A given creation time (kept on import) in UTC, or `default`."""
    if moment is None:
        return default
    if moment.tzinfo is None:
        raise InvalidInputError("times must be timezone-aware")
    return moment.astimezone(UTC)


def with_reason(details: dict[str, Any], reason: str) -> dict[str, Any]:
    """Audit details, with the reason when one was given."""
    if reason:
        details["reason"] = reason
    return details


def enabled_action(kind: str, enabled: bool) -> str:
    return f"{kind}.{'enable' if enabled else 'disable'}"


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


def not_found(what: str, name: object) -> NotFoundError:
    return NotFoundError(f"{what} `{name}` not found")


def already_exists(what: str, name: object) -> AlreadyExistsError:
    return AlreadyExistsError(f"{what} `{name}` already exists")


def grant_details(grant: Grant) -> dict[str, Any]:
    """What the audit log says about a grant."""
    return {
        "principal_kind": grant.principal_kind,
        "principal": grant.principal,
        "target_kind": grant.target_kind,
        "target": grant.target,
        "permission": str(grant.permission),
    }


def check_status_version(status: PolicyStatus, version: int | None) -> None:
    if version is not None and status is not PolicyStatus.PUBLISHED:
        raise InvalidInputError("a version can only be named when publishing")


# -- FlexOffers

FLEXOFFER_STATES = (
    "initial",
    "offered",
    "accepted",
    "rejected",
    "assigned",
    "executed",
    "invalid",
    "canceled",
)
SCHEDULE_STATES = ("accepted", "rejected")


def check_reasons(reasons: Any) -> tuple[dict[str, str], ...]:
    """Reasons of a state: each `{path, code, message}`, all strings."""
    checked = []
    for reason in reasons:
        if not isinstance(reason, Mapping) or set(reason) != {"path", "code", "message"}:
            raise InvalidInputError("a reason has exactly `path`, `code` and `message`")
        checked.append({key: check_text(reason[key], f"reason {key}") for key in reason})
    return tuple(checked)


def check_flexoffer(offer: FlexOfferRecord, actor: str, at: datetime) -> FlexOfferRecord:
    """Ids, state and reasons checked; the document a private JSON copy; times filled in."""
    check_id(actor, "actor")
    check_id(offer.id, "flexoffer id")
    check_id(offer.policy_id, "flexoffer policy id")
    if offer.state not in FLEXOFFER_STATES:
        raise InvalidInputError(f"unknown flexoffer state `{offer.state}`")
    document = to_json(offer.document)
    if not isinstance(document, dict):
        raise InvalidInputError("a flexoffer document must be a JSON object")
    return replace(
        offer,
        document=document,
        reasons=check_reasons(offer.reasons),
        offered_by=offer.offered_by or actor,
        created_at=at,
        updated_at=at,
    )


def check_schedule(
    document: Any, state: str, reasons: Any, actor: str
) -> tuple[dict[str, Any], tuple[dict[str, str], ...]]:
    """The schedule document as a private JSON copy, and its checked reasons."""
    check_id(actor, "actor")
    if state not in SCHEDULE_STATES:
        raise InvalidInputError(f"unknown schedule state `{state}`: accepted or rejected")
    copy = to_json(document)
    if not isinstance(copy, dict):
        raise InvalidInputError("a schedule document must be a JSON object")
    return copy, check_reasons(reasons)


def schedule_details(
    number: int, state: str, reasons: tuple[dict[str, str], ...]
) -> dict[str, Any]:
    """What the audit log says about a recorded schedule."""
    return {"schedule": number, "state": state, "reasons": [reason["code"] for reason in reasons]}


def flexoffer_details(offer: FlexOfferRecord) -> dict[str, Any]:
    """What the audit log says about a recorded FlexOffer."""
    return {
        "policy_id": offer.policy_id,
        "state": offer.state,
        "reasons": [reason["code"] for reason in offer.reasons],
    }
