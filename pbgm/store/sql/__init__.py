"""The SQL Policy Repository (SQLite or PostgreSQL): the only SQLAlchemy user in pbgm.

`SqlStore` implements `pbgm.store.base.Store`; `make_engine` builds engines;
`pbgm.store.sql.migrate` upgrades the schema with Alembic.
"""

import sqlalchemy

if not sqlalchemy.__version__.startswith("2."):
    raise ImportError(f"pbgm needs SQLAlchemy 2.x, found {sqlalchemy.__version__}")

from pbgm.store.sql.engine import database_url, make_engine, safe_url
from pbgm.store.sql.store import SqlStore

__all__ = ["SqlStore", "database_url", "make_engine", "safe_url"]
