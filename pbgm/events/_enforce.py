"""Deciding one event and discharging its obligations, deny-biased (`pbgm.pep`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import datetime

from pbgm.model import Decision, Obligation, Request, Response
from pbgm.pep import Decider, Enforcement, PolicyEnforcementPoint

from ._handlers import Counters, Event, EventHandler
from ._policies import PolicyCache

log = logging.getLogger(__name__)

_DECISION_NAMES = {
    Decision.DENY: "denied",
    Decision.NOT_APPLICABLE: "not_applicable",
    Decision.INDETERMINATE: "indeterminate",
}


class _EventDecider:
    """Decides for one event: remembers the response on it and, for a trigger,
    adds the trigger's actions to the obligations of a Permit."""

    def __init__(self, decider: Decider, event: Event, actions: tuple[Obligation, ...]) -> None:
        self._decider, self._event, self._actions = decider, event, actions

    def decide(self, request: Request, *, now: datetime | None = None) -> Response:
        response = self._decider.decide(request, now=now)
        if self._actions and response.decision is Decision.PERMIT:
            obligations = (*response.obligations, *self._actions)
            response = Response(
                response.decision, response.status, obligations, response.advice,
                response.policy_ids, response.errors,
            )  # fmt: skip
        self._event.response = response
        return response


def _call(handler: EventHandler, event: Event, obligation: Obligation, _request: Request) -> None:
    handler(obligation, event)


class Enforcer:
    """Runs the PEP for an event with the handlers bound to it, and counts the outcome:
    `<kind>_permitted`, `<kind>_denied`, `<kind>_not_applicable`, `<kind>_indeterminate`,
    or `obligations_failed` for a Permit whose obligations could not all be discharged."""

    def __init__(
        self, policies: PolicyCache, handlers: Mapping[str, EventHandler], counters: Counters
    ) -> None:
        self._policies, self._handlers, self._counters = policies, dict(handlers), counters

    def enforce(
        self, event: Event, now: datetime, actions: tuple[Obligation, ...] = ()
    ) -> Enforcement:
        decider = _EventDecider(self._policies.decider(event.policy_group), event, actions)
        bound = {
            name: functools.partial(_call, handler, event)
            for name, handler in self._handlers.items()
        }
        enforcement = PolicyEnforcementPoint(decider, bound).check(event.request, now=now)
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
