"""The XACML 3.0 conformance cases pbgm has (`../shared/xacml-conformance/mandatory` next to
the repository; `PBGM_XACML_CONFORMANCE` names another directory), run by the runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pbgm.xacml.conformance import main, run
from tests.conftest import require_service
from tests.xacml.helpers import (
    ACTION,
    ACTION_ID,
    attribute,
    attributes,
    policy,
    request,
    rule,
)

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("PBGM_XACML_CONFORMANCE", ROOT.parent / "shared" / "xacml-conformance"))


def suite() -> Path:
    mandatory = SUITE / "mandatory"
    if not mandatory.is_dir():
        require_service(
            "the XACML conformance suite",
            f"is not at `{mandatory}`: set PBGM_XACML_CONFORMANCE to its directory",
        )
    return mandatory


@pytest.mark.slow
def test_every_case_of_the_suite_passes():
    outcomes = run(suite())
    failed = [f"{o.case}: {o.why}" for o in outcomes if not o.passed]
    assert len(outcomes) >= 230
    assert failed == []


def test_the_runner_prints_a_line_per_case_and_the_totals(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for case, effect in ((good, "Permit"), (bad, "Deny")):
        case.mkdir()
        (case / "Policy.xml").write_text(policy("p", rule("r", effect)))
        (case / "Request.xml").write_text(request(attributes(ACTION, attribute(ACTION_ID, "read"))))
        (case / "Response.xml").write_text(
            '<Response xmlns="urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"><Result>'
            "<Decision>Permit</Decision></Result></Response>"
        )
    assert main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "FAIL bad: decision Deny, expected Permit"
    assert lines[1] == "PASS good"
    assert lines[2].startswith("1 passed, 1 failed (")


def test_an_ignored_request_means_the_policy_must_be_refused(tmp_path, capsys):
    case = tmp_path / "invalid"
    case.mkdir()
    (case / "Policy.xml").write_text(policy("p", rule("r", "Maybe")))
    (case / "Request.xml.ignore").write_text(request())
    accepted = tmp_path / "valid"
    accepted.mkdir()
    (accepted / "Policy.xml").write_text(policy("p", rule("r")))
    (accepted / "Request.xml.ignore").write_text(request())
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "PASS invalid" in out
    assert "FAIL valid: the policy is invalid but was accepted" in out


def test_the_runner_is_a_module_with_an_exit_status(tmp_path):
    empty = subprocess.run(
        [sys.executable, "-m", "pbgm.xacml.conformance", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert empty.returncode == 2
    assert "no conformance case" in empty.stderr
