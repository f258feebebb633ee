"""Policies compiled on first use: what makes a large policy set quick to load and small.

Compiling a policy costs tens of microseconds; a set of 100,000 would take seconds to
load, and most of its policies may never be asked about. A `LazyPolicy` holds only
what the set needs to find it (its id, its target for the index, whether it has a
validity window or reads the time) and its *source*, an opaque value (for `pbgm.pdp`,
the policy's compact JSON text) that its `build` function turns into a compiled policy
the first time a decision reaches it. The source is then let go.

A `build` that raises gives a policy that is Indeterminate whenever its target matches
(`CompiledPolicy.broken`, code `invalid_policy`), as a policy that does not compile is.
Two threads that reach a lazy policy at once may both build it; either result is the
same policy, and one of them is kept.

The set (`pbgm.decision.compiled`) asks a lazy policy for nothing else until a decision
reaches it; it then builds the policy and, when the policy is one the set can answer
from a leaf, keeps that leaf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pbgm.decision.combining import Result
from pbgm.decision.evaluator import CompiledPolicy
from pbgm.decision.outputs import reason
from pbgm.model import Match, Request, Target

log = logging.getLogger("pbgm.decision")

Build = Callable[[Any], CompiledPolicy]


class LazyPolicy:
    """A policy as its source, compiled by `build(source)` when first needed."""

    __slots__ = (
        "_node",
        "build",
        "id",
        "source",
        "target_matches",
        "uses_current_time",
        "windowed",
    )

    def __init__(
        self,
        policy_id: str,
        target_matches: tuple[Match, ...],
        source: Any,
        build: Build,
        windowed: bool = True,
        uses_current_time: bool = True,
    ) -> None:
        """`windowed` and `uses_current_time` may over-state (the set then reads the
        clock when it need not), never under-state."""
        self.id, self.target_matches = policy_id, target_matches
        self.source, self.build = source, build
        self.windowed, self.uses_current_time = windowed, uses_current_time
        self._node: CompiledPolicy | None = None

    @property
    def compiled(self) -> bool:
        return self._node is not None

    def node(self) -> CompiledPolicy:
        """The compiled policy, built now if it was not yet."""
        node = self._node
        if node is None:
            source = self.source
            node = self._node = self._built(source) if source is not None else self._node
            self.source = None
        assert node is not None  # another thread built it between the two reads
        return node

    def _built(self, source: Any) -> CompiledPolicy:
        try:
            return self.build(source)
        except Exception as error:  # fail closed: Indeterminate where it applies
            log.warning("policy %r could not be built", self.id, exc_info=True)
            message = f"the policy cannot be read: {reason(error)}"
            return CompiledPolicy.broken(self.id, Target(self.target_matches), message)

    def applies(self, request: Request, now: datetime) -> bool:
        return self.node().applies(request, now)

    def evaluate(self, request: Request, now: datetime) -> Result:
        return self.node().evaluate(request, now)

    def evaluate_keyed(self, request: Request, now: datetime) -> Result:
        return self.node().evaluate_keyed(request, now)

    def __repr__(self) -> str:
        return f"LazyPolicy({self.id!r}, compiled={self.compiled})"
