"""Published documents packed for decision points (`pbgm.policy.published.pack`): what is
packed unpacks to the same text, plain JSON is read as it is, a packing of unknown
format is refused (and the policy Indeterminate where it applies, not skipped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import scale_workload as workload
from pbgm.policy.published import lazy_policies, pack, unpack
from pbgm.store._feed import decision_text
from pbgm.testing import make_request

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_what_is_packed_unpacks_to_the_same_text(value):
    text = json.dumps(value, separators=(",", ":"))
    packed = pack(text)
    assert packed[:1] == b"\x01"
    assert unpack(packed).decode() == text


def test_a_published_document_is_a_fifth_of_its_text():
    document = workload.document(2)
    packed, _, _, _ = decision_text(document)
    text = json.dumps(json.loads(unpack(packed)), separators=(",", ":"))
    assert len(packed) * 3 < len(text)


@pytest.mark.parametrize("plain", ['{"a":1}', b'{"a":1}'])
def test_plain_json_text_is_read_as_it_is(plain):
    assert json.loads(unpack(plain)) == {"a": 1}


def test_a_packing_of_unknown_format_makes_its_policy_indeterminate():
    document = workload.document(1)
    packed, target, windowed, timed = decision_text(document)
    row = (document["id"], document["policy_group"], 1, b"\x02" + packed[1:], target)
    (policy,) = lazy_policies([(*row, windowed, timed)])
    with pytest.raises(ValueError, match="unknown packing"):
        unpack(b"\x02" + packed[1:])
    request = make_request(**workload.request(1, "team-1"))
    result = policy.evaluate(request, datetime.now(UTC))
    assert repr(result).startswith("Result(Indeterminate")  # fails closed, not skipped
