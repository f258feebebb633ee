"""The golden corpus (tests/conformance/<case>/): every case through the PDP, and
through the naive reference PDP as a second opinion."""

from __future__ import annotations

import pytest

from pbgm.pip import PolicyInformationPoint
from tests import reference_pdp
from tests.conformance import Case, load_cases, summarize

CASES = load_cases()
DECISION_KEYS = ("decision", "status", "obligations", "advice", "policy_ids")


def by_name(cases: list[Case]) -> list:
    return [pytest.param(case, id=case.name) for case in cases]


def test_the_corpus_has_at_least_forty_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", by_name(CASES))
def test_pdp_decides_as_expected(case: Case):
    assert case.decide() == case.expected


@pytest.mark.parametrize("case", by_name(CASES))
def test_reference_pdp_agrees_with_the_corpus(case: Case):
    request = case.request
    pip = case.pip() or PolicyInformationPoint()
    request, _ = pip.resolve(request)
    response = reference_pdp.decide(case.policy_set, request, case.now)
    expected = {k: v for k, v in case.expected.items() if k in DECISION_KEYS}
    assert summarize(response, expected) == expected


@pytest.mark.parametrize("case", by_name([c for c in CASES if not c.name.startswith("broken-")]))
def test_corpus_policies_are_valid_documents(case: Case):
    validate = pytest.importorskip("pbgm.policy.validate")
    for document in case.policy_document["policies"]:
        validate.validate_policy_document(document)
