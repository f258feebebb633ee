"""The decision core: policies compiled once, requests decided many times.

Where a decision is made. Nothing here reads a clock, touches a store, a network or a
file; the Policy Decision Point (`pbgm.pdp`) wraps it with reloading, a PIP and a clock.

- `compiled`: `CompiledPolicySet`, `compile_policy_set`, `compile_policies`, `report`;
  `changes`: a compiled set changed in place (`CompiledPolicySet.updated`); `lazy`:
  `LazyPolicy`, compiled when a decision first reaches it.
- `evaluator`: compiled rules and policies (targets, conditions, obligations, an index);
  `flat`: the common shapes of policy, specialised; `index`, `membership`: target matching,
  the candidate index and the membership tests; `outputs`: obligations and advice.
- `combining`: the XACML 3.0 combining algorithms with Indeterminate{D,P,DP}.
- `conditions`, `compiler`, `builders`: the condition language compiled to closures
  (the functions themselves are `pbgm.functions`); `shared`: one copy of repeated parts.

Imports only `pbgm.model`, `pbgm.errors` and `pbgm.functions` (an import-linter contract).
"""

from __future__ import annotations

from pbgm.decision.combining import ALGORITHMS, INDETERMINATE_DP, Result
from pbgm.decision.compiled import (
    CompiledPolicySet,
    compile_policies,
    compile_policy_set,
    report,
)
from pbgm.decision.conditions import (
    check_condition,
    check_expression,
    compile_condition,
    compile_expression,
)
from pbgm.decision.evaluator import INDEX_THRESHOLD
from pbgm.decision.flat import compile_policy
from pbgm.decision.lazy import LazyPolicy

__all__ = [
    "ALGORITHMS",
    "INDETERMINATE_DP",
    "INDEX_THRESHOLD",
    "CompiledPolicySet",
    "LazyPolicy",
    "Result",
    "check_condition",
    "check_expression",
    "compile_condition",
    "compile_expression",
    "compile_policies",
    "compile_policy",
    "compile_policy_set",
    "report",
]
