"""Deciding XACML requests with pbgm's decision core: the context handler of `pbgm.xacml`.

`XacmlPdp(policy)` compiles a policy (or policy set) read from XACML, as every pbgm
policy is compiled (`pbgm.decision`), inside a policy set of its own that adds nothing:
one child under deny-overrides decides as the child does. `decide(request, now)`
answers a read `XacmlRequest` with one `XacmlResult` per individual request: it supplies
the current time, date and dateTime a request lacks, asks the compiled set, echoes the
attributes asked back, and lists the applicable policies when `ReturnPolicyIdList` is set
(from a second, tracking compilation made on first need).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pbgm.decision import CompiledPolicySet, compile_policy_set
from pbgm.errors import ValidationError
from pbgm.model import Policy, PolicySet
from pbgm.xacml import names
from pbgm.xacml.references import DEFAULT_VERSION
from pbgm.xacml.requests import XacmlRequest
from pbgm.xacml.responses import PolicyRef, XacmlResult, result_of

ROOT = "urn:pbgm:xacml:root"


def _walk(policy: Policy) -> Iterator[Policy]:
    yield policy
    for child in policy.policies:
        yield from _walk(child)


class XacmlPdp:
    """A decision point for one XACML policy or policy set (see the module docstring)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.header = PolicySet(id=ROOT, policies=(policy,), policy_combining="deny-overrides")
        self.compiled = compile_policy_set(self.header)
        problems = self.compiled.problems
        if problems:
            raise ValidationError([], f"the policy does not compile: {problems[0].message}")
        self._tracking: CompiledPolicySet | None = None
        self.refs = {
            node.id: PolicyRef(
                "PolicySet" if node.is_set else "Policy",
                node.id,
                node.policy_version or DEFAULT_VERSION,
            )
            for node in _walk(policy)
        }

    def decide(self, request: XacmlRequest, now: datetime) -> list[XacmlResult]:
        if request.combined:
            return [
                XacmlResult(
                    "Indeterminate",
                    names.STATUS_CODES["processing-error"],
                    "pbgm does not combine decisions (CombinedDecision)",
                )
            ]
        compiled = self.compiled
        if request.return_policy_ids:
            if self._tracking is None:
                self._tracking = compile_policy_set(self.header).track()
            compiled = self._tracking
        results = []
        for individual in request.individuals:
            response = compiled.respond(individual.request(now), now)
            refs: tuple[PolicyRef, ...] = ()
            if request.return_policy_ids:
                refs = tuple(self.refs[i] for i in response.policy_ids if i in self.refs)
            results.append(result_of(response, individual.included(), refs))
        return results
