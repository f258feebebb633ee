"""The fixtures of the API's serve tests, shared: a signing key, a seeded SQLite file."""

from tests.api.conftest import key_dir, keys, sqlite_db

__all__ = ["key_dir", "keys", "sqlite_db"]
