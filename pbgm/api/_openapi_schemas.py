"""The schemas of the OpenAPI document (`pbgm.api.openapi`) and the helpers that spell them.

The few helpers spell a schema, a parameter, a JSON response and an operation; the shared
schemas (`STRING`, `NAME`, `B64`), the named components the paths refer to with `ref`, and
the request and answer of the decision endpoint (the largest) are built here too. Kept
apart so that `pbgm.api.openapi` reads as the list of endpoints, and so that `op` fixes in
one place how every operation lists its error answers (RFC 9457 problem documents) and its
security.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
PROBLEM = "application/problem+json"
ID_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
PROTECTED_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429, 503)

_ERROR_TEXT = {
    400: "malformed input (bad JSON, bad base64 id, unknown parameter)",
    401: "no or invalid bearer token",
    403: "missing scope or grant",
    404: "not found, or not visible to the caller",
    405: "method not allowed",
    409: "already exists",
    412: "`If-Match` names a stale version",
    413: "body too large",
    415: "body not `application/json`",
    422: "the input breaks the rules; every problem listed",
    428: "`If-Match` is required",
    429: "rate limited (see `Retry-After`)",
    502: "the operator's network API failed or refused pbgm (device actions)",
    503: "the policy repository is unavailable, or the request ran past its time",
    504: "the operator's network API did not answer in time (device actions)",
}


def ref(name: str) -> dict[str, str]:
    """A reference to one of the named schemas of `components()`."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def param(
    name: str, where: str, schema: dict[str, Any], *, required: bool = False
) -> dict[str, Any]:
    """A parameter; one in the path is always required (OpenAPI demands it)."""
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


STRING = {"type": "string"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
B64 = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 700}
INT = {"type": "integer", "minimum": 0}
ENABLED = obj(("enabled",), enabled={"type": "boolean"})


def op(
    summary: str,
    ok: dict[int, dict[str, Any]],
    *,
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = PROTECTED_ERRORS,
    public: bool = False,
) -> dict[str, Any]:
    """An operation whose every error code answers a problem document; a public one asks no
    bearer token, so no endpoint can forget its errors or its security."""
    responses: dict[str, Any] = {str(code): response for code, response in ok.items()}
    for code in errors:
        responses[str(code)] = {
            "description": _ERROR_TEXT[code],
            "content": {PROBLEM: {"schema": ref("Problem")}},
        }
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    operation["security"] = [] if public else BEARER
    return operation


def _schemas() -> dict[str, Any]:
    problem = obj(
        ("type", "title", "status", "code", "detail"),
        type=STRING,
        title=STRING,
        status={"type": "integer"},
        code=STRING,
        detail=STRING,
        problems=array(obj(("path", "code", "message"), path=STRING, code=STRING, message=STRING)),
        correlation_id=STRING,
    )
    served = obj(
        ("id", "type", "policy_group", "version", "etag", "document"),
        id=STRING,
        type=STRING,
        policy_group=STRING,
        asset_id={"type": ["string", "null"]},
        version={"type": "integer"},
        etag=STRING,
        document={"type": "object"},
    )
    reason = obj(("path", "code", "message"), path=STRING, code=STRING, message=STRING)
    schedule = obj(
        ("offer_id", "number", "state", "reasons"),
        offer_id=STRING,
        number={"type": "integer"},
        state={"enum": ["accepted", "rejected"]},
        reasons=array(reason),
        schedule={"type": "object"},
    )
    return {
        "Problem": problem,
        "ServedPolicy": served,
        "Reason": reason,
        "Schedule": schedule,
        "FlexOfferState": obj(
            ("id", "policy_id", "state", "reasons", "schedules"),
            id=STRING,
            policy_id=STRING,
            state=STRING,
            reasons=array(reason),
            schedules=array(ref("Schedule")),
        ),
        "PolicyRecord": obj(
            ("id", "type", "policy_group", "version", "status", "document"),
            id=STRING,
            type=STRING,
            policy_group=STRING,
            version={"type": "integer"},
            status={"enum": ["draft", "published", "retired"]},
            published_version={"type": ["integer", "null"]},
            document={"type": "object"},
        ),
        "Decision": obj(
            ("decision", "status", "obligations", "advice", "policy_ids"),
            decision={"enum": ["Permit", "Deny", "NotApplicable", "Indeterminate"]},
            status=obj(("code",), code=STRING, message=STRING),
            obligations=array({"type": "object"}),
            advice=array({"type": "object"}),
            policy_ids=array(STRING),
            errors=array({"type": "object"}),
        ),
        "User": obj(
            ("name", "enabled"), name=STRING, display_name=STRING, enabled={"type": "boolean"}
        ),
        "Group": obj(("name",), name=STRING, description=STRING, members=array(STRING)),
        "ServiceAccount": obj(
            ("client_id", "scopes", "enabled"),
            client_id=STRING,
            scopes=array(STRING),
            enabled={"type": "boolean"},
            description=STRING,
            client_secret={"type": "string", "description": "only in the answer to the creation"},
        ),
        "Grant": obj(
            ("id", "principal_kind", "principal", "target_kind", "target", "permission"),
            id={"type": "integer"},
            principal_kind={"enum": ["user", "group", "service"]},
            principal=STRING,
            target_kind={"enum": ["policy", "policy_group"]},
            target=STRING,
            permission={"enum": ["read", "write", "admin"]},
            enabled={"type": "boolean"},
        ),
    }


def components() -> dict[str, Any]:
    """The `components` object: the named schemas and the two security schemes."""
    return {
        "schemas": _schemas(),
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "basic": {"type": "http", "scheme": "basic"},
        },
    }


def decision_request() -> dict[str, Any]:
    """The body of `POST /api/v1/decisions`: one pbgm request, a batch, or the XACML 3.0 JSON
    Profile's `Request`."""
    return {
        "oneOf": [
            obj(
                subject={"type": "object"},
                resource={"type": "object"},
                action={"type": "object"},
                environment={"type": "object"},
            ),
            obj(("requests",), requests=array({"type": "object"})),
            obj(("Request",), Request={"type": "object"}),
        ]
    }


def decision_answer() -> dict[str, Any]:
    """Its answer, in the same shape as the request: one decision, a batch, or XACML's."""
    return {
        "oneOf": [
            ref("Decision"),
            obj(("responses",), responses=array(ref("Decision"))),
            obj(("Response",), Response=array({"type": "object"})),
        ]
    }
