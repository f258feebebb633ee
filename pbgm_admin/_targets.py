"""What a GUI request addresses: the `targets` of the enforcement hook's resource.

Each target is `{"policy_id", "policy_group"}` (or one of the two), matched by the
grants as the Access Point matches them: the policy in the path with its
current group, the policy group in the path, the group a saved document names,
the group of the version a rollback restores, the policy group a decision is
tried against, the template of a FlexOffer check. Resolvers never decide; what
they cannot read gives no target, and an endpoint that needs a permission on its
targets is then denied to everyone but a global administrator.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request

from pbgm.access import decode_id
from pbgm.errors import PbgmError
from pbgm.store.base import Store

Target = dict[str, str]
Resolver = Callable[[Store], list[Target]]


def targets_of(endpoint: str, store: Store) -> tuple[Target, ...]:
    resolver = RESOLVERS.get(endpoint)
    found = resolver(store) if resolver is not None else []
    unique: list[Target] = []
    for target in found:
        if target and target not in unique:
            unique.append(target)
    return tuple(unique)


def _field(name: str) -> str | None:
    value = request.form.get(name) if request.method == "POST" else request.args.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def policy_target(store: Store, policy_id: str) -> Target:
    try:
        return {"policy_id": policy_id, "policy_group": store.get_policy(policy_id).policy_group}
    except PbgmError:
        return {"policy_id": policy_id}


def path_policy_id() -> str | None:
    encoded = (request.view_args or {}).get("policy_id")
    if not isinstance(encoded, str):
        return None
    try:
        return decode_id(encoded)
    except PbgmError:
        return None


def _group_in_path(store: Store) -> list[Target]:
    group = (request.view_args or {}).get("policy_group")
    return [{"policy_group": group}] if isinstance(group, str) and group else []


def _existing(store: Store) -> list[Target]:
    policy_id = path_policy_id()
    return [] if policy_id is None else [policy_target(store, policy_id)]


def _saved(store: Store) -> list[Target]:
    """The policy being saved (as it is) and the group the new document names."""
    found = _existing(store)
    policy_id = path_policy_id() or _field("id")
    group = _field("policy_group")
    if group is not None:
        found.append({"policy_group": group, **({"policy_id": policy_id} if policy_id else {})})
    return found


def _rollback(store: Store) -> list[Target]:
    found = _existing(store)
    version = _field("version")
    if not found or version is None or not version.isdigit():
        return found
    try:
        old = store.get_policy_version(found[0]["policy_id"], int(version))
    except PbgmError:
        return found
    group = old.document.get("policy_group")
    if isinstance(group, str):
        found.append({"policy_id": found[0]["policy_id"], "policy_group": group})
    return found


def _tried(store: Store) -> list[Target]:
    group = _field("policy_group")
    found = [] if group is None else [{"policy_group": group}]
    draft = _field("draft_policy_id")
    if draft is not None:
        found.append(policy_target(store, draft))
    return found


def _offer_template(store: Store) -> list[Target]:
    policy_id = _field("policy_id")
    return [] if policy_id is None else [policy_target(store, policy_id)]


RESOLVERS: dict[str, Resolver] = {
    "gui.policy": _existing,
    "gui.policy_group": _group_in_path,
    "gui.history": _existing,
    "gui.diff": _existing,
    "gui.edit_policy": _existing,
    "gui.save_policy": _saved,
    "gui.create_policy": _saved,
    "gui.publish": _existing,
    "gui.retire": _existing,
    "gui.rollback": _rollback,
    "gui.run_try_it": _tried,
    "gui.validate_offer": _offer_template,
}
