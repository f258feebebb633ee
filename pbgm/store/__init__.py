"""The Policy Repository (PRP): a `Store` protocol and its implementations."""

from pbgm.store.base import (
    AuditEntry,
    Clock,
    Grant,
    Group,
    PolicyGroup,
    PolicyRecord,
    PolicyVersion,
    ServiceAccount,
    Store,
    User,
    iter_published,
    utc_now,
)

__all__ = [
    "AuditEntry",
    "Clock",
    "Grant",
    "Group",
    "PolicyGroup",
    "PolicyRecord",
    "PolicyVersion",
    "ServiceAccount",
    "Store",
    "User",
    "iter_published",
    "utc_now",
]
