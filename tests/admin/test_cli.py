"""`pbgm admin create-user`: the first administrator of the GUI, from the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pbgm.access import AccessPoint, Principal
from pbgm.auth import verify_secret
from pbgm.cli import main
from pbgm.store import open_store
from pbgm.testing import sqlite_store


def run(db: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", db, "--actor", "ops", *args], input=stdin)
    return result.exit_code, result.output


def test_create_user_with_admin_from_stdin_makes_a_global_administrator(tmp_path: Path):
    sqlite_store(tmp_path / "pbgm.db")
    db = f"sqlite:///{tmp_path / 'pbgm.db'}"
    code, out = run(db, "admin", "create-user", "anna", "--admin", "--password-stdin",
                    stdin="a long enough password\n")  # fmt: skip
    assert code == 0 and "added `anna`, a global administrator" in out
    store = open_store(db)
    user = store.get_user("anna")
    assert verify_secret("a long enough password", user.password_hash or "")
    assert "a long enough password" not in (user.password_hash or "")
    access = AccessPoint(store)
    assert access.allowed(Principal("anna"), "admin", {"policy_group": "*"})
    assert store.list_audit(limit=1)[0].actor == "ops"


def test_the_password_is_prompted_twice_and_must_match(tmp_path: Path):
    sqlite_store(tmp_path / "pbgm.db")
    db = f"sqlite:///{tmp_path / 'pbgm.db'}"
    code, out = run(db, "admin", "create-user", "ben", stdin="first password 1\nsecond password\n"
                    "first password 1\nfirst password 1\n")  # fmt: skip
    assert code == 0 and "error" in out.lower()  # click asked again after the mismatch
    assert verify_secret("first password 1", open_store(db).get_user("ben").password_hash or "")
    assert not AccessPoint(open_store(db)).allowed(Principal("ben"), "read", {"policy_group": "*"})


def test_a_short_password_or_an_existing_user_is_refused_and_nothing_changes(tmp_path: Path):
    sqlite_store(tmp_path / "pbgm.db")
    db = f"sqlite:///{tmp_path / 'pbgm.db'}"
    code, out = run(db, "admin", "create-user", "cem", "--password-stdin", stdin="short\n")
    assert code == 3 and "at least 12 characters" in out
    assert (
        run(db, "admin", "create-user", "cem", "--password-stdin", stdin="long password 12\n")[0]
        == 0
    )
    revision = open_store(db).revision()
    code, out = run(db, "admin", "create-user", "cem", "--admin", "--password-stdin",
                    stdin="other password 12\n")  # fmt: skip
    assert code == 6 and "already exists" in out
    store = open_store(db)
    assert store.revision() == revision and store.list_grants(principal="cem") == []
