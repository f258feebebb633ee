"""Round trips: pbgm/v1 -> XACML -> pbgm/v1 is the identity on the example bundle, and
XACML -> pbgm -> XACML -> pbgm decides the conformance requests as the first reading did."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pbgm.bundle import read_bundle
from pbgm.policy import canonical_json, dump_policy, parse_policy
from pbgm.xacml import (
    XacmlPdp,
    parse,
    parse_file,
    policy_element,
    read_files,
    read_policy,
    read_request,
    same_results,
    write_groups,
    xml_text,
)
from pbgm.xacml.conformance import cases, load_policy
from tests.xacml.test_conformance_suite import suite

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


@pytest.fixture(scope="module")
def bundle():
    return read_bundle(EXAMPLES)


def test_every_example_policy_survives_xacml_unchanged(bundle):
    for document in bundle.policies:
        policy = parse_policy(document)
        again = read_policy(parse(xml_text(policy_element(policy))))
        assert canonical_json(dump_policy(again)) == canonical_json(dump_policy(policy))


def test_the_example_bundle_exported_and_imported_is_the_same(bundle, tmp_path):
    texts = write_groups(bundle.policy_groups, bundle.policies)
    for group_id, text in texts.items():
        (tmp_path / f"{group_id}.xml").write_text(text)
    imported = read_files([tmp_path])
    assert sorted(imported.groups, key=repr) == sorted(bundle.policy_groups, key=repr)
    documents = sorted(imported.documents, key=lambda d: d["id"])
    expected = sorted(
        (dump_policy(parse_policy(d)) for d in bundle.policies), key=lambda d: d["id"]
    )
    assert [canonical_json(d) for d in documents] == [canonical_json(d) for d in expected]


def test_an_exported_pbgm_policy_is_standard_xacml_where_xacml_can_say_it(bundle):
    [limits] = [d for d in bundle.policies if d["id"] == "limits-bess-01"]
    text = xml_text(policy_element(parse_policy(limits)))
    assert "urn:oasis:names:tc:xacml:1.0:function:string-equal" in text  # the targets
    assert "urn:oasis:names:tc:xacml:1.0:action:action-id" in text
    assert "dateTime-less-than-or-equal" in text  # the validity window
    assert "urn:pbgm:function:at-least-one-member-of" in text  # a pbgm function stays pbgm's


@pytest.mark.slow
def test_conformance_policies_exported_and_imported_decide_the_same():
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    compared = 0
    for case in cases(suite()):
        if not (case / "Request.xml").is_file():
            continue
        pdp = load_policy(case)
        document = dump_policy(pdp.policy)  # the stored form, then XACML again
        again = XacmlPdp(read_policy(parse(xml_text(policy_element(parse_policy(document))))))
        request = read_request(parse_file(case / "Request.xml"))
        assert same_results(pdp.decide(request, now), again.decide(request, now)), case.name
        compared += 1
    assert compared >= 220


def test_the_imported_example_decides_pbgm_requests():
    from pbgm.model import Decision, Request
    from pbgm.pdp import PolicyDecisionPoint
    from pbgm.policy import load_file, policy_set_from_documents

    document = load_file(EXAMPLES / "policies" / "historian-access.json")
    imported = read_files(
        [EXAMPLES.parent / "xacml" / "historian-access.xml"], group="data-sharing"
    )
    assert {**imported.documents[0], "content": document["content"]} == document
    pdp = PolicyDecisionPoint(policy_set_from_documents({"id": "data-sharing"}, [document]))
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    historian = {"id": "historian", "series": "feeder-3-aggregate"}
    operator = pdp.decide(
        Request({"id": "op-anna", "groups": ["operators"]}, historian, {"id": "read"}), now=now
    )
    assert operator.decision is Decision.PERMIT
    assert [(o.id, dict(o.attributes)) for o in operator.obligations] == [
        ("audit", {"reader": ("op-anna",)})
    ]
    market = Request(
        {"id": "goflex", "groups": ["market"]}, {**historian, "series": "raw"}, {"id": "read"}
    )
    assert pdp.decide(market, now=now).decision is Decision.NOT_APPLICABLE
    no_series = Request({"id": "goflex", "groups": ["market"]}, {"id": "historian"}, {"id": "read"})
    assert pdp.decide(no_series, now=now).decision is Decision.INDETERMINATE
