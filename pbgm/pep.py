"""The Policy Enforcement Point: deny-biased.

An action runs only on Permit with every obligation discharged, which means a
handler is registered for it and returns without raising. Everything else
denies: NotApplicable (no policy applies, including an empty policy set),
Indeterminate, an obligation nobody handles, a failing handler, a decision
point that fails. On Deny the obligations of the Deny (audit, notify) are
still run, best-effort. Advice goes to advice handlers and never blocks.

Handlers receive the obligation (its attributes resolved by the PDP) and the
request it was decided for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from pbgm.errors import PermissionDeniedError
from pbgm.model import Advice, Decision, EvaluationError, Obligation, Request, Response, Status

log = logging.getLogger(__name__)

T = TypeVar("T")

ObligationHandler = Callable[[Obligation, Request], object]
AdviceHandler = Callable[[Advice, Request], object]


class Decider(Protocol):
    """What the PEP needs of a decision point (`pbgm.pdp.PolicyDecisionPoint`)."""

    def decide(self, request: Request, *, now: datetime | None = None) -> Response: ...


@dataclass(frozen=True, slots=True)
class Enforcement:
    """The outcome of `check`: whether the action may run, and why."""

    allowed: bool
    response: Response
    reason: str = ""
    discharged: tuple[str, ...] = ()


_REASONS = {
    Decision.DENY: "denied by policy",
    Decision.NOT_APPLICABLE: "no policy permits this request",
    Decision.INDETERMINATE: "the decision could not be made",
}


class PolicyEnforcementPoint:
    """Asks the PDP, discharges obligations, and lets the action through or not."""

    def __init__(
        self,
        pdp: Decider,
        handlers: Mapping[str, ObligationHandler] | None = None,
        *,
        advice_handlers: Mapping[str, AdviceHandler] | None = None,
    ) -> None:
        self._pdp = pdp
        self._handlers: dict[str, ObligationHandler] = dict(handlers or {})
        self._advice_handlers: dict[str, AdviceHandler] = dict(advice_handlers or {})

    def register(self, obligation_id: str, handler: ObligationHandler) -> None:
        self._handlers[obligation_id] = handler

    def register_advice(self, advice_id: str, handler: AdviceHandler) -> None:
        self._advice_handlers[advice_id] = handler

    def check(self, request: Request, *, now: datetime | None = None) -> Enforcement:
        """Decide and discharge; `allowed` only on Permit with every obligation done."""
        response = self._decide(request, now)
        self._give_advice(response, request)
        if response.decision is Decision.PERMIT:
            return self._discharge(response, request)
        if response.decision is Decision.DENY:
            self._run_best_effort(response, request)
        return Enforcement(False, response, _reason(response))

    def enforce(
        self, request: Request, action: Callable[[], T], *, now: datetime | None = None
    ) -> T:
        """Run `action` if allowed, else raise `PermissionDeniedError` carrying
        `.response` and `.enforcement`."""
        enforcement = self.check(request, now=now)
        if not enforcement.allowed:
            error = PermissionDeniedError(
                enforcement.reason, decision=enforcement.response.decision.value
            )
            error.response = enforcement.response  # type: ignore[attr-defined]
            error.enforcement = enforcement  # type: ignore[attr-defined]
            raise error
        return action()

    def _decide(self, request: Request, now: datetime | None) -> Response:
        try:
            return self._pdp.decide(request, now=now)
        except Exception:
            log.exception("the decision point failed; denying")
            error = EvaluationError("processing_error", "the decision point failed")
            status = Status("processing-error", error.message)
            return Response(Decision.INDETERMINATE, status, errors=(error,))

    def _discharge(self, response: Response, request: Request) -> Enforcement:
        unknown = [o.id for o in response.obligations if o.id not in self._handlers]
        if unknown:
            return Enforcement(False, response, f"no handler for obligation `{unknown[0]}`")
        done: list[str] = []
        for obligation in response.obligations:
            try:
                self._handlers[obligation.id](obligation, request)
            except Exception:
                log.warning("obligation %r failed; denying", obligation.id, exc_info=True)
                reason = f"obligation `{obligation.id}` could not be discharged"
                return Enforcement(False, response, reason, tuple(done))
            done.append(obligation.id)
        return Enforcement(True, response, "", tuple(done))

    def _run_best_effort(self, response: Response, request: Request) -> None:
        for obligation in response.obligations:
            handler = self._handlers.get(obligation.id)
            if handler is None:
                log.warning("no handler for obligation %r of a deny", obligation.id)
                continue
            try:
                handler(obligation, request)
            except Exception:
                log.warning("obligation %r of a deny failed", obligation.id, exc_info=True)

    def _give_advice(self, response: Response, request: Request) -> None:
        for advice in response.advice:
            handler = self._advice_handlers.get(advice.id)
            if handler is None:
                continue
            try:
                handler(advice, request)
            except Exception:
                log.warning("advice handler %r failed", advice.id, exc_info=True)


def _reason(response: Response) -> str:
    reason = _REASONS.get(response.decision, "denied")
    if response.decision is Decision.INDETERMINATE and response.status.message:
        return f"{reason}: {response.status.message}"
    return reason
