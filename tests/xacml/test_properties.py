"""The optimised PDP agrees with the naive reference PDP (`tests/reference_pdp.py`) on
random XACML-shaped policies: typed designators, the XACML functions and data types,
XACML targets that may be Indeterminate, assignments, nested sets, every algorithm."""

from __future__ import annotations

import os

from hypothesis import given, settings

from pbgm.decision import compile_policy_set
from pbgm.model import Response
from tests import reference_pdp
from tests.xacml.strategies import NOW, policy_sets, requests

EXAMPLES = int(os.environ.get("PBGM_PDP_EXAMPLES", "200"))


def _view(response: Response) -> tuple:
    return (
        response.decision,
        response.status.code,
        response.status.missing,
        response.obligations,
        response.advice,
        response.policy_ids,
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(policy_set=policy_sets(), request=requests())
def test_optimised_pdp_equals_reference_pdp_on_xacml_policies(policy_set, request):
    expected = reference_pdp.decide(policy_set, request, NOW)
    for index_threshold in (0, 1000):
        compiled = compile_policy_set(policy_set, index_threshold=index_threshold)
        assert _view(compiled.respond(request, NOW)) == _view(expected)
    general = compile_policy_set(policy_set, specialise=False).respond(request, NOW)
    assert _view(general) == _view(expected)
