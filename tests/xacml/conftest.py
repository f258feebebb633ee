"""Fixtures of the XACML tests: deciding a policy and a request given as text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbgm.xacml import XacmlPdp, parse, read_policy, read_request
from pbgm.xacml.responses import XacmlResult

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def decide(policy_xml: str, request_xml: str, now: datetime = NOW) -> list[XacmlResult]:
    pdp = XacmlPdp(read_policy(parse(policy_xml)))
    return pdp.decide(read_request(parse(request_xml)), now)


@pytest.fixture
def decided():
    return decide
