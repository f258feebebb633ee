"""Credentials: a policy only names them; they reach the peer and nothing else (logs at
every level, audit entries, the policy as the repository serves it, errors)."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from adapters.kibernet.standin import KibernetStandIn
from pbgm.errors import ConfigurationError
from pbgm.policy.validate import problems_of
from tests.kibernet.conftest import Rig, data_access, with_rule_obligations

SECRET = "kib-client-secret-6f1d0c9a7e"
API_KEY = "kib-api-key-3b8e2f51aa"


def everything_said(run: Rig, caplog: pytest.LogCaptureFixture) -> str:
    audit = json.dumps([e.details for e in run.store.list_audit()], default=str)
    served = json.dumps(run.store.get_policy(run.document["id"]).document)
    published = " ".join(json.dumps(p) for _, p in run.inbox.items)
    return "\n".join([caplog.text, audit, served, published])


def test_oauth2_client_credentials_from_the_environment_stay_secret(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("KIB_TEST_SECRET", SECRET)
    with KibernetStandIn(client=("pbgm-voltage", SECRET)) as kibernet:
        kibernet.set("F3.N3.U", 1.02)
        kibernet.set("F3.N4.U", 1.04)
        kibernet.set("M4.P", 12.5)
        document = with_rule_obligations(data_access(kibernet.url), {"id": "audit"})
        document["content"]["endpoints"]["kibernet"]["auth"] = {
            "method": "oauth2_client_credentials",
            "token_url": f"{kibernet.url}/oauth/token",
            "client_id": "pbgm-voltage",
            "secret_ref": {"env": "KIB_TEST_SECRET"},
        }
        run = Rig(document)
        try:
            assert run.poller.poll_once() == {"published": 3}
            assert any(
                h.get("Authorization", "").startswith("Bearer ") for h in kibernet.headers_seen
            )
            monkeypatch.setenv("KIB_TEST_SECRET", SECRET[::-1])  # a wrong secret now
            changed = copy.deepcopy(document)
            changed["content"]["endpoints"]["kibernet"]["timeout_s"] = 2
            run.change(changed)  # a new client, which fetches a token with it
            assert run.poller.poll_once() == {"failed": 3}
            assert "peer_auth_failed" in caplog.text
        finally:
            run.poller.close()
    said = everything_said(run, caplog)
    assert "kibernet.read" in {e.action for e in run.store.list_audit()}
    assert SECRET not in said and SECRET[::-1] not in said


def test_a_refused_api_key_is_reported_without_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    (tmp_path / "kibernet").mkdir()
    (tmp_path / "kibernet" / "api-key").write_text(API_KEY + "-wrong\n")
    with KibernetStandIn(api_key=API_KEY) as kibernet:
        kibernet.set("F3.N3.U", 1.02)
        document = data_access(kibernet.url)
        document["content"]["endpoints"]["kibernet"]["auth"] = {
            "method": "api_key",
            "secret_ref": "kibernet/api-key",
        }
        run = Rig(document, secrets_dir=tmp_path)
        try:
            assert run.poller.poll_once() == {"failed": 3}
            assert run.poller.stale() == {
                name: {"topic": topic, "reason": "peer_auth_failed"}
                for name, topic in (("n3", "/kib/voltage"), ("n4", "/kib/voltage"),
                                    ("meter", "/kib/meter"))
            }  # fmt: skip
            assert "peer_auth_failed" in caplog.text
            (tmp_path / "kibernet" / "api-key").write_text(API_KEY + "\n")  # rotated
            assert run.poller.poll_once()["published"] == 1  # read again, no restart
        finally:
            run.poller.close()
    said = everything_said(run, caplog)
    assert API_KEY not in said


def test_a_missing_secret_refuses_the_policy_and_names_only_the_reference(monkeypatch, rig):
    run = rig()
    document = data_access("http://127.0.0.1:9")
    document["content"]["endpoints"]["kibernet"]["auth"] = {
        "method": "api_key",
        "secret_ref": {"env": "KIB_TEST_UNSET"},
    }
    monkeypatch.delenv("KIB_TEST_UNSET", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        run.poller.apply(document)
    assert "KIB_TEST_UNSET" in caught.value.message
    assert run.poller.plan is not None and run.poller.plan.endpoints["kibernet"]


@pytest.mark.parametrize(
    ("auth", "path", "code"),
    [
        ({"method": "api_key", "secret_ref": {"value": API_KEY}}, "secret_ref",
         "invalid_secret_reference"),
        ({"method": "api_key", "key": API_KEY}, "key", "additional_property"),
        ({"method": "api_key"}, "secret_ref", "required"),
        (
            {"method": "oauth2_client_credentials", "secret_ref": "k",
             "token_url": "https://k.example/token"},
            "client_id",
            "required",
        ),
        ({"method": "api_key", "secret_ref": "kibernet/../../shadow"}, "secret_ref",
         "invalid_secret_reference"),
    ],
)  # fmt: skip
def test_a_policy_cannot_carry_a_secret_itself(auth, path, code):
    document = data_access("https://kibernet.example/api")
    document["content"]["endpoints"]["kibernet"]["auth"] = auth
    problems = {(p.path, p.code) for p in problems_of(document)}
    assert (f"$.content.endpoints.kibernet.auth.{path}", code) in problems
