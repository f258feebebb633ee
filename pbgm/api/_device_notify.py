"""The sink of CAMARA notifications: `POST /api/v1/device-notifications`.

The operator authenticates with the sink credential pbgm gave it for one session,
assignment or subscription (`Authorization: Bearer <credential>`), never with a pbgm
token: the enforcement hook runs `sink_authenticator` for this endpoint instead of
the JWT check, and pbgm's access policy then allows it only the scope
`devices:notify`, which opens this endpoint alone. The body is a CloudEvent
(`application/cloudevents+json` or `application/json`, at most 64 KiB), checked and
applied by `pbgm.devices.NotificationSink`; the answer is `204`, as CAMARA expects.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Blueprint, Response, g, request

from pbgm.api.errors import UnsupportedMediaTypeError
from pbgm.auth import Claims
from pbgm.devices import MAX_NOTIFICATION_BYTES, NotificationSink
from pbgm.errors import AuthenticationError, InvalidInputError
from pbgm.model import Clock

NOTIFY_SCOPE = "devices:notify"
ENDPOINT = "device_notifications.notify"
MEDIA_TYPES = ("application/cloudevents+json", "application/json")
_BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/=-]{1,512})")


def sink_authenticator(sink: NotificationSink, clock: Clock) -> Callable[[], Claims]:
    """The claims of a notification's sink credential (module docstring)."""

    def authenticate() -> Claims:
        values = request.headers.getlist("Authorization")
        if not values:
            raise AuthenticationError(
                "a notification carries `Authorization: Bearer <sink credential>`",
                code="token_missing",
            )
        match = _BEARER.fullmatch(values[0]) if len(values) == 1 else None
        if match is None:
            raise AuthenticationError(
                "a notification carries `Authorization: Bearer <sink credential>`",
                code="sink_credential_invalid",
            )
        resource = sink.authenticate(match.group(1))
        g.pbgm_sink_resource = resource
        now = clock()
        subject = f"network:{resource.kind}:{resource.remote_id}"
        return Claims(subject, (NOTIFY_SCOPE,), now, now, "sink", None, {})

    return authenticate


def notifications_blueprint(sink: NotificationSink, on_result: Callable[[str], None]) -> Blueprint:
    blueprint = Blueprint("device_notifications", __name__, url_prefix="/api/v1")

    @blueprint.post("/device-notifications", endpoint="notify")
    def notify() -> Response:
        if request.args:
            raise InvalidInputError(
                "a notification has no query parameters", code="unknown_parameter"
            )
        if request.mimetype not in MEDIA_TYPES:
            raise UnsupportedMediaTypeError(
                "send the notification as `application/cloudevents+json`",
                code="unsupported_media_type",
            )
        if (request.content_length or 0) > MAX_NOTIFICATION_BYTES:
            raise InvalidInputError(
                f"a notification is at most {MAX_NOTIFICATION_BYTES} bytes",
                code="request_too_large",
            )
        raw = request.stream.read(MAX_NOTIFICATION_BYTES + 1)
        try:
            summary = sink.accept(g.pbgm_sink_resource, raw)
        except Exception:
            on_result("refused")
            raise
        on_result("duplicate" if summary.get("duplicate") else "accepted")
        return Response(status=204)

    return blueprint
