"""`pbgm serve` at scale, real gunicorn processes: a worker with 100,000 published policies
answers its first decision well within gunicorn's worker timeout (the set loads in the
background, lazily); and the decision log loses nothing on SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from pbgm.model import Permission, PolicyGroup
from pbgm.store import Grant
from pbgm.store._feed import decision_text
from pbgm.store.sql import SqlStore
from pbgm.store.sql.tables import PolicyRow, PolicyVersionRow, PublishedRow, RevisionRow
from pbgm.testing import sqlite_store
from tests.api.conftest import seed
from tests.api.test_api_serve import Served

pytestmark = pytest.mark.slow

WORKER_TIMEOUT_S = 30  # gunicorn's default, which `pbgm serve` keeps


def _documents(count: int):
    for k in range(count):
        yield {
            "format": "pbgm/v1",
            "id": f"p{k:06d}",
            "type": "data_access",
            "policy_group": "data-sharing",
            "target": {"resource": {"id": f"r{k}"}},
            "rule_combining": "deny-unless-permit",
            "rules": [
                {
                    "id": "read",
                    "effect": "Permit",
                    "target": {"action": {"id": "read"}},
                    "condition": {
                        "apply": "at-least-one-member-of",
                        "args": [{"attr": "subject.groups"}, [f"g{k % 50}"]],
                    },
                }
            ],
            "content": {"data": {"topics": [f"/d/{k}"]}, "consumers": {"groups": [f"g{k % 50}"]}},
        }


def fill(path: Path, count: int) -> str:
    """A migrated SQLite file with `count` published policies, inserted in bulk (through
    the store's own `decision_text`), plus the API test principals."""
    store = sqlite_store(path)
    for group in ("operational-limits", "voltage-control", "data-sharing", "flexibility"):
        store.put_policy_group(PolicyGroup(group), actor="fill")
    seed(store)
    # a caller decides only against groups it may read (issue 10): svc-voltage reads these
    store.add_grant(
        Grant("service", "svc-voltage", "policy_group", "data-sharing", Permission.READ),
        actor="fill",
    )
    now = datetime.now(UTC)
    policies, versions, published = [], [], []
    for doc in _documents(count):
        text, target, windowed, timed = decision_text(doc)
        policies.append(
            {"id": doc["id"], "type": doc["type"], "policy_group": doc["policy_group"]}
            | {"asset_id": None, "status": "published", "version": 1, "document_format": "pbgm/v1"}
            | {"document": doc, "published_version": 1, "created_at": now, "updated_at": now}
            | {"updated_by": "fill"}
        )
        versions.append(
            {"policy_id": doc["id"], "version": 1, "document": doc, "author": "fill"}
            | {"created_at": now, "reason": "", "action": "create"}
        )
        published.append(
            {"id": doc["id"], "policy_group": "data-sharing", "version": 1, "document": text}
            | {"target": target, "windowed": windowed, "timed": timed}
        )
    with Session(store.engine) as session:
        for table, rows in ((PolicyRow, policies), (PolicyVersionRow, versions)):
            session.execute(insert(table), rows)
        session.execute(insert(PublishedRow), published)
        bump = {"revision": RevisionRow.revision + 1}
        bump["decision_revision"] = RevisionRow.decision_revision + 1
        session.execute(update(RevisionRow).values(**bump))
        session.commit()
    store.close()
    return f"sqlite:///{path}"


def _decision(served: Served, k: int, group: str) -> str:
    request = {
        "subject": {"id": "svc", "groups": [group]},
        "resource": {"id": f"r{k}"},
        "action": {"id": "read"},
    }
    reply = served.as_caller("svc-voltage", "POST", "/api/v1/decisions", request)
    assert reply.status == 200, reply.body
    return str(reply.json["decision"])


def test_a_worker_with_100000_policies_answers_its_first_decision_in_time(
    tmp_path: Path, key_dir: Path
):
    db = fill(tmp_path / "big.db", 100_000)
    served = Served(db, key_dir, "--workers", "1")
    try:
        started = time.monotonic()
        served.wait_ready(timeout=WORKER_TIMEOUT_S)
        assert _decision(served, 99_999, "g49") == "Permit"
        assert time.monotonic() - started < WORKER_TIMEOUT_S
        assert _decision(served, 12_345, "g1") == "Deny"  # its readers are g45
    finally:
        served.stop()


def test_sigterm_loses_no_decision_log_entry(tmp_path: Path, key_dir: Path):
    """Decisions answered while the database stalls for writers are queued; SIGTERM
    arrives with them queued, and the workers write them all before they exit."""
    db = fill(tmp_path / "log.db", 10)
    served = Served(db, key_dir, "--workers", "2")
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None, timeout=30)
    try:
        served.wait_ready()
        served.token("svc-voltage")  # issued (and audited) before the stall
        blocker.execute("BEGIN IMMEDIATE")  # no writer gets through
        answered = [_decision(served, k % 10, "g1") for k in range(300)]
        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the workers are stopping, their entries still queued
        blocker.execute("ROLLBACK")
        assert served.process.wait(timeout=30) == 0
    finally:
        blocker.close()
        served.stop()
    store = SqlStore(db)
    logged = [e for e in store.list_audit(limit=10_000) if e.action == "decision"]
    store.close()
    assert len(answered) == len(logged) == 300
    assert {e.details["decisions"][0]["decision"] for e in logged} <= {"Permit", "Deny"}
