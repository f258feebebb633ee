"""What a call addresses: the `resource` of the enforcement hook's request.

For administrative endpoints the resource lists its `targets`, the policies and
policy groups the call reads or changes, each `{"policy_id", "policy_group"}`
as the grants match them: the policy in the path (with its current group), the
group a new or updated document names, the group of every version a lifecycle
call acts on (the version a publish names, the version a retire takes out of
service, the version a rollback restores, every version a history shows), the
target of a grant. Calls on users, groups, service accounts and
the audit log have no target: only a global administrator may make them.

Resolvers never decide anything; a body they cannot read gives no target, and
the handler reports the malformed body to whoever is allowed to send it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request

from pbgm.api._http import json_body, path_id
from pbgm.errors import NotFoundError, PbgmError
from pbgm.store.base import Store

Target = dict[str, str]
Resolver = Callable[[Store], list[Target]]


def resource_of(endpoint: str, store: Store) -> dict[str, Any]:
    """The resource attributes of a call to `endpoint`."""
    resource: dict[str, Any] = {"kind": endpoint.partition(".")[0]}
    for name in ("policy_id", "policy_group", "asset_id", "policy_type"):
        if name in request.args:
            resource[name] = request.args[name]
    resolver = RESOLVERS.get(endpoint)
    if resolver is not None:
        resource["targets"] = tuple(_unique(resolver(store)))
    return resource


def _unique(targets: list[Target]) -> list[Target]:
    seen: list[Target] = []
    for target in targets:
        if target and target not in seen:
            seen.append(target)
    return seen


def _path_policy_id() -> str | None:
    encoded = (request.view_args or {}).get("policy_id")
    return None if encoded is None else path_id(encoded, "policy_id")


def _policy_target(store: Store, policy_id: str) -> Target:
    try:
        return {"policy_id": policy_id, "policy_group": store.get_policy(policy_id).policy_group}
    except NotFoundError:
        return {"policy_id": policy_id}


def _body_field(name: str) -> Any:
    try:
        body = json_body()
    except PbgmError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _document_target() -> list[Target]:
    policy_id, group = _body_field("id"), _body_field("policy_group")
    if isinstance(policy_id, str) and isinstance(group, str):
        return [{"policy_id": policy_id, "policy_group": group}]
    return []


def _existing(store: Store) -> list[Target]:
    policy_id = _path_policy_id()
    return [] if policy_id is None else [_policy_target(store, policy_id)]


def _existing_and_document(store: Store) -> list[Target]:
    found = _existing(store)
    group = _body_field("policy_group")
    if found and isinstance(group, str):
        found.append({"policy_id": found[0]["policy_id"], "policy_group": group})
    return found


def _with_version(store: Store, found: list[Target], version: Any) -> list[Target]:
    """`found` plus the group of `version` of the policy (when there is such a version)."""
    if not found or not isinstance(version, int) or isinstance(version, bool):
        return found
    try:
        old = store.get_policy_version(found[0]["policy_id"], version)
    except PbgmError:
        return found
    group = old.document.get("policy_group")
    if isinstance(group, str):
        found.append({"policy_id": found[0]["policy_id"], "policy_group": group})
    return found


def _rollback(store: Store) -> list[Target]:
    return _with_version(store, _existing(store), _body_field("version"))


def _publish(store: Store) -> list[Target]:
    """The version published: the one named, or the latest (in the current group)."""
    return _with_version(store, _existing(store), _body_field("version"))


def _published_version(store: Store) -> list[Target]:
    """A retire acts on what is published, whatever group that version names."""
    found = _existing(store)
    try:
        record = store.get_policy(found[0]["policy_id"]) if found else None
    except PbgmError:
        return found
    published = record.published_version if record is not None else None
    return _with_version(store, found, published)


def _history(store: Store) -> list[Target]:
    """A history shows every version: each version's group is addressed."""
    found = _existing(store)
    if not found:
        return found
    try:
        versions = store.policy_versions(found[0]["policy_id"])
    except PbgmError:
        return found
    for version in versions:
        group = version.document.get("policy_group")
        if isinstance(group, str):
            found.append({"policy_id": found[0]["policy_id"], "policy_group": group})
    return found


def _create(store: Store) -> list[Target]:
    return _document_target()


def _grant_target(store: Store, kind: Any, target: Any) -> list[Target]:
    if not isinstance(target, str) or not target:
        return []
    if kind == "policy":
        return [_policy_target(store, target)]
    return [{"policy_group": target}]


def _new_grant(store: Store) -> list[Target]:
    return _grant_target(store, _body_field("target_kind"), _body_field("target"))


def _existing_grant(store: Store) -> list[Target]:
    grant_id = (request.view_args or {}).get("grant_id")
    grant = next((g for g in store.list_grants() if g.id == grant_id), None)
    if grant is None:
        return []
    return _grant_target(store, grant.target_kind, grant.target)


RESOLVERS: dict[str, Resolver] = {
    "admin.create_policy": _create,
    "admin.get_policy": _existing,
    "admin.update_policy": _existing_and_document,
    "admin.publish_policy": _publish,
    "admin.retire_policy": _published_version,
    "admin.policy_versions": _history,
    "admin.rollback_policy": _rollback,
    "admin.create_grant": _new_grant,
    "admin.update_grant": _existing_grant,
    "admin.delete_grant": _existing_grant,
}
"""Endpoints whose targets a policy-group administrator may hold; every other
administrative endpoint has no target (global administrators only)."""
