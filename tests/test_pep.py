"""The Policy Enforcement Point: only Permit with every obligation discharged
lets the action run; everything else denies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbgm.errors import PermissionDeniedError
from pbgm.model import Decision, Obligation, Request
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import PolicyEnforcementPoint
from pbgm.policy.syntax import policy_set_from_documents

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MISSING = {"apply": "equal", "args": [{"attr": "environment.missing"}, 1]}


def pdp_for(
    effect: str = "Permit", condition=True, obligations=(), advice=()
) -> PolicyDecisionPoint:
    rule = {"id": "r", "effect": effect, "condition": condition,
            "obligations": list(obligations), "advice": list(advice)}  # fmt: skip
    doc = {"id": "p", "type": "operational_limits", "policy_group": "g", "rules": [rule]}
    ps = policy_set_from_documents({"id": "s", "policy_combining": "deny-overrides"}, [doc])
    return PolicyDecisionPoint(ps, clock=lambda: NOW)


AUDIT = {"id": "audit", "attributes": {"who": {"attr": "subject.id"}}}
REQUEST = Request(subject={"id": "alice"})


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Obligation, Request]] = []
        self.fail = fail

    def __call__(self, obligation, request) -> None:
        self.calls.append((obligation, request))
        if self.fail:
            raise RuntimeError("disk full")


@pytest.mark.parametrize(
    ("what", "pdp", "handlers", "allowed"),
    [
        ("permit without obligations", pdp_for(), {}, True),
        ("permit with a discharged obligation", pdp_for(obligations=[AUDIT]),
         {"audit": Recorder()}, True),
        ("permit with an obligation nobody handles", pdp_for(obligations=[AUDIT]), {}, False),
        ("permit with a failing handler", pdp_for(obligations=[AUDIT]),
         {"audit": Recorder(fail=True)}, False),
        ("deny", pdp_for("Deny"), {}, False),
        ("not applicable", pdp_for(condition=False), {}, False),
        ("indeterminate", pdp_for(condition=MISSING), {}, False),
        ("no policy set at all", PolicyDecisionPoint(clock=lambda: NOW), {}, False),
    ],
)  # fmt: skip
def test_only_a_fully_discharged_permit_is_allowed(what, pdp, handlers, allowed):
    ran = []
    pep = PolicyEnforcementPoint(pdp, handlers)
    assert pep.check(REQUEST).allowed is allowed
    if allowed:
        assert pep.enforce(REQUEST, lambda: ran.append(1) or "done") == "done"
    else:
        with pytest.raises(PermissionDeniedError) as raised:
            pep.enforce(REQUEST, lambda: ran.append(1))
        assert raised.value.code == "permission_denied"
        assert raised.value.response == pep.check(REQUEST).response
    assert ran == ([1] if allowed else [])


def test_handlers_receive_the_resolved_obligation_and_the_request():
    audit = Recorder()
    pep = PolicyEnforcementPoint(pdp_for(obligations=[AUDIT]))
    pep.register("audit", audit)
    enforcement = pep.check(REQUEST)
    assert enforcement.discharged == ("audit",)
    [(obligation, request)] = audit.calls
    assert obligation.attributes == {"who": "alice"}
    assert request.subject["id"] == "alice"


def test_an_unknown_obligation_denies_before_any_handler_runs():
    notify = {"id": "notify", "attributes": {}}
    audit = Recorder()
    pep = PolicyEnforcementPoint(pdp_for(obligations=[AUDIT, notify]), {"audit": audit})
    enforcement = pep.check(REQUEST)
    assert not enforcement.allowed
    assert "`notify`" in enforcement.reason
    assert audit.calls == []


def test_obligations_of_a_deny_still_run_best_effort():
    notify = Recorder(fail=True)
    audit = Recorder()
    pdp = pdp_for("Deny", obligations=[{"id": "notify", "attributes": {}}, AUDIT,
                                       {"id": "unhandled", "attributes": {}}])  # fmt: skip
    pep = PolicyEnforcementPoint(pdp, {"notify": notify, "audit": audit})
    enforcement = pep.check(REQUEST)
    assert not enforcement.allowed
    assert enforcement.reason == "denied by policy"
    assert len(notify.calls) == 1
    assert len(audit.calls) == 1


def test_advice_goes_to_advice_handlers_and_never_blocks():
    hint = Recorder(fail=True)
    pdp = pdp_for(advice=[{"id": "hint", "attributes": {"text": "peak hours"}}])
    pep = PolicyEnforcementPoint(pdp, advice_handlers={"hint": hint})
    assert pep.check(REQUEST).allowed
    [(advice, _)] = hint.calls
    assert advice.attributes == {"text": "peak hours"}
    unhandled = PolicyEnforcementPoint(pdp)
    assert unhandled.check(REQUEST).allowed


def test_a_failing_decision_point_denies():
    class Broken:
        def decide(self, request, *, now=None):
            raise RuntimeError("boom")

    enforcement = PolicyEnforcementPoint(Broken()).check(REQUEST)
    assert not enforcement.allowed
    assert enforcement.response.decision is Decision.INDETERMINATE


def test_the_denial_explains_an_indeterminate():
    enforcement = PolicyEnforcementPoint(pdp_for(condition=MISSING)).check(REQUEST)
    assert enforcement.reason.startswith("the decision could not be made: ")
    assert "environment.missing" in enforcement.reason
