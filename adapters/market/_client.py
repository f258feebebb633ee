"""The market protocol of docs/market.md, client side, over `adapters.rest`.

Every answer is checked before it is believed: a JSON object, the offer's own `id`, a
state of the FlexOffer specification, a schedule object where the state needs one.
Anything else is `peer_bad_response`. Submitting is idempotent (the offer `id` is the
idempotency key), so a submit is retried like a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from adapters.rest import RestClient, RestEndpoint, RestError
from pbgm.flexoffer import STATES

OFFERS = "/flexoffers"
TERMINAL = frozenset({"rejected", "executed", "invalid", "canceled"})
SCHEDULED = frozenset({"assigned", "executed"})
MAX_REASON = 500
SCHEDULE_STATUSES = ("ValidAndPublished", "InvalidSchedule")


@dataclass(frozen=True, slots=True)
class MarketState:
    """What the market says of one offer."""

    id: str
    state: str
    reason: str | None = None
    schedule: Mapping[str, Any] | None = None


class MarketClient:
    """One market endpoint (`RestEndpoint`), speaking docs/market.md."""

    def __init__(self, endpoint: RestEndpoint | RestClient, **client: Any) -> None:
        self.rest = endpoint if isinstance(endpoint, RestClient) else RestClient(endpoint, **client)
        self.name = self.rest.endpoint.name

    def close(self) -> None:
        self.rest.close()

    def submit(self, document: Mapping[str, Any]) -> MarketState:
        """Offer `document`; the market's first answer (`rejected` at once for an offer
        it refuses to read, with its reason)."""
        offer_id = str(document["id"])
        status, body, _ = self.rest.call(
            "POST", OFFERS, json_body=document, ok=(200, 201, 409, 422), idempotent=True
        )
        answer = self._object(body, "POST", OFFERS)
        if status == 422:
            return MarketState(offer_id, "rejected", _reason(answer, "the market refused it"))
        if status == 409:
            raise self._bad(f"POST {OFFERS}: offer id `{offer_id}` is taken by another offer")
        return self._state(answer, offer_id, f"POST {OFFERS}")

    def status(self, offer_id: str) -> MarketState:
        path = _path(offer_id)
        _, body, _ = self.rest.call("GET", path)
        return self._state(self._object(body, "GET", path), offer_id, f"GET {path}")

    def cancel(self, offer_id: str) -> MarketState:
        """Withdraw an offer not yet assigned; the market's state of it afterwards."""
        path = _path(offer_id)
        _, body, _ = self.rest.call("DELETE", path, ok=(200, 409))
        return self._state(self._object(body, "DELETE", path), offer_id, f"DELETE {path}")

    def report(self, offer_id: str, status: str, violations: list[dict[str, str]]) -> None:
        """Tell the market whether its schedule was taken (`SCHEDULE_STATUSES`)."""
        assert status in SCHEDULE_STATUSES
        path = f"{_path(offer_id)}/schedule-status"
        body = {"status": status, "violations": violations}
        self.rest.call("PUT", path, json_body=body, ok=(200, 204))

    def _object(self, body: bytes, method: str, path: str) -> Mapping[str, Any]:
        answer = self.rest.decode(body, path)
        if not isinstance(answer, Mapping):
            raise self._bad(f"{method} {path}: the answer is not a JSON object")
        return answer

    def _state(self, answer: Mapping[str, Any], offer_id: str, what: str) -> MarketState:
        if answer.get("id") != offer_id:
            raise self._bad(f"{what}: the answer is about another offer")
        state = answer.get("state")
        if not isinstance(state, str) or state.lower() not in STATES:
            raise self._bad(f"{what}: `state` is not a FlexOffer state")
        state = state.lower()
        schedule = answer.get("flexOfferSchedule")
        if state in SCHEDULED and not isinstance(schedule, Mapping):
            raise self._bad(f"{what}: an `{state}` offer without a `flexOfferSchedule` object")
        reason = answer.get("stateReason")
        return MarketState(
            offer_id,
            state,
            reason[:MAX_REASON] if isinstance(reason, str) else None,
            schedule if isinstance(schedule, Mapping) else None,
        )

    def _bad(self, message: str) -> RestError:
        return RestError(
            f"{self.name}: {message} (the peer's answer is malformed)",
            code="peer_bad_response",
            peer=self.name,
        )


def _path(offer_id: str) -> str:
    return f"{OFFERS}/{quote(offer_id, safe='')}"


def _reason(answer: Mapping[str, Any], default: str) -> str:
    for key in ("stateReason", "detail", "title"):
        value = answer.get(key)
        if isinstance(value, str) and value:
            return value[:MAX_REASON]
    return default
