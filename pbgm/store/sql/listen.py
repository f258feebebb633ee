"""Changes of the decision revision announced on PostgreSQL, so that followers need not
wait for their next poll.

Every transaction that moves the decision revision (`SqlBase._decision_changed`, a bulk
import) also runs `pg_notify('pbgm_decisions', <revision>)`, which PostgreSQL delivers
when it commits, to every connection listening, in every process and on every host. A
`DecisionListener` is such a connection of its own (autocommit, outside the engine's
pool): `wait(timeout)` returns as soon as a change was announced. A follower
(`pbgm.pdp.Follower`) wakes on it and syncs at once; it keeps polling as well, so a
lost connection or a missed announcement only delays a change to the next poll.
SQLite has no such thing (`SqlStore.listen_decisions` is None): followers poll.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

DECISIONS_CHANNEL = "pbgm_decisions"
_NOTIFY = text(f"SELECT pg_notify('{DECISIONS_CHANNEL}', CAST(:revision AS text))")


def notify_decisions(session: Session, revision: int) -> None:
    """Announce decision revision `revision` on PostgreSQL (sent when the transaction
    commits, never if it rolls back); nothing on other databases."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"revision": revision})


class DecisionListener:
    """A connection of its own that listens for changes of the decision revision."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        cargs, cparams = dialect.create_connect_args(engine.url)
        self._connection: Any = dialect.loaded_dbapi.connect(*cargs, **cparams)
        try:
            self._connection.autocommit = True
            self._connection.execute(f"LISTEN {DECISIONS_CHANNEL}")
        except Exception:
            self._connection.close()
            raise

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for an announcement; whether one came (those
        already received count, and are all taken). Raises if the connection failed."""
        came = False
        for _ in self._connection.notifies(timeout=timeout, stop_after=1):
            came = True
        if came:  # the others already here, taken without waiting
            for _ in self._connection.notifies(timeout=0):
                pass
        return came

    def close(self) -> None:
        self._connection.close()
