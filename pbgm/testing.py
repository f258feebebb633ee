"""Helpers for testing code that uses pbgm (in the spirit of `structlog.testing`).

Shipped with the package so that services built on pbgm can write short tests::

    from pbgm.testing import FrozenClock, make_request, memory_store, policy_document

    store = memory_store(policies=[policy_document("p1", rules=[permit("r1")])])
    pdp = decision_point(store)
    assert pdp.decide(make_request(action={"id": "read"})).allowed
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pbgm.bundle import Bundle, import_bundle, read_bundle
from pbgm.messages import request_from_json
from pbgm.model import CATEGORIES, Clock, Request
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import format_datetime
from pbgm.store.base import Store
from pbgm.store.memory import MemoryStore

__all__ = [
    "FrozenClock",
    "decision_point",
    "iso",
    "make_request",
    "memory_store",
    "permit",
    "policy_document",
    "sqlite_store",
]

ACTOR = "pbgm.testing"
DEFAULT_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FrozenClock:
    """A clock that stands still until moved: pass it wherever pbgm takes `clock=`."""

    def __init__(self, moment: datetime = DEFAULT_TIME) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        """Move forward, e.g. `clock.advance(minutes=15)`; returns the new time."""
        self.moment += timedelta(**delta)
        return self.moment


def memory_store(
    bundle: Bundle | str | Path | None = None,
    *,
    policies: Iterable[Mapping[str, Any]] = (),
    publish: bool = True,
    clock: Clock | None = None,
) -> MemoryStore:
    """A `MemoryStore` holding a bundle (object, file or directory) and/or policies."""
    store = MemoryStore(clock=clock) if clock else MemoryStore()
    if bundle is not None:
        loaded = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
        import_bundle(store, loaded, actor=ACTOR, publish=publish)
    pap = PolicyAdministrationPoint(store)
    for document in policies:
        pap.create(document, actor=ACTOR)
        if publish:
            pap.publish(str(document["id"]), actor=ACTOR)
    return store


def sqlite_store(path: str | Path, *, clock: Clock | None = None) -> Store:
    """A store on a fresh SQLite file at `path`, migrated with alembic.

    The schema is migrated once per process into a template file that is then
    copied, so tests can have a new database each without paying for alembic.
    """
    from pbgm.store.factory import open_store

    path = Path(path)
    shutil.copyfile(_migrated_template(), path)
    url = f"sqlite:///{path}"
    return open_store(url, clock=clock) if clock else open_store(url)


_TEMPLATE: list[Path] = []


def _migrated_template() -> Path:
    if not _TEMPLATE:
        from pbgm.store.sql.migrate import upgrade

        directory = Path(tempfile.mkdtemp(prefix="pbgm-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        upgrade(f"sqlite:///{directory / 'template.db'}")
        _TEMPLATE.append(directory / "template.db")
    return _TEMPLATE[0]


def decision_point(store: Store, policy_group: str | None = None) -> PolicyDecisionPoint:
    """A PDP over the published policies of `store`, with group membership from it."""
    pap = PolicyAdministrationPoint(store)
    pip = PolicyInformationPoint([GroupMembershipProvider(store.groups_of)])
    return PolicyDecisionPoint(source=pap.policy_source(policy_group), pip=pip)


def permit(rule_id: str = "permit", **parts: Any) -> dict[str, Any]:
    """A Permit rule document; `parts` adds `target`, `condition`, `obligations`..."""
    return {"id": rule_id, "effect": "Permit", **parts}


def policy_document(
    policy_id: str = "test-policy",
    *,
    policy_type: str = "data_access",
    policy_group: str = "test",
    rules: Iterable[Mapping[str, Any]] = (),
    content: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A minimal valid `pbgm/v1` document (a `data_access` policy by default)."""
    if content is None:
        content = {"data": {"topics": ["test/#"]}, "consumers": {"groups": ["testers"]}}
    return {
        "format": "pbgm/v1",
        "id": policy_id,
        "type": policy_type,
        "policy_group": policy_group,
        "rules": [dict(r) for r in rules],
        "content": dict(content),
        **fields,
    }


def make_request(
    subject: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> Request:
    """A `Request` from plain dicts (frozen, so it is safe to share)."""
    bags = (subject, resource, action, environment)
    return request_from_json({c: bag for c, bag in zip(CATEGORIES, bags, strict=True) if bag})


def iso(moment: datetime) -> str:
    """`2026-01-01T12:00:00Z`: how times are written in pbgm documents."""
    return format_datetime(moment)
