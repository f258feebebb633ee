"""`pbgm xacml import|export|decide` on a real SQLite repository."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pbgm.cli import main
from tests.xacml.helpers import (
    ACTION,
    ACTION_ID,
    F1,
    NS,
    any_of,
    attribute,
    attributes,
    designator,
    match,
    policy,
    policy_set,
    request,
    rule,
    target,
    value,
)

READ_ONLY = target(
    any_of(match(F1 + "string-equal", value("read"), designator(ACTION_ID, category=ACTION)))
)


@pytest.fixture
def cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--db", url, *args])

    assert run("db", "upgrade").exit_code == 0
    return run


def test_import_then_export_then_import_again_changes_nothing(cli, tmp_path):
    source = tmp_path / "reads.xml"
    source.write_text(policy("reads", rule("r"), target_xml=READ_ONLY))
    dry = cli("xacml", "import", str(source), "--group", "access", "--dry-run")
    assert dry.exit_code == 0 and "create    policy       reads" in dry.output
    assert "reads" not in cli("--json", "policy", "list").output
    assert cli("xacml", "import", str(source), "--group", "access").exit_code == 0
    listed = json.loads(cli("--json", "policy", "list").output)
    assert [p["id"] for p in listed] == ["reads"]
    exported = cli("xacml", "export", str(tmp_path / "out"))
    assert exported.exit_code == 0
    again = cli("xacml", "import", str(tmp_path / "out" / "access.xml"), "--dry-run")
    assert again.exit_code == 0, again.output
    assert "1 unchanged" in again.output and " policy  " not in again.output
    assert "create    policy_group access" in again.output  # the export names the group


def test_references_resolve_against_the_repository(cli, tmp_path):
    (tmp_path / "child.xml").write_text(policy("child", rule("r")))
    assert cli("xacml", "import", str(tmp_path / "child.xml")).exit_code == 0
    (tmp_path / "parent.xml").write_text(
        policy_set("parent", "<PolicyIdReference>child</PolicyIdReference>")
    )
    result = cli("xacml", "import", str(tmp_path / "parent.xml"))
    assert result.exit_code == 0, result.output


def test_an_invalid_policy_is_refused_with_where_and_why(cli, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(policy("bad", rule("r", "Maybe")))
    result = cli("xacml", "import", str(bad))
    assert result.exit_code == 4
    assert "bad.xml:/Policy[bad]/Rule[r]: invalid_effect" in result.output


def test_decide_prints_the_xacml_response_and_exits_by_decision(cli, tmp_path):
    (tmp_path / "p.xml").write_text(policy("p", rule("r", "Deny"), target_xml=READ_ONLY))
    (tmp_path / "read.xml").write_text(request(attributes(ACTION, attribute(ACTION_ID, "read"))))
    (tmp_path / "write.json").write_text(
        json.dumps(
            {"Request": {"Action": {"Attribute": [{"AttributeId": ACTION_ID, "Value": "write"}]}}}
        )
    )
    (tmp_path / "broken.xml").write_text(f'<Request xmlns="{NS}"/>')
    denied = cli("xacml", "decide", str(tmp_path / "p.xml"), str(tmp_path / "read.xml"))
    assert denied.exit_code == 10 and "<Decision>Deny</Decision>" in denied.output
    na = cli("xacml", "decide", str(tmp_path / "p.xml"), str(tmp_path / "write.json"))
    assert (
        na.exit_code == 11 and json.loads(na.output)["Response"][0]["Decision"] == "NotApplicable"
    )
    broken = cli("xacml", "decide", str(tmp_path / "p.xml"), str(tmp_path / "broken.xml"))
    assert broken.exit_code == 12 and "status:syntax-error" in broken.output
