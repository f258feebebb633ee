"""Policy sets inside policy sets: a XACML `<PolicySet>` as one child of a policy set.

A `Policy` whose `is_set` holds has child policies (each a policy or again a set)
instead of rules. `CompiledPolicySetNode` compiles it as a policy is compiled (validity
window, target, its own obligations and advice) but combines its children with its
`policy_combining` algorithm, as a policy set does: over policies, naming the policies
that decided (`with_sources`), with the legacy algorithms' policy semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pbgm.decision.evaluator import (
    _BROKEN,
    INDEX_THRESHOLD,
    CompiledPolicy,
    combining_parts,
    outputs_use_current_time,
)
from pbgm.model import Policy

Compile = Callable[[Policy], Any]


class CompiledPolicySetNode(CompiledPolicy):
    """A compiled nested policy set (see the module docstring)."""

    __slots__ = ()

    with_sources = True

    def __init__(
        self, policy: Policy, compile_child: Compile, index_threshold: int = INDEX_THRESHOLD
    ) -> None:
        self.id = policy.id
        self.owner = None  # combining policies, not rules
        self.header(policy)
        self.children = tuple(compile_child(child) for child in policy.policies)
        self.uses_current_time = self.uses_current_time or any(
            child.uses_current_time for child in self.children
        )
        parts = combining_parts(self.children, policy.obligations, policy.advice, index_threshold)
        self.setup(policy.policy_combining or "", *parts)
        if self.extra is _BROKEN:
            self.failure = self.where("the target does not compile")
            self.combine = None


def set_uses_current_time(policy: Policy) -> bool:
    """Whether a policy set's own obligations or advice read the current time."""
    return outputs_use_current_time(policy.obligations, policy.advice)


def descendants(nodes: Iterable[Any]) -> Iterable[Any]:
    """Every compiled node under `nodes` (rules excluded), depth first."""
    for node in nodes:
        yield node
        if isinstance(node, CompiledPolicySetNode):
            yield from descendants(node.children)
