"""Data requests on the bus: a JWT, a data topic, an answer on a reply topic.

A request carries its token in the payload field `token` or the MQTT 5 user property
`authorization` (`Bearer <token>`), the data topic in `topic` (one topic name),
optionally `action` (`read`, the default, or `subscribe`) and `window_s` (seconds of
history, default the configured reply window), and `correlation_id`, echoed. The
answer goes to the MQTT 5 `response_topic` (with its `correlation_data`) or to the
payload's `reply_to`; either must lie under `reply_topic_prefix`, so a requester
cannot make the service publish anywhere else (a request without an acceptable reply
topic is counted as `no_reply_topic` and dropped).

Answers: `{"status": "ok", "topic", "data": [{"t", ...fields}]}` with the permit's
transforming obligations applied; `{"status": "denied", "error": {"code",
"message"}}` for a missing, bad or revoked token (`bad_token`) or a decision that is
not a discharged Permit; `{"status": "error", ...}` for a malformed request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pbgm.auth import Claims, TokenVerifier
from pbgm.bus import Bus, BusMessage, check_topic
from pbgm.errors import AuthenticationError, InvalidInputError, PbgmError
from pbgm.model import Request

from ._config import EventServiceConfig, SubscriptionConfig
from ._enforce import Enforcer
from ._handlers import Counters, Event, encode
from ._policies import PolicyCache
from ._samples import Sample, flatten

log = logging.getLogger(__name__)

DATA_REQUEST_FIELDS = frozenset({"token", "reply_to", "correlation_id"})
DATA_ACTIONS = ("read", "subscribe")


class DataRequests:
    """Answers data requests (see the module docstring)."""

    def __init__(
        self,
        config: EventServiceConfig,
        *,
        bus: Bus,
        verifier: TokenVerifier | None,
        policies: PolicyCache,
        enforcer: Enforcer,
        counters: Counters,
        environment: Callable[[datetime], dict[str, Any]],
        recent: Callable[[str, float], list[Sample]],
    ) -> None:
        self.config, self.bus, self.verifier = config, bus, verifier
        self.policies, self.enforcer, self.counters = policies, enforcer, counters
        self.environment, self.recent = environment, recent

    def handle(
        self,
        message: BusMessage,
        payload: dict[str, Any],
        subscription: SubscriptionConfig,
        now: datetime,
    ) -> None:
        reply_topic = self._reply_topic(message, payload)
        if reply_topic is None:
            self.counters.bump("no_reply_topic")
            return
        event = Event("data_request", message.topic, message, Request(), now.timestamp())
        event.policy_group, event.reply_topic = subscription.policy_group, reply_topic
        event.correlation_id = payload.get("correlation_id")
        try:
            claims = self._verify(payload.get("token") or _bearer(message.properties))
        except AuthenticationError as error:
            self.counters.bump("bad_token")
            self._reply(event, {"status": "denied", "error": _error(error)})
            return
        try:
            event.topic, event.subject = _data_topic(payload), claims.subject
            event.request = self._request(claims, payload, event.topic, now)
        except InvalidInputError as error:
            self.counters.bump("invalid_request")
            self._reply(event, {"status": "error", "error": _error(error)})
            return
        enforcement = self.enforcer.enforce(event, now)
        if not enforcement.allowed:
            refusal = {"code": "not_permitted", "message": enforcement.reason}
            self._reply(event, {"status": "denied", "error": refusal})
            return
        self._reply(event, self._answer(event, payload))

    def _reply_topic(self, message: BusMessage, payload: Mapping[str, Any]) -> str | None:
        topic = message.properties.get("response_topic") or payload.get("reply_to")
        if not isinstance(topic, str) or not topic.startswith(self.config.reply_topic_prefix):
            log.debug("data request on `%s` without an acceptable reply topic", message.topic)
            return None
        try:
            return check_topic(topic)
        except InvalidInputError:
            return None

    def _verify(self, token: Any) -> Claims:
        if self.verifier is None:
            raise AuthenticationError("no token verification is configured")
        if not isinstance(token, str) or not token:
            raise AuthenticationError("a data request needs a token", code="token_missing")
        bound = self.policies.bound(self.verifier.verify(token))
        if bound is None:
            raise AuthenticationError(
                "the token's account is disabled, deleted or renewed", code="token_revoked"
            )
        return bound

    def _request(
        self, claims: Claims, payload: Mapping[str, Any], topic: str, now: datetime
    ) -> Request:
        action = payload.get("action", "read")
        if action not in DATA_ACTIONS:
            raise InvalidInputError(
                f"`action` must be one of {', '.join(DATA_ACTIONS)}", code="invalid_request"
            )
        fields = {k: v for k, v in payload.items() if k not in DATA_REQUEST_FIELDS}
        resource = {**flatten(fields), "topic": topic, "kind": "data_request"}
        subject = {
            "id": claims.subject,
            "groups": self.policies.groups_of(claims.subject),
            "scopes": claims.scopes,
        }
        return Request(subject, resource, {"id": action}, self.environment(now))

    def _answer(self, event: Event, payload: Mapping[str, Any]) -> dict[str, Any]:
        window = payload.get("window_s", self.config.reply_window_s)
        if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
            window = self.config.reply_window_s
        samples = self.recent(event.topic, float(window))
        data = event.delivery.samples([(s.t, s.fields) for s in samples])
        self.counters.bump("data_replies")
        return {"status": "ok", "topic": event.delivery.topic(event.topic), "data": data}

    def _reply(self, event: Event, body: dict[str, Any]) -> None:
        if event.correlation_id is not None:
            body["correlation_id"] = event.correlation_id
        correlation = event.message.properties.get("correlation_data")
        properties = {"correlation_data": correlation} if correlation is not None else None
        assert event.reply_topic is not None
        self.bus.publish(event.reply_topic, encode(body), qos=1, properties=properties)


def _bearer(properties: Mapping[str, Any]) -> str | None:
    for name, value in properties.get("user_properties") or ():
        if str(name).lower() == "authorization":
            text = str(value)
            return text[7:].strip() if text.lower().startswith("bearer ") else text
    return None


def _data_topic(payload: Mapping[str, Any]) -> str:
    try:
        return check_topic(payload.get("topic"))
    except InvalidInputError:
        raise InvalidInputError(
            "`topic` must name one topic, without wildcards", code="invalid_request"
        ) from None


def _error(error: PbgmError) -> dict[str, str]:
    return {"code": error.code, "message": error.message}
