"""The paho-mqtt 2.x specifics of `MqttBus`: the client, MQTT 5 properties both ways, and
the error records paho only logs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import MQTTException
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt._settings import MqttSettings
from pbgm.errors import InvalidInputError

log = logging.getLogger("adapters.mqtt")

_TO_PAHO = {
    "response_topic": "ResponseTopic",
    "correlation_data": "CorrelationData",
    "content_type": "ContentType",
    "message_expiry_interval": "MessageExpiryInterval",
    "user_properties": "UserProperty",
}
_FROM_PAHO = {paho: ours for ours, paho in _TO_PAHO.items()}
MAX_PAYLOAD_BYTES = 268435455
NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


def make_client(settings: MqttSettings) -> mqtt.Client:
    """The paho client for `settings` (TLS and credentials are set by `MqttBus`)."""
    v5 = settings.protocol == "5"
    return mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        clean_session=None if v5 else not settings.persistent_session,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        transport="tcp",
        reconnect_on_failure=True,
        manual_ack=settings.ack_after_handling,
    )


def no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Send small messages at once (no Nagle): set-points and answers are latency-bound."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        log.debug("TCP_NODELAY not available on this socket")


def publish_properties(ours: Mapping[str, Any]) -> Properties | None:
    """paho's PUBLISH properties for ours (checked by `pbgm.bus.check_properties`)."""
    if not ours:
        return None
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    try:
        for key, value in ours.items():
            setattr(properties, _TO_PAHO[key], list(value) if key == "user_properties" else value)
    except (TypeError, ValueError, MQTTException) as exc:
        raise InvalidInputError(
            f"invalid message property: {exc}", code="invalid_message_property"
        ) from None
    return properties


def close_abandoned_sockets(error: BaseException | None) -> None:
    """Close the socket of a failed attempt (paho leaves a TLS socket whose handshake
    failed to the garbage collector, which warns about it)."""
    traceback = error.__traceback__ if error is not None else None
    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        traceback = traceback.tb_next


def received_properties(properties: Properties | None) -> Mapping[str, Any]:
    """The MQTT 5 properties of a received message, by `pbgm.bus` names.

    paho keeps the properties a packet carried as attributes of their own; looking
    them up in the attribute dictionary saves an exception per absent property."""
    if properties is None:
        return NO_PROPERTIES
    present = vars(properties)
    out: dict[str, Any] = {}
    for paho_name, name in _FROM_PAHO.items():
        value = present.get(paho_name)
        if value is not None and paho_name == "UserProperty":
            value = tuple(tuple(pair) for pair in value)
        if value is not None:
            out[name] = value
    return MappingProxyType(out) if out else NO_PROPERTIES


class _SocketErrorCapture(logging.Handler):
    """Sees paho's error log records: keeps a socket error for classification and
    passes the text on to the `adapters.mqtt` logger."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_error = on_error

    def emit(self, record: logging.LogRecord) -> None:
        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, BaseException):
                self._on_error(arg)
        text = record.getMessage()
        level = logging.DEBUG if text.startswith("Client is not connected") else record.levelno
        log.log(level, "paho: %s", text)


class _WarningsLogger(logging.Logger):
    """Drops paho's debug records (four per message) at the cost of one comparison."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            super().log(level, msg, *args, **kwargs)


def capture_logger(client_id: str, on_error: Callable[[BaseException], None]) -> logging.Logger:
    """A private logger (not in the logging tree) for one client's paho records."""
    logger = _WarningsLogger(f"adapters.mqtt.paho.{client_id}", logging.WARNING)
    logger.addHandler(_SocketErrorCapture(on_error))
    logger.propagate = False
    return logger
