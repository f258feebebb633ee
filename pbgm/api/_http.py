"""Small HTTP helpers every blueprint shares: bodies, query parameters, ids, ETags.

Bodies are read through `pbgm.policy.documents.load_document`, the same gate as every
other untrusted input (size, depth, duplicate keys, encoding, NaN); query
parameters must be known and given once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Request, Response, current_app, g, jsonify, request

from pbgm.access import Principal, decode_id
from pbgm.api.errors import UnsupportedMediaTypeError
from pbgm.errors import InvalidInputError
from pbgm.policy import canonical_json, json_strings, load_document

JSON_TYPES = ("application/json", "application/xacml+json")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_PARAMETER_CHARS = 2048


def current_request() -> Request:
    """The request being served, looked up once: every attribute read through Flask's
    `request` proxy (or `g`) looks the request up again, and first fails the proxy's own
    attribute lookup, which makes and formats an `AttributeError` before the proxy's
    `__getattr__` runs (about 10 k instructions a read). Code that runs on every call
    reads the objects themselves (`g._get_current_object()`, this)."""
    return request._get_current_object()  # type: ignore[attr-defined,no-any-return]


_UNREAD = object()


def json_body() -> Any:
    """The request body as JSON data, read once per request."""
    here = g._get_current_object()
    body = here.get("pbgm_body", _UNREAD)
    if body is _UNREAD:
        req = current_request()
        if req.environ.get("CONTENT_TYPE") not in JSON_TYPES and req.mimetype not in JSON_TYPES:
            raise UnsupportedMediaTypeError(
                "send the body as `application/json`", code="unsupported_media_type"
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        limit = app.config["MAX_CONTENT_LENGTH"]
        data = req.get_data(cache=True)
        body = load_document(data, source="request body", max_bytes=limit)
        here.pbgm_body_escaped = escaped = b"\\" in data
        if escaped:
            _refuse_lone_surrogates(body)
        here.pbgm_body = body
    return body


def body_escaped() -> bool:
    """Whether the JSON body holds a backslash, so that its strings may hold characters
    it escapes (a NUL, a lone surrogate): without one, strict JSON cannot carry a
    control character or a surrogate, so checks of its strings can be skipped. The
    test is on bytes, whatever the encoding (a backslash is a 0x5C byte in every UTF)."""
    here = g._get_current_object()
    if "pbgm_body_escaped" not in here:
        json_body()
    return bool(here.pbgm_body_escaped)


def _refuse_lone_surrogates(value: Any) -> None:
    """JSON may escape half a UTF-16 pair (`\\ud800`); no database can store it."""
    if any(_SURROGATE.search(s) for s in json_strings(value)):
        raise InvalidInputError(
            "the body holds a lone UTF-16 surrogate (`\\ud800`-`\\udfff`)",
            code="invalid_encoding",
        )


def json_object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object", code="invalid_body")
    return body


def query(allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, each known and given at most once."""
    req = current_request()
    if not req.environ.get("QUERY_STRING"):
        return {}  # most calls have none: nothing to parse
    names = set(allowed)
    values: dict[str, str] = {}
    for name in req.args:
        if name not in names:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise InvalidInputError(f"unknown query parameter `{shown}`", code="unknown_parameter")
        given = req.args.getlist(name)
        if len(given) > 1:
            raise InvalidInputError(f"`{name}` given more than once", code="duplicate_parameter")
        if len(given[0]) > MAX_PARAMETER_CHARS:
            raise InvalidInputError(f"`{name}` is too long", code="invalid_parameter")
        refuse_control_characters(given[0], name)
        values[name] = given[0]
    return values


def refuse_control_characters(value: str, name: str) -> None:
    """Names and ids in URLs are printable text: a NUL or another control character is
    `400 invalid_parameter` (no repository stores a NUL)."""
    if not value.isprintable():
        raise InvalidInputError(f"`{name}` holds a control character", code="invalid_parameter")


def path_names(req: Request) -> None:
    """Refuse control characters in every part of the request's path."""
    for name, value in (req.view_args or {}).items():
        if isinstance(value, str):
            refuse_control_characters(value, name)


def integer(values: Mapping[str, str], name: str, *, low: int = 0, high: int = 2**62) -> int | None:
    """An optional whole-number parameter within [low, high]."""
    text = values.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInputError(
            f"`{name}` must be a whole number from {low} to {high}", code="invalid_parameter"
        )
    return int(text)


def path_id(encoded: str, what: str) -> str:
    """An id from the URL path, sent as URL-safe base64 like every id on the wire."""
    return decode_id(encoded, what=what)


def principal() -> Principal:
    """Who is calling: set by the enforcement hook before any handler runs."""
    who: Principal = g._get_current_object().pbgm_principal
    return who


def actor() -> str:
    return principal().id


def etag_of(data: Any) -> str:
    return '"' + hashlib.sha256(canonical_json(data).encode()).hexdigest()[:32] + '"'


def not_modified(etag: str) -> bool:
    """True when `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2)."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def conditional_json(data: Any, etag: str, *, status: int = 200) -> Response:
    """`data` with its ETag, or an empty `304` when the client already has it."""
    if not_modified(etag):
        response = Response(status=304)
    else:
        response = jsonify(data)
        response.status_code = status
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def json_response(
    data: Any, status: int = 200, *, headers: Mapping[str, str] | None = None
) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def plain_json_response(data: Any, *, headers: Mapping[str, str] | None = None) -> Response:
    """`json_response`, encoded straight (compact, keys in order) when the data is made
    of dicts, lists, strings, numbers, booleans and None only (as `pbgm.messages`
    writes); anything else goes through Flask's encoder as `json_response` does."""
    try:
        body = _COMPACT(data)
    except (TypeError, ValueError):
        return json_response(data, headers=headers)
    return Response(body, 200, headers, content_type="application/json")


_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
"""`json.dumps` with these options, without making an encoder per call."""
