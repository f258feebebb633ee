"""Properties of the PDP: equal to the naive reference PDP on random inputs,
order-invariance of the *-overrides algorithms, default deny."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.errors import PermissionDeniedError
from pbgm.model import Decision, PolicySet, Response
from pbgm.pdp import PolicyDecisionPoint, compile_policy_set, evaluate
from pbgm.pep import PolicyEnforcementPoint
from tests import reference_pdp
from tests.strategies import NOW, policy_sets, requests

EXAMPLES = int(os.environ.get("PBGM_PDP_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None)
ORDER_FREE = st.sampled_from(["deny-overrides", "permit-overrides"])


def _view(response: Response) -> tuple:
    return (
        response.decision,
        response.status.code,
        response.obligations,
        response.advice,
        response.policy_ids,
    )


@SETTINGS
@given(policy_set=policy_sets(), request=requests())
def test_optimised_pdp_equals_reference_pdp(policy_set, request):
    compiled = compile_policy_set(policy_set, index_threshold=0)  # the index everywhere
    expected = reference_pdp.decide(policy_set, request, NOW)
    response = evaluate(compiled, request, NOW)
    assert _view(response) == _view(expected)
    general = compile_policy_set(policy_set, index_threshold=0, specialise=False)
    assert response == evaluate(general, request, NOW)  # errors included


@settings(max_examples=100, deadline=None)
@given(policy_set=policy_sets(max_policies=10), request=requests())
def test_index_finds_what_a_scan_finds(policy_set, request):
    indexed = evaluate(compile_policy_set(policy_set, index_threshold=0), request, NOW)
    scanned = evaluate(compile_policy_set(policy_set, index_threshold=10**6), request, NOW)
    assert indexed == scanned


def _shuffled(policy_set: PolicySet, data: st.DataObject) -> PolicySet:
    policies = []
    for policy in data.draw(st.permutations(policy_set.policies)):
        rules = data.draw(st.permutations(policy.rules))
        policies.append(replace(policy, rules=tuple(rules)))
    return replace(policy_set, policies=tuple(policies))


@SETTINGS
@given(policy_set=policy_sets(algorithm=ORDER_FREE), request=requests(), data=st.data())
def test_overrides_decisions_do_not_depend_on_order(policy_set, request, data):
    before = evaluate(compile_policy_set(policy_set), request, NOW)
    after = evaluate(compile_policy_set(_shuffled(policy_set, data)), request, NOW)
    assert after.decision == before.decision
    assert sorted(after.policy_ids) == sorted(before.policy_ids)
    assert sorted(map(repr, after.obligations)) == sorted(map(repr, before.obligations))


@SETTINGS
@given(request=requests())
def test_an_empty_policy_set_denies_through_pdp_and_pep(request):
    pdp = PolicyDecisionPoint(PolicySet(id="empty"), clock=lambda: NOW)
    pep = PolicyEnforcementPoint(pdp)
    assert pdp.decide(request).decision is Decision.NOT_APPLICABLE
    assert not pep.check(request).allowed
    with pytest.raises(PermissionDeniedError):
        pep.enforce(request, lambda: "ran")
