"""pbgm's Alembic environment (run through `pbgm.store.sql.migrate` or `pbgm db upgrade`)."""
