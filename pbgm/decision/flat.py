"""Flat policies: the common shape of policy, specialised, and the factory that picks it.

A policy is *flat* when each of its rules carries nothing but its effect (no
obligations or advice, a condition that compiled), its own obligations and
advice are literal, its algorithm is deny-overrides, permit-overrides,
deny-unless-permit, permit-unless-deny or first-applicable, and its rules with a
target are indexed (`pbgm.decision.index.index_key`) on one attribute, usually
`action.id`. Grants and access policies mostly look like this.

A flat policy decides with one dict lookup (its rules by the string value of
that attribute; the layout of that table is shared by every policy with the same
keys), the `rest` of the target and the condition of the few rules found, and a
table from the effects seen (none, Permit, Deny, both) to its ready result.

Where the fast path could differ from the general one of `pbgm.decision.evaluator`, the
policy takes the general path: when the attribute's value is not a string (a
bag, a number, absent), and when a condition raises (the general path evaluates
again and reports the error as Indeterminate; conditions are pure functions of
the request, so evaluating twice is safe). The tests hold both paths equal to
the naive reference PDP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pbgm.decision.combining import DENY, NOT_APPLICABLE, PERMIT, Combining, Result
from pbgm.decision.evaluator import INDEX_THRESHOLD, CompiledPolicy, CompiledRule
from pbgm.decision.index import bag_getter, index_key
from pbgm.decision.membership import holds
from pbgm.decision.nested import CompiledPolicySetNode
from pbgm.decision.shared import CACHE_SIZE, shared
from pbgm.model import Policy, Request

OUTCOMES: dict[str, tuple[int, int, int, int]] = {
    "deny-overrides": (NOT_APPLICABLE, PERMIT, DENY, DENY),
    "permit-overrides": (NOT_APPLICABLE, PERMIT, DENY, PERMIT),
    "deny-unless-permit": (DENY, PERMIT, DENY, PERMIT),
    "permit-unless-deny": (PERMIT, PERMIT, DENY, DENY),
    "first-applicable": (NOT_APPLICABLE, PERMIT, DENY, NOT_APPLICABLE),  # stops at the first
}
"""The decision of each algorithm by the effects seen among rules that hold:
none, Permit (flag 1), Deny (flag 2), both."""

LEAF_TESTS = 2
LEAF_SEGMENT = 4 + 2 * LEAF_TESTS
_ALWAYS = (True, None)  # membership tests that always hold: no condition
_layouts: dict[tuple[str, ...], dict[str, int]] = {}
_leaf_layouts: dict[tuple[str, int], tuple[Any, str, dict[str, int]]] = {}


def compile_policy(
    policy: Policy, index_threshold: int = INDEX_THRESHOLD, *, specialise: bool = True
) -> CompiledPolicy:
    """The compiled policy: flat when it has the shape (and `specialise`), else general; a
    policy set (`Policy.is_set`) compiled with its children."""
    if policy.is_set:
        return CompiledPolicySetNode(
            policy,
            lambda child: compile_policy(child, index_threshold, specialise=specialise),
            index_threshold,
        )
    node = CompiledPolicy(policy, index_threshold)
    if specialise:
        FlatPolicy.specialise(node, policy.rule_combining)
    for rule in node.children:  # needed no more: let the parsed policy go
        rule.target_matches = ()
    return node


class FlatPolicy(CompiledPolicy):
    """A policy of the flat shape (see the module docstring)."""

    __slots__ = ()

    @staticmethod
    def specialise(node: CompiledPolicy, algorithm: str) -> None:
        """Turn `node` into a flat policy when it has the shape; leave it alone otherwise."""
        rules: Sequence[CompiledRule] = node.children
        outcomes = _outcomes(node, algorithm)
        keys = [index_key(rule.target_matches) for rule in rules]
        paths = {(key.category, key.name) for key in keys if key is not None}
        if outcomes is None or len(paths) > 1 or not all(rule.bare for rule in rules):
            return
        node.outcomes, node.first = outcomes, algorithm == "first-applicable"
        node.unkeyed = tuple(rule for rule, key in zip(rules, keys, strict=True) if key is None)
        node.key_bag, node.key_name, node.key_slots, node.key_entries = None, "", {}, ()
        if paths:
            ((category, name),) = paths
            node.key_bag, node.key_name = bag_getter(category), name
            node.key_slots, node.key_entries = _table(rules, keys)
        node.__class__ = FlatPolicy  # the same slots: only the evaluation differs

    def combined(self, request: Request, now: datetime) -> Result:
        seen = self.scan(request)
        if seen < 0:
            return Combining.combined(self, request, now)
        return self.outcomes[seen]  # type: ignore[no-any-return]  # reachable: a Result

    def scan(self, request: Request) -> int:
        """The effects seen among the rules that hold (flags: 1 Permit, 2 Deny), or -1
        when only the general path can tell (see the module docstring).

        One function on purpose: this is the hot path, and every call saved counts.
        """
        bag = self.key_bag
        if bag is None:
            rules = self.unkeyed
        else:
            value = bag(request).get(self.key_name)
            if value.__class__ is not str:
                return -1
            slot = self.key_slots.get(value)
            rules = self.unkeyed if slot is None else self.key_entries[slot]
        seen = 0
        try:
            for rule in rules:
                rest = rule.rest
                if rest is not None and not rest(request):
                    continue
                tests = rule.tests
                if tests is None:
                    condition = rule.condition
                    if condition is not None and not condition(request):
                        continue
                else:
                    hit = holds(tests, request)
                    if hit is None:
                        return -1
                    if not hit:
                        continue
                seen |= rule.flag
                if self.first:
                    break
        except Exception:  # a failing condition: the general path reports it
            return -1
        return seen

    def leaf(self, answer: Callable[[Result], Any]) -> tuple[Any, ...] | None:
        """This policy's decisions as one tuple, for a policy set that finds it alone by
        its key: `(layout, missing, *segments)`, where `layout` is `(bag, name, slots)`
        and the segment of each slot is `(yes, no, every, junction, spec, keys, spec,
        keys)` (`LEAF_SEGMENT` items, None where a test is missing), `yes` and `no`
        being the answers given by `answer` to the policy's results. None unless the
        policy has no window and no other target, and each key value selects one
        rule without another target whose condition is None or at most
        `LEAF_TESTS` membership tests."""
        if self.windowed or self.rest is not None or self.key_bag is None or self.unkeyed:
            return None
        parts = [_layout(self.key_bag, self.key_name, self.key_slots), answer(self.outcomes[0])]
        for rules in self.key_entries:
            rule = rules[0] if len(rules) == 1 else None
            if rule is None or rule.rest is not None:
                return None
            if rule.tests is None and rule.condition is not None:
                return None
            tests = _ALWAYS if rule.tests is None else rule.tests
            if len(tests) > LEAF_SEGMENT - 2:
                return None
            padding = (None,) * (LEAF_SEGMENT - 2 - len(tests))
            parts += [answer(self.outcomes[rule.flag]), answer(self.outcomes[0]), *tests, *padding]
        return tuple(parts)


def _outcomes(node: CompiledPolicy, algorithm: str) -> tuple[Result | None, ...] | None:
    """The result for each set of effects seen; None when some reachable one is not ready."""
    codes = OUTCOMES.get(algorithm)
    if codes is None:
        return None
    effects = 0
    for rule in node.children:
        effects |= rule.flag
    outcomes = []
    for seen, code in enumerate(codes):
        reachable = seen & ~effects == 0
        if reachable and node.plain[code] is None:
            return None
        outcomes.append(node.plain[code] if reachable else None)
    return tuple(outcomes)


def _layout(bag: Any, name: str, slots: dict[str, int]) -> tuple[Any, str, dict[str, int]]:
    """`(bag, name, slots)`, one tuple for every policy with the same (shared) slots."""
    key = (name, id(slots))
    layout = _leaf_layouts.get(key)
    if layout is None or layout[2] is not slots or layout[0] is not bag:
        if len(_leaf_layouts) >= CACHE_SIZE:
            _leaf_layouts.clear()
        layout = _leaf_layouts[key] = (bag, name, slots)
    return layout


def _table(
    rules: Sequence[CompiledRule], keys: list[Any]
) -> tuple[dict[str, int], tuple[tuple[CompiledRule, ...], ...]]:
    """(slot of each string key value, the rules each slot selects in their original
    order, unkeyed rules included); the slots dict is shared by equal layouts."""
    positions: dict[str, list[int]] = {}
    unkeyed = [p for p, key in enumerate(keys) if key is None]
    for position, key in enumerate(keys):
        for value in key.values if key is not None else ():
            if value.__class__ is str:
                positions.setdefault(value, []).append(position)
    layout = tuple(sorted(positions))
    slots = shared(_layouts, layout, lambda: {value: slot for slot, value in enumerate(layout)})
    entries = tuple(
        tuple(rules[p] for p in sorted({*positions[value], *unkeyed})) for value in layout
    )
    return slots, entries
