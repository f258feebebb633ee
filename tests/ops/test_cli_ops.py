"""The command line an operator needs: listings, revoking, schema state, retention,
`--json` after any command, help everywhere, read-only commands that create nothing,
shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pbgm.cli import main
from pbgm.store import Group, User
from pbgm.store.sql.migrate import downgrade
from pbgm.testing import FrozenClock, sqlite_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> str:
    sqlite_store(tmp_path / "pbgm.db").close()
    return f"sqlite:///{tmp_path / 'pbgm.db'}"


@pytest.fixture
def pbgm(db: str):
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, ["--db", db, "--actor", "tester", *args], env=env or {})

    return run


def test_users_groups_and_grants_are_listed_and_revoked(pbgm):
    assert pbgm("user", "add", "bob", "--display-name", "Bob").exit_code == 0
    assert pbgm("group", "add", "crew", "--description", "field crew").exit_code == 0
    assert pbgm("group", "add-member", "crew", "bob").exit_code == 0
    assert pbgm("policy", "import", str(ROOT / "examples" / "policies")).exit_code == 0
    added = pbgm("grant", "add", "bob", "limits-bess-01", "read", "--json")
    grant_id = json.loads(added.output)["grant_id"]
    assert pbgm("grant", "crew", "operational-limits", "write", "--principal-kind", "group",
                "--target-kind", "policy_group").exit_code == 0  # fmt: skip
    users = json.loads(pbgm("user", "list", "--json").output)
    assert {"name": "bob", "display_name": "Bob", "enabled": True, "groups": "crew"} in users
    groups = json.loads(pbgm("group", "list", "--json").output)
    assert {"name": "crew", "description": "field crew", "members": ["bob"]} in groups
    listed = json.loads(pbgm("grant", "list", "--principal", "bob", "--json").output)
    assert [(g["id"], g["target"], g["permission"]) for g in listed] == [
        (grant_id, "limits-bess-01", "read")
    ]
    assert "limits-bess-01" in pbgm("grant", "list").output  # the table
    revoked = pbgm("grant", "revoke", str(grant_id))
    assert revoked.exit_code == 0 and revoked.output.strip() == f"revoked grant {grant_id}"
    assert json.loads(pbgm("grant", "list", "--principal", "bob", "--json").output) == []
    assert pbgm("grant", "revoke", str(grant_id)).exit_code == 5


@pytest.mark.parametrize(
    ("what", "args", "message"),
    [
        ("a policy that does not exist", ["bob", "nothing-such", "read"],
         "policy `nothing-such` not found"),
        ("a user that does not exist",
         ["nobody", "limits-bess-01", "read", "--allow-missing-target"],
         "user `nobody` not found"),
        ("a policy group that does not exist",
         ["bob", "no-group", "read", "--target-kind", "policy_group"],
         "policy group `no-group` not found"),
    ],
)  # fmt: skip
def test_a_grant_on_or_to_nothing_fails_clearly(pbgm, what, args, message):
    assert pbgm("user", "add", "bob").exit_code == 0
    result = pbgm("grant", *args)
    assert result.exit_code == 5, result.output
    assert message in result.output and "Traceback" not in result.output
    assert json.loads(pbgm("grant", "list", "--json").output) == []


def test_db_current_and_history(pbgm, db: str):
    current = pbgm("--json", "db", "current")
    assert current.exit_code == 0
    assert json.loads(current.output)["at_head"] is True
    history = json.loads(pbgm("db", "history", "--json").output)
    assert [r["id"] for r in history][-1] == json.loads(current.output)["head"]
    assert history[0]["down_revision"] is None
    downgrade(db, history[-2]["id"])
    behind = pbgm("db", "current")
    assert behind.exit_code == 9 and "behind: run `pbgm db upgrade`" in behind.output


READ_ONLY = [
    ["policy", "list"],
    ["user", "list"],
    ["grant", "list"],
    ["audit", "list"],
    ["db", "current"],
    ["serve"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_read_only_commands_never_create_a_database_file(tmp_path: Path, args):
    missing = tmp_path / "misspelt.db"
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{missing}", *args], env={})
    assert result.exit_code == 9, result.output
    assert "db upgrade`" in result.output
    assert not missing.exists()


def test_retention_prunes_each_log_by_age_or_by_setting(tmp_path: Path):
    clock = FrozenClock(datetime.now(UTC) - timedelta(days=100))
    store = sqlite_store(tmp_path / "pbgm.db", clock=clock)
    store.add_user(User("old-user"), actor="admin")
    store.record_audit(actor="api", action="decision", object_type="decision", object_id="d1")
    clock.advance(days=60)  # 40 days ago
    store.add_group(Group("newer-group"), actor="admin")
    store.record_audit(actor="api", action="decision", object_type="decision", object_id="d2")
    store.close()
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"

    def run(*args: str, env: dict[str, str] | None = None):
        result = CliRunner().invoke(main, ["--db", url, "--json", *args], env=env or {})
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert run("decisions", "prune")["removed"] == 1  # the default: 90 days
    assert run("decisions", "prune", env={"PBGM_DECISION_RETENTION_DAYS": "0"})["removed"] == 0
    assert run("decisions", "prune", "--older-than", "30d")["removed"] == 1
    assert run("audit", "prune", "--older-than", "2w")["removed"] == 2  # user, group
    actions = [row["action"] for row in run("audit", "list")]
    assert actions == ["audit.prune", "audit.prune", "audit.prune"]  # retention 0: no prune
    bad = CliRunner().invoke(main, ["--db", url, "audit", "prune", "--older-than", "soon"])
    assert bad.exit_code == 2 and "is not an age" in bad.output


def _leaves(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield (*path, name), command
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(_leaves(main))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_has_help(path, command):
    assert (command.help or "").strip(), f"`pbgm {' '.join(path)}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"`pbgm {' '.join(path)} {param.opts[0]}`"
    if not isinstance(command, click.Group):
        assert any("--json" in p.opts for p in command.params), "no --json after the command"


def test_json_after_the_command_is_the_global_json(pbgm):
    assert pbgm("user", "add", "bob").exit_code == 0
    before, after = pbgm("--json", "user", "list"), pbgm("user", "list", "--json")
    assert before.output == after.output and json.loads(after.output)[0]["name"] == "bob"
    error = pbgm("policy", "show", "nothing", "--json")
    assert json.loads(error.output)["error"]["code"] == "not_found"


def test_the_former_keys_option_still_works(tmp_path: Path):
    result = CliRunner().invoke(main, ["keys", "generate", "--dir", str(tmp_path / "k")], env={})
    assert result.exit_code == 0 and (tmp_path / "k" / "keys.json").exists()
    assert "deprecated" in result.output.lower()
    listed = CliRunner().invoke(main, ["keys", "list", "--keys-dir", str(tmp_path / "k"), "--json"])
    assert len(json.loads(listed.output)) == 1


def test_log_levels_are_taken_in_any_case():
    for args in (["loader", "run"], ["events", "run"], ["serve"]):
        command = main
        for name in args:
            command = command.commands[name]  # type: ignore[attr-defined]
        level = next(p for p in command.params if p.name == "log_level")
        assert level.type.case_sensitive is False  # type: ignore[attr-defined]


def test_shell_completion_as_documented():
    pbgm = [sys.executable, "-c", "from pbgm.cli import main; main(prog_name='pbgm')"]
    script = subprocess.run(
        pbgm, env={**os.environ, "_PBGM_COMPLETE": "bash_source"}, capture_output=True, text=True
    )
    assert "_pbgm_completion" in script.stdout
    words = subprocess.run(
        pbgm,
        env={**os.environ, "_PBGM_COMPLETE": "bash_complete", "COMP_WORDS": "pbgm gra",
             "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert "plain,grant" in words.stdout.split()
