"""Published policies as a decision point loads them: lazily, from their stored text.

A store hands a decision point its published policies as `PublishedPolicy` rows
(`pbgm.store.base`): the document as compact JSON text, its target as JSON text, and
two flags. `lazy_policies` turns each into a `pbgm.decision.LazyPolicy`, indexed by its
target at once (the target's few bytes decoded without the checks of `parse_target`,
the store holding validated documents) and parsed and compiled from its text when a
decision first reaches it. This is what makes 100,000 policies ready in about a second.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from pbgm.decision import INDEX_THRESHOLD, CompiledPolicySet, LazyPolicy, compile_policy
from pbgm.model import Match
from pbgm.policy.syntax import parse_policy, parse_target

log = logging.getLogger("pbgm.pdp")


def lazy_policies(
    published: Iterable[Any],  # `PublishedPolicy` rows: (id, group, version, text, target, ...)
    *,
    index_threshold: int = INDEX_THRESHOLD,
    specialise: bool = True,
) -> Iterator[LazyPolicy]:
    """The store's published policies as lazy policies: each indexed by its target now,
    parsed and compiled from its text when a decision first reaches it (one that does
    not parse is then Indeterminate wherever its target matches)."""

    def build(text: str) -> Any:
        node = compile_policy(
            parse_policy(json.loads(text)), index_threshold, specialise=specialise
        )
        for problem in CompiledPolicySet.problems_of([node]):
            log.warning("policy %r: %s", node.id, problem.message)
        return node

    for policy_id, _, _, text, target, windowed, timed in published:
        matches = _matches(target) if target else ()
        yield LazyPolicy(policy_id, matches, text, build, windowed, timed)


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # one value, no wrappers


def _matches(target: str) -> tuple[Match, ...]:
    """The matches of a stored target's JSON text, read as `parse_target` reads them,
    without its checks (the store holds validated documents) unless the text is odd."""
    data = _scan(target, 0)[0]
    if data.__class__ is not dict:
        return parse_target(data).matches
    matches = []
    for category in data if len(data) == 1 else sorted(data):
        attributes = data[category]
        if attributes.__class__ is not dict:
            return parse_target(data).matches
        for name in attributes if len(attributes) == 1 else sorted(attributes):
            raw = attributes[name]
            values = frozenset(raw) if raw.__class__ is list else frozenset((raw,))
            matches.append(Match(category, name, values))
    return tuple(matches)
