"""The `pbgm` command line, through CliRunner and as the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pbgm.bundle import Bundle, import_bundle
from pbgm.cli import DECISION_STATUS, exit_status, main
from pbgm.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MalformedIdError,
    NotFoundError,
    PbgmError,
    StoreUnavailableError,
    ValidationError,
)
from pbgm.model import Decision, PolicyGroup
from pbgm.policy.validate import problems_of
from pbgm.testing import permit, policy_document, sqlite_store
from tests.conformance import DEFAULT_NOW, load_cases, summarize

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REQUESTS = EXAMPLES / "requests"
NOW = "2026-03-02T08:00:00Z"


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite file; its URL."""
    sqlite_store(tmp_path / "pbgm.db").close()
    return f"sqlite:///{tmp_path / 'pbgm.db'}"


@pytest.fixture
def pbgm(db):
    """Run `pbgm --db <db> --actor tester ARGS...` in-process; the click Result."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--db", db, "--actor", "tester", *map(str, args)])

    return run


@pytest.fixture
def imported(pbgm):
    result = pbgm("policy", "import", EXAMPLES / "policies")
    assert result.exit_code == 0, result.output
    return pbgm


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def one_policy_bundle(path: Path, **fields) -> Path:
    policy = policy_document("p1", policy_group="grid", rules=[permit("r1")], **fields)
    return write(path, {"format": "pbgm/bundle/v1", "policies": [policy]})


# --- import, list, export ------------------------------------------------------------------


def test_a_dry_run_shows_the_plan_and_changes_nothing(pbgm):
    result = pbgm("policy", "import", EXAMPLES / "policies", "--dry-run")
    assert result.exit_code == 0
    assert result.output.startswith("dry run, nothing changed:")
    assert "create    policy       limits-bess-01" in result.output
    assert pbgm("policy", "list").output.strip() == "(none)"


def test_import_then_list_and_a_second_import_is_unchanged(imported):
    rows = json.loads(imported("--json", "policy", "list", "--group", "operational-limits").output)
    assert [(r["id"], r["status"]) for r in rows] == [
        ("limits-bess-01", "published"),
        ("limits-pv-inv-01", "published"),
    ]
    again = json.loads(imported("--json", "policy", "import", EXAMPLES / "policies").output)
    assert set(again["counts"]) == {"unchanged"}


def test_two_exports_are_identical(imported, tmp_path):
    for name in ("one", "two"):
        assert imported("policy", "export", tmp_path / name).exit_code == 0
    one, two = (_files(tmp_path / name) for name in ("one", "two"))
    assert one == two
    assert Path("policies/limits-bess-01.json") in one


def test_a_large_import_shows_progress_on_stderr(pbgm, tmp_path):
    policies = [policy_document(f"p{i:03}", policy_group="grid") for i in range(60)]
    bundle = write(tmp_path / "big.json", {"format": "pbgm/bundle/v1", "policies": policies})
    result = pbgm("policy", "import", bundle)
    assert result.exit_code == 0
    assert "importing: validating" in result.stderr and "importing: writing" in result.stderr
    assert result.stdout.splitlines()[-1].strip() == "60 create"
    assert result.stdout.splitlines()[-2].strip().startswith("60 in ")  # time and rate
    quiet = pbgm("policy", "import", bundle, "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[-1].strip() == "60 unchanged"


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_no_publish_imports_drafts(pbgm, tmp_path):
    bundle = one_policy_bundle(tmp_path / "b.json")
    assert pbgm("policy", "import", bundle, "--no-publish").exit_code == 0
    assert "draft" in pbgm("policy", "list", "--status", "draft").output


# --- versions ----------------------------------------------------------------------------------


def test_history_diff_rollback_show_publish_retire(pbgm, tmp_path):
    pbgm("policy", "import", one_policy_bundle(tmp_path / "v1.json"))
    pbgm("policy", "import", one_policy_bundle(tmp_path / "v2.json", description="v2"))
    history = json.loads(pbgm("--json", "policy", "history", "p1").output)
    assert [(h["version"], h["author"]) for h in history] == [(1, "tester"), (2, "tester")]
    diff = pbgm("policy", "diff", "p1", "1", "2").output
    assert '+  "description": "v2",' in diff.splitlines()
    result = pbgm("policy", "rollback", "p1", "1", "--reason", "v2 was wrong")
    assert result.output.strip() == "rolled back `p1`: version 3, published"
    assert "description" not in json.loads(pbgm("policy", "show", "p1").output)
    assert json.loads(pbgm("policy", "show", "p1", "--version", "2").output)["description"] == "v2"
    assert "retired" in pbgm("policy", "retire", "p1").output
    assert "version 3, published" in pbgm("policy", "publish", "p1").output


def test_validate_lists_every_problem_of_every_file(pbgm, tmp_path):
    good = write(tmp_path / "good.json", policy_document("ok"))
    bad = policy_document("bad", policy_type="weather")
    bad["rules"] = [{"id": "r1", "effect": "Maybe"}]
    bad_file = write(tmp_path / "bad.json", bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": ')
    assert pbgm("policy", "validate", good).exit_code == 0
    result = pbgm("policy", "validate", good, bad_file, broken)
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: validation_failed: ")
    assert any(line.startswith(f"  {bad_file}:$.type: unknown_policy_type: ") for line in lines)
    assert any(line.startswith(f"  {bad_file}:$.rules[0].effect: ") for line in lines)
    assert any(line.startswith(f"  {broken}: malformed_document: ") for line in lines)
    assert "Traceback" not in result.output


def test_validate_checks_a_bundle_directory(pbgm):
    assert pbgm("policy", "validate", EXAMPLES / "policies").exit_code == 0


# --- principals and grants ----------------------------------------------------------------------


def test_users_groups_members_and_grants(pbgm):
    assert pbgm("user", "add", "op-carl", "--display-name", "Carl").exit_code == 0
    assert pbgm("group", "add", "field-crew").exit_code == 0
    assert pbgm("group", "add-member", "field-crew", "op-carl").exit_code == 0
    result = pbgm("grant", "field-crew", "p-any", "write", "--principal-kind", "group")
    assert result.exit_code == 5 and "policy `p-any` not found" in result.output
    result = pbgm(
        "grant",
        "field-crew",
        "p-any",
        "write",
        "--principal-kind",
        "group",
        "--allow-missing-target",
    )
    assert (
        result.output.strip() == "granted write on policy `p-any` to group `field-crew` (grant 1)"
    )
    result = pbgm("grant", "op-carl", "no-such-group", "read", "--target-kind", "policy_group")
    assert result.exit_code == 5
    assert pbgm("grant", "op-carl", "p-any", "owner").exit_code == 2


# --- decisions and FlexOffers ---------------------------------------------------------------------

DECISIONS = [
    # what is checked, request file, policy group, decision
    ("kibernet may read pmu data", "kibernet-reads-pmu-data.json", "data-sharing", "Permit"),
    ("an unknown service may not", "unknown-service-reads-pmu-data.json", "data-sharing", "Deny"),
    ("kibernet never publishes control", "kibernet-publishes-control.json", "data-sharing", "Deny"),
    (
        "an operator may write limits",
        "operator-writes-bess-limits.json",
        "operational-limits",
        "Permit",
    ),
    (
        "a set-point outside the envelope",
        "dispatch-outside-envelope.json",
        "operational-limits",
        "Deny",
    ),
]


@pytest.mark.parametrize(("what", "request_file", "group", "decision"), DECISIONS)
def test_decide_prints_the_response_and_exits_by_decision(
    imported, what, request_file, group, decision
):
    result = imported("decide", REQUESTS / request_file, "--group", group)
    response = json.loads(result.stdout)
    assert response["decision"] == decision
    assert result.exit_code == DECISION_STATUS[Decision(decision)]


def test_decide_not_applicable_and_indeterminate_have_their_own_exit_codes(imported, tmp_path):
    nothing = write(tmp_path / "r1.json", {"subject": {"id": "op-anna"}, "action": {"id": "x"}})
    assert imported("decide", nothing).exit_code == 11
    missing = write(
        tmp_path / "r2.json",
        {
            "subject": {"id": "svc-voltage-control"},
            "resource": {"asset_id": "bess-01"},
            "action": {"id": "dispatch"},
        },
    )
    result = imported("decide", missing, "--now", NOW)  # all policies, deny-overrides
    assert json.loads(result.stdout)["decision"] == "Indeterminate"
    assert result.exit_code == 12


def test_decide_uses_memberships_from_the_request_file(imported, tmp_path):
    request = {
        "subject": {"id": "op-new"},
        "resource": {"asset_id": "bess-01"},
        "action": {"id": "write"},
        "memberships": {"op-new": ["operators"]},
    }
    assert imported("decide", write(tmp_path / "r.json", request)).exit_code == 0


def test_a_bad_request_document_lists_its_problems(imported, tmp_path):
    bad = write(tmp_path / "r.json", {"subject": [], "now": "yesterday", "colour": "red"})
    result = imported("decide", bad)
    assert result.exit_code == 4
    assert {"$.subject", "$.now", "$.colour"} <= {
        line.split(":")[0].strip() for line in result.stderr.splitlines()[1:]
    }


def test_flexoffer_validate(imported):
    offers = EXAMPLES / "flexoffers"
    ok = imported("flexoffer", "validate", offers / "offer-bess-01-valid.json", "--now", NOW)
    assert ok.exit_code == 0, ok.output
    assert "is valid" in ok.output
    bad = imported(
        "flexoffer",
        "validate",
        offers / "offer-bess-01-invalid.json",
        "--now",
        NOW,
        "--policy",
        "fo-template-bess-01",
    )
    assert bad.exit_code == 4
    assert len(bad.stderr.splitlines()) >= 4
    wrong = imported(
        "flexoffer", "validate", offers / "offer-bess-01-valid.json", "--policy", "limits-bess-01"
    )
    assert (wrong.exit_code, "id_type_mismatch" in wrong.stderr) == (3, True)


def _through_the_repository(case) -> bool:
    """Cases a repository can hold: valid policies, a set without its own target or
    obligations, and policies in id order (a policy group is evaluated in id order)."""
    document = case.policy_document
    policies = document.get("policies", [])
    ids = [p.get("id") for p in policies]
    return (
        set(document) <= {"id", "policy_combining", "policies", "description"}
        and ids == sorted(ids)
        and all(p.get("policy_group") == document["id"] and not problems_of(p) for p in policies)
    )


CORPUS = [case for case in load_cases() if _through_the_repository(case)]


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.name)
def test_the_conformance_corpus_through_pbgm_decide(case, tmp_path):
    store = sqlite_store(tmp_path / "corpus.db")
    document = case.policy_document
    group = PolicyGroup(document["id"], document.get("policy_combining", "deny-overrides"))
    bundle = Bundle(policies=tuple(document["policies"]), policy_groups=(group,))
    import_bundle(store, bundle, actor="corpus")
    store.close()
    request = write(tmp_path / "request.json", case.request_document)
    now = case.request_document.get("now", DEFAULT_NOW)
    args = ["--db", f"sqlite:///{tmp_path / 'corpus.db'}", "decide", str(request)]
    result = CliRunner().invoke(main, [*args, "--group", group.id, "--now", now])
    response = json.loads(result.stdout)
    response["status"] = response["status"]["code"]
    response["errors"] = [
        {key: error[key] for key in ("code", "policy_id", "rule_id")}
        for error in response["errors"]
    ]
    assert summarize(response, case.expected) == case.expected
    assert result.exit_code == DECISION_STATUS[Decision(case.expected["decision"])]


def test_most_of_the_corpus_goes_through_the_repository():
    assert len(CORPUS) >= 0.9 * len(load_cases())


# --- errors: one mapping to exit statuses, no tracebacks ---------------------------------------

EXIT_STATUSES = [
    # what is checked, error, exit status
    ("invalid input", InvalidInputError("x"), 3),
    ("a malformed id is invalid input", MalformedIdError("x"), 3),
    ("validation failed", ValidationError([]), 4),
    ("not found", NotFoundError("x"), 5),
    ("stale version", ConflictError("x"), 6),
    ("duplicate", AlreadyExistsError("x"), 6),
    ("store unavailable", StoreUnavailableError("x"), 7),
    ("usage error", click.UsageError("x"), 2),
    ("any other pbgm error", PbgmError("x"), 1),
    ("a bug", ZeroDivisionError(), 1),
]


@pytest.mark.parametrize(("what", "error", "status"), EXIT_STATUSES)
def test_exit_statuses_come_from_one_table(what, error, status):
    assert exit_status(error) == status


def test_errors_print_code_and_message_or_json(pbgm, tmp_path):
    result = pbgm("policy", "show", "nope")
    assert (result.exit_code, result.stderr) == (5, "error: not_found: policy `nope` not found\n")
    result = pbgm("--json", "policy", "show", "nope")
    assert json.loads(result.stdout)["error"]["code"] == "not_found"
    malformed = tmp_path / "b.json"
    malformed.write_text("{")
    assert pbgm("policy", "import", malformed).exit_code == 3


def test_an_unreachable_store_is_exit_7_and_hides_the_password():
    url = "postgresql://pbgm:s3cret-pw@127.0.0.1:1/pbgm"
    result = CliRunner().invoke(main, ["--db", url, "policy", "list"])
    assert result.exit_code == 7
    assert "s3cret-pw" not in result.output
    assert result.stderr.startswith("error: store_unavailable: ")


def test_a_database_without_schema_says_what_to_run(tmp_path):
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "policy", "list"])
    assert result.exit_code != 0
    assert "pbgm db upgrade" in result.stderr


# --- the real console script ------------------------------------------------------------------


def test_the_console_script_on_a_fresh_sqlite_file(tmp_path):
    script = Path(sys.executable).with_name("pbgm")
    env = {
        **os.environ,
        "PBGM_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PBGM_ACTOR": "subprocess-test",
    }

    def run(*args):
        return subprocess.run(
            [script, *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    assert run("db", "upgrade").returncode == 0
    assert run("policy", "import", EXAMPLES / "policies").returncode == 0
    permitted = run("decide", REQUESTS / "kibernet-reads-pmu-data.json", "--group", "data-sharing")
    assert (permitted.returncode, json.loads(permitted.stdout)["decision"]) == (0, "Permit")
    denied = run(
        "decide", REQUESTS / "unknown-service-reads-pmu-data.json", "--group", "data-sharing"
    )
    assert denied.returncode == 10
    missing = run("policy", "history", "nope")
    assert (missing.returncode, missing.stderr) == (
        5,
        "error: not_found: policy `nope` not found\n",
    )
    history = json.loads(run("--json", "policy", "history", "limits-bess-01").stdout)
    assert history[0]["author"] == "subprocess-test"


def test_service_accounts_get_a_secret_shown_once_and_stored_hashed(tmp_path):
    """`pbgm service-account add|list|disable`: the secret is printed once, only its hash kept."""
    from click.testing import CliRunner

    from pbgm.auth.secrets import verify_secret
    from pbgm.cli import main
    from pbgm.store import open_store
    from pbgm.store.sql.migrate import upgrade

    db = f"sqlite:///{tmp_path / 'accounts.db'}"
    upgrade(db)
    runner = CliRunner()
    secret_file = tmp_path / "svc.secret"
    added = runner.invoke(
        main,
        ["--db", db, "--json", "service-account", "add", "svc-a", "--scope", "decisions:write"],
    )
    assert added.exit_code == 0, added.output
    secret = json.loads(added.output)["client_secret"]
    to_file = ["--db", db, "service-account", "add", "svc-b", "--secret-file", str(secret_file)]
    assert runner.invoke(main, to_file).exit_code == 0
    assert secret_file.stat().st_mode & 0o777 == 0o600
    store = open_store(db)
    account = store.get_service_account("svc-a")
    assert account.scopes == ("decisions:write",)
    assert secret not in account.secret_hash and verify_secret(secret, account.secret_hash)
    assert verify_secret(
        secret_file.read_text().strip(), store.get_service_account("svc-b").secret_hash
    )
    listed = runner.invoke(main, ["--db", db, "service-account", "list"])
    assert "svc-a" in listed.output and secret not in listed.output
    assert runner.invoke(main, ["--db", db, "service-account", "disable", "svc-a"]).exit_code == 0
    assert not open_store(db).get_service_account("svc-a").enabled
    again = runner.invoke(main, ["--db", db, "service-account", "add", "svc-a"])
    assert again.exit_code == 6 and "already_exists" in again.output


def test_a_global_administrator_is_granted_from_the_cli(tmp_path):
    """`pbgm grant NAME '*' admin --target-kind policy_group` creates the group `*` once."""
    from click.testing import CliRunner

    from pbgm.cli import main
    from pbgm.store import open_store
    from pbgm.store.sql.migrate import upgrade

    db = f"sqlite:///{tmp_path / 'admins.db'}"
    upgrade(db)
    runner = CliRunner()
    for account in ("svc-admin-a", "svc-admin-b"):
        added = runner.invoke(main, ["--db", db, "service-account", "add", account])
        assert added.exit_code == 0, added.output
        kinds = ["--principal-kind", "service", "--target-kind", "policy_group"]
        granted = runner.invoke(main, ["--db", db, "grant", account, "*", "admin", *kinds])
        assert granted.exit_code == 0, granted.output
    store = open_store(db)
    assert store.get_policy_group("*").description == "global administrators"
    grants = [g for g in store.list_grants() if g.target == "*"]
    assert sorted(g.principal for g in grants) == ["svc-admin-a", "svc-admin-b"]
    assert {g.permission.value for g in grants} == {"admin"}
