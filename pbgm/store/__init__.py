"""The Policy Repository (PRP): a `Store` protocol and its implementations.

`MemoryStore` and `open_store` are imported here; `SqlStore` is loaded on first
use (`from pbgm.store import SqlStore`), so the core never pulls in SQLAlchemy.
"""

from typing import Any

from pbgm.model import Clock, PolicyGroup, utc_now
from pbgm.store.base import (
    AUDIT_LOG,
    DECISION_LOG,
    AuditEntry,
    AuditItem,
    AuditQuery,
    FlexOfferRecord,
    Grant,
    Group,
    PolicyCount,
    PolicyPage,
    PolicyQuery,
    PolicyRecord,
    PolicyVersion,
    ScheduleRecord,
    ServiceAccount,
    Store,
    User,
    is_decision_entry,
    iter_published,
)
from pbgm.store.factory import open_store
from pbgm.store.memory import MemoryStore

__all__ = [
    "AUDIT_LOG",
    "DECISION_LOG",
    "AuditEntry",
    "AuditItem",
    "AuditQuery",
    "Clock",
    "FlexOfferRecord",
    "Grant",
    "Group",
    "MemoryStore",
    "PolicyCount",
    "PolicyGroup",
    "PolicyPage",
    "PolicyQuery",
    "PolicyRecord",
    "PolicyVersion",
    "ScheduleRecord",
    "ServiceAccount",
    "Store",
    "User",
    "is_decision_entry",
    "iter_published",
    "open_store",
    "utc_now",
]


def __getattr__(name: str) -> Any:
    if name == "SqlStore":
        from pbgm.store.sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
