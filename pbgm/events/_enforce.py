"""Deciding one event and discharging its obligations, deny-biased (`pbgm.pep`).

One `PolicyEnforcementPoint` serves every event: its decision point and its obligation
handlers read the event being enforced from a thread-local slot, so nothing is built
per event (no bound handlers, no enforcement point, no decider).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from pbgm.model import Decision, Obligation, Request, Response
from pbgm.pep import Enforcement, ObligationHandler, PolicyEnforcementPoint

from ._handlers import Counters, Event, EventHandler
from ._policies import PolicyCache

log = logging.getLogger(__name__)

_DECISION_NAMES = {
    Decision.DENY: "denied",
    Decision.NOT_APPLICABLE: "not_applicable",
    Decision.INDETERMINATE: "indeterminate",
}


class _Current(threading.local):
    """The event this thread is enforcing, and a trigger's actions for it."""

    event: Event | None = None
    actions: tuple[Obligation, ...] = ()


class _EventDecider:
    """Decides the current event with its policy group, remembers the response on it
    and, for a trigger, adds the trigger's actions to the obligations of a Permit."""

    def __init__(self, policies: PolicyCache, current: _Current) -> None:
        self._policies, self._current = policies, current

    def decide(self, request: Request, *, now: datetime | None = None) -> Response:
        event, actions = self._current.event, self._current.actions
        assert event is not None, "decisions are asked through `Enforcer.enforce`"
        response = self._policies.decider(event.policy_group).decide(request, now=now)
        if actions and response.decision is Decision.PERMIT:
            obligations = (*response.obligations, *actions)
            response = Response(
                response.decision, response.status, obligations, response.advice,
                response.policy_ids, response.errors,
            )  # fmt: skip
        event.response = response
        return response


def _on_current(handler: EventHandler, current: _Current) -> ObligationHandler:
    """`handler` as the enforcement point calls it: with the current event."""

    def call(obligation: Obligation, _request: Request) -> object:
        return handler(obligation, current.event)  # type: ignore[arg-type]

    return call


class Enforcer:
    """Runs the PEP for an event with the handlers bound to it, and counts the outcome:
    `<kind>_permitted`, `<kind>_denied`, `<kind>_not_applicable`, `<kind>_indeterminate`,
    or `obligations_failed` for a Permit whose obligations could not all be discharged."""

    def __init__(
        self, policies: PolicyCache, handlers: Mapping[str, EventHandler], counters: Counters
    ) -> None:
        self._counters = counters
        self._current = _Current()
        bound: dict[str, Callable[[Obligation, Request], object]] = {
            name: _on_current(handler, self._current) for name, handler in handlers.items()
        }
        self._pep = PolicyEnforcementPoint(_EventDecider(policies, self._current), bound)

    def enforce(
        self, event: Event, now: datetime, actions: tuple[Obligation, ...] = ()
    ) -> Enforcement:
        current = self._current
        outer = current.event, current.actions  # an obligation may enforce another event
        current.event, current.actions = event, actions
        try:
            enforcement = self._pep.check(event.request, now=now)
        finally:
            current.event, current.actions = outer
        self._count(event.kind, enforcement)
        return enforcement

    def _count(self, kind: str, enforcement: Enforcement) -> None:
        if enforcement.allowed:
            self._counters.bump(f"{kind}_permitted")
            return
        decision = enforcement.response.decision
        if decision is Decision.PERMIT:
            self._counters.bump("obligations_failed")
            log.warning("%s not enforced: %s", kind, enforcement.reason)
        else:
            self._counters.bump(f"{kind}_{_DECISION_NAMES[decision]}")
