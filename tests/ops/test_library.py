"""The short library path: a PDP in one call, `is_permitted`, the common names at the
top, a `Request` that refuses what is not a mapping, a rendered API reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

import pbgm
from pbgm import InvalidInputError, Request, ValidationError, load_pdp
from pbgm.testing import permit, policy_document

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_a_pdp_from_a_bundle_in_one_call_uses_its_memberships():
    pdp = load_pdp(EXAMPLES / "policies", policy_group="data-sharing")
    reads = {"topic": "/location_10003/30025/edgePMU3 ch1 amplitude"}
    assert pdp.is_permitted(subject="svc-kibernet", resource=reads, action="subscribe") is False
    response = pdp.decide(
        Request(subject={"id": "svc-kibernet"}, resource=reads, action={"id": "subscribe"})
    )
    assert str(response.decision) == "Permit"  # with obligations: `is_permitted` says False
    assert response.obligations
    unknown = {"id": "svc-unknown"}
    assert not pdp.decide(
        Request(subject=unknown, resource=reads, action={"id": "subscribe"})
    ).allowed


READ = policy_document(
    "grid-readers",
    rules=[permit(condition={"apply": "is-in", "args": ["readers", {"attr": "subject.groups"}]})],
)
AUDITED = policy_document(
    "audited",
    policy_group="other",
    rules=[permit(target={"action": {"id": "write"}}, obligations=[{"id": "audit"}])],
)


@pytest.mark.parametrize(
    ("what", "subject", "action", "permitted"),
    [
        ("a member of the readers", "anna", "read", True),
        ("someone else", "bob", "read", False),
        ("a permit that carries an obligation fails closed", "anna", "write", False),
    ],
)
def test_is_permitted_from_documents(what, subject, action, permitted):
    pdp = load_pdp([READ, AUDITED], memberships={"anna": ["readers"]})
    resource = {"topic": "test/a"}
    assert pdp.is_permitted(subject=subject, resource=resource, action=action) is permitted


def test_only_the_named_group_is_loaded():
    pdp = load_pdp([READ, AUDITED], policy_group="other", memberships={"anna": ["readers"]})
    assert not pdp.is_permitted(subject="anna", resource={"topic": "test/a"}, action="read")


def test_every_problem_of_every_document_is_listed():
    bad = {**READ, "id": "bad", "rule_combining": "deny-override"}
    worse = {**AUDITED, "type": "no-such-type"}
    with pytest.raises(ValidationError) as raised:
        load_pdp([READ, bad, worse])
    paths = [p.path for p in raised.value.problems]
    assert "$[1].rule_combining" in paths and any(p.startswith("$[2].") for p in paths)


@pytest.mark.parametrize("wrong", ["oops", None, ["id", "x"], 3])
def test_a_request_refuses_a_bag_that_is_not_a_mapping(wrong):
    with pytest.raises(InvalidInputError) as raised:
        Request(resource=wrong)
    assert raised.value.code == "invalid_request"
    assert "`resource` of a request must be a mapping" in raised.value.message


def test_any_mapping_is_a_bag():
    request = Request(subject=MappingProxyType({"id": "a"}), environment={})
    assert request.subject["id"] == "a"


def test_the_common_names_are_at_the_top():
    for name in pbgm.__all__:
        assert getattr(pbgm, name) is not None
    for name in ("load_pdp", "MemoryStore", "open_store", "Permission", "PolicyGroup", "Status",
                 "ConfigurationError", "PermissionDeniedError", "utc_now"):  # fmt: skip
        assert name in pbgm.__all__


BLOCKER = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"numpy", "scipy", "flask", "paho", "gunicorn", "psycopg",
                                  "flask_limiter", "werkzeug"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def test_a_service_that_only_decides_needs_no_server_bus_or_numerics(tmp_path: Path):
    """The core runs without the extras (`pbgm[server]`, `[mqtt]`, `[postgres]`, `[controls]`)."""
    program = (
        BLOCKER
        + f"""
import pbgm
pdp = pbgm.load_pdp({str(EXAMPLES / "policies")!r}, policy_group="operational-limits")
print(pdp.decide(pbgm.Request(subject={{"id": "op-anna"}}, resource={{"asset_id": "bess-01"}},
                              action={{"id": "write"}})).decision)
from pbgm.cli import main
main(["--db", "sqlite:///{tmp_path}/core.db", "db", "upgrade"], standalone_mode=False)
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Permit")
    served = subprocess.run(
        [sys.executable, "-c", BLOCKER + "from pbgm.cli import main; main()",
         "--db", f"sqlite:///{tmp_path}/core.db", "serve"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert served.returncode == 9
    assert "pip install 'pbgm[server]'" in served.stderr


def _setup_cfg_extras() -> dict[str, set[str]]:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    names = {}
    for key in ("install_requires",):
        names["core"] = _names(parser["options"][key])
    for extra, value in parser["options.extras_require"].items():
        names[extra] = _names(value)
    return names


def _names(text: str) -> set[str]:
    return {
        re.split(r"[\[<>=!;]", line.strip())[0].lower() for line in text.split("\n") if line.strip()
    }


def test_the_extras_split_the_dependencies():
    extras = _setup_cfg_extras()
    server = {"flask", "gunicorn", "flask-limiter", "flask-login", "flask-wtf"}
    rest = {"httpx", "httpx-auth", "tenacity"}  # the REST peers' clients (adapters)
    heavy = {"numpy", "scipy", "paho-mqtt", "psycopg", *server, *rest}
    assert not extras["core"] & heavy
    assert extras["server"] == server  # the REST API and the admin GUI it mounts
    assert extras["postgres"] == {"psycopg"}
    assert extras["mqtt"] == {"paho-mqtt"}
    assert extras["controls"] == {"numpy", "scipy"}
    assert extras["rest"] == rest
    assert extras["all"] == heavy
    assert "'.[all," in (ROOT / "Makefile").read_text()  # what `make demo` installs


@pytest.mark.slow
def test_the_api_reference_is_rendered(tmp_path: Path):
    makefile = (ROOT / "Makefile").read_text()
    modules = re.search(r"API_MODULES := (.*?)\n\n", makefile, re.S)
    assert modules is not None
    names = modules.group(1).replace("\\\n", " ").split()
    done = subprocess.run(
        [sys.executable, "-m", "pdoc", "--docformat", "markdown", "-o", str(tmp_path), *names],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "is_permitted" in (tmp_path / "pbgm" / "pdp.html").read_text()
    assert "load_pdp" in (tmp_path / "pbgm.html").read_text()
    assert (tmp_path / "index.html").exists()
