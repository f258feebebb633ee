"""The OpenAPI 3.1 document of the REST API, served at `/api/v1/openapi.json`.

Kept as code beside the endpoints; a test checks that its paths and methods are
exactly the routes of the app (`app.url_map`) and a contract test (schemathesis)
checks live answers against it.
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
    503: "the policy repository is unavailable",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _param(name: str, where: str, schema: dict[str, Any], *, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


STRING = {"type": "string"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
B64 = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 700}
INT = {"type": "integer", "minimum": 0}
ENABLED = _obj(("enabled",), enabled={"type": "boolean"})


def _op(
    summary: str,
    ok: dict[int, dict[str, Any]],
    *,
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = PROTECTED_ERRORS,
    public: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(code): response for code, response in ok.items()}
    for code in errors:
        responses[str(code)] = {
            "description": _ERROR_TEXT[code],
            "content": {PROBLEM: {"schema": _ref("Problem")}},
        }
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    operation["security"] = [] if public else BEARER
    return operation


def _schemas() -> dict[str, Any]:
    problem = _obj(
        ("type", "title", "status", "code", "detail"),
        type=STRING,
        title=STRING,
        status={"type": "integer"},
        code=STRING,
        detail=STRING,
        problems=_array(
            _obj(("path", "code", "message"), path=STRING, code=STRING, message=STRING)
        ),
        correlation_id=STRING,
    )
    served = _obj(
        ("id", "type", "policy_group", "version", "etag", "document"),
        id=STRING,
        type=STRING,
        policy_group=STRING,
        asset_id={"type": ["string", "null"]},
        version={"type": "integer"},
        etag=STRING,
        document={"type": "object"},
    )
    reason = _obj(("path", "code", "message"), path=STRING, code=STRING, message=STRING)
    schedule = _obj(
        ("offer_id", "number", "state", "reasons"),
        offer_id=STRING,
        number={"type": "integer"},
        state={"enum": ["accepted", "rejected"]},
        reasons=_array(reason),
        schedule={"type": "object"},
    )
    return {
        "Problem": problem,
        "ServedPolicy": served,
        "Reason": reason,
        "Schedule": schedule,
        "FlexOfferState": _obj(
            ("id", "policy_id", "state", "reasons", "schedules"),
            id=STRING,
            policy_id=STRING,
            state=STRING,
            reasons=_array(reason),
            schedules=_array(_ref("Schedule")),
        ),
        "PolicyRecord": _obj(
            ("id", "type", "policy_group", "version", "status", "document"),
            id=STRING,
            type=STRING,
            policy_group=STRING,
            version={"type": "integer"},
            status={"enum": ["draft", "published", "retired"]},
            published_version={"type": ["integer", "null"]},
            document={"type": "object"},
        ),
        "Decision": _obj(
            ("decision", "status", "obligations", "advice", "policy_ids"),
            decision={"enum": ["Permit", "Deny", "NotApplicable", "Indeterminate"]},
            status=_obj(("code",), code=STRING, message=STRING),
            obligations=_array({"type": "object"}),
            advice=_array({"type": "object"}),
            policy_ids=_array(STRING),
            errors=_array({"type": "object"}),
        ),
        "User": _obj(
            ("name", "enabled"), name=STRING, display_name=STRING, enabled={"type": "boolean"}
        ),
        "Group": _obj(("name",), name=STRING, description=STRING, members=_array(STRING)),
        "ServiceAccount": _obj(
            ("client_id", "scopes", "enabled"),
            client_id=STRING,
            scopes=_array(STRING),
            enabled={"type": "boolean"},
            description=STRING,
            client_secret={"type": "string", "description": "only in the answer to the creation"},
        ),
        "Grant": _obj(
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


def _policy_paths() -> dict[str, Any]:
    fetch = (
        _param("policy_id", "query", B64),
        _param("policy_group", "query", NAME),
        _param("asset_id", "query", B64),
        _param("policy_type", "query", STRING),
    )
    listing = _obj(
        ("revision", "changed", "policies"),
        revision={"type": "integer"},
        changed={"type": "boolean"},
        policies=_array(_ref("ServedPolicy")),
    )
    not_modified = {"description": "the client's copy is current (ETag)"}
    one_or_many = {
        "oneOf": [_ref("ServedPolicy"), _obj(("policies",), policies=_array(_ref("ServedPolicy")))]
    }
    decision_body = {
        "oneOf": [
            _obj(
                subject={"type": "object"},
                resource={"type": "object"},
                action={"type": "object"},
                environment={"type": "object"},
            ),
            _obj(("requests",), requests=_array({"type": "object"})),
            _obj(("Request",), Request={"type": "object"}),
        ]
    }
    decision_answer = {
        "oneOf": [
            _ref("Decision"),
            _obj(("responses",), responses=_array(_ref("Decision"))),
            _obj(("Response",), Response=_array({"type": "object"})),
        ]
    }
    return {
        "/api/v1/policy": {
            "get": _op(
                "Fetch a published policy by base64 id and group, or by asset and type",
                {200: _json(one_or_many), 304: not_modified},
                params=fetch,
            )
        },
        "/api/v1/policies": {
            "get": _op(
                "The published policies the caller may read, and the repository revision",
                {200: _json(listing), 304: not_modified},
                params=(
                    _param("policy_group", "query", NAME),
                    _param("policy_type", "query", STRING),
                    _param("since_revision", "query", INT),
                ),
            )
        },
        "/api/v1/decisions": {
            "post": _op(
                "Decide one request or a batch (pbgm JSON or the XACML 3.0 JSON Profile)",
                {200: _json(decision_answer)},
                params=(_param("policy_group", "query", NAME),),
                body=decision_body,
            )
        },
        "/api/v1/flexoffers": {
            "post": _op(
                "Validate a FlexOffer against its template policy and record its state",
                {201: _json(_ref("FlexOfferState"), "recorded: accepted or rejected")},
                params=(_param("policy_id", "query", B64),),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 409),
            )
        },
        "/api/v1/flexoffers/{offer_id}": {
            "get": _op(
                "A recorded FlexOffer with its schedules",
                {200: _json(_ref("FlexOfferState"))},
                params=(_param("offer_id", "path", B64),),
            )
        },
        "/api/v1/flexoffers/{offer_id}/schedule": {
            "post": _op(
                "Validate and record a schedule for a recorded FlexOffer",
                {201: _json(_ref("Schedule"), "recorded: accepted or rejected")},
                params=(_param("offer_id", "path", B64),),
                body={"type": "object"},
            )
        },
    }


def _admin_policy_paths() -> dict[str, Any]:
    pid = (_param("policy_id", "path", B64),)
    reason = _param("reason", "query", {"type": "string", "maxLength": 2000})
    record = _json(_ref("PolicyRecord"))
    action = _obj(version={"type": "integer", "minimum": 1}, reason=STRING)
    base = "/api/v1/admin/policies"
    return {
        base: {
            "get": _op(
                "Every policy, any status",
                {200: _json(_obj(("policies",), policies=_array(_ref("PolicyRecord"))))},
                params=(
                    _param("policy_group", "query", NAME),
                    _param("policy_type", "query", STRING),
                    _param("status", "query", {"enum": ["draft", "published", "retired"]}),
                ),
            ),
            "post": _op(
                "Create a policy (a draft)",
                {201: _json(_ref("PolicyRecord"), "created")},
                params=(reason,),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        base + "/{policy_id}": {
            "get": _op("A policy with its latest document", {200: record}, params=pid),
            "put": _op(
                "A new version; `If-Match` names the version edited",
                {200: record},
                params=(*pid, reason, _param("If-Match", "header", STRING, required=True)),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 412, 428),
            ),
        },
        base + "/{policy_id}/publish": {
            "post": _op(
                "Publish a version (default: the latest)", {200: record}, params=pid, body=action
            )
        },
        base + "/{policy_id}/retire": {
            "post": _op(
                "Stop serving a policy", {200: record}, params=pid, body=_obj(reason=STRING)
            )
        },
        base + "/{policy_id}/versions": {
            "get": _op(
                "The history",
                {200: _json(_obj(("versions",), versions=_array({"type": "object"})))},
                params=pid,
            )
        },
        base + "/{policy_id}/rollback": {
            "post": _op(
                "A new version equal to an older one",
                {200: record},
                params=pid,
                body={**action, "required": ["version"]},
                errors=(*PROTECTED_ERRORS, 412),
            )
        },
    }


def _principal_paths() -> dict[str, Any]:
    base = "/api/v1/admin"
    gone = {204: {"description": "done"}}
    name = (_param("name", "path", NAME),)
    listing = lambda key, item: _json(_obj((key,), **{key: _array(_ref(item))}))  # noqa: E731
    return {
        f"{base}/users": {
            "get": _op("Users", {200: listing("users", "User")}),
            "post": _op(
                "Add a user",
                {201: _json(_ref("User"))},
                errors=(*PROTECTED_ERRORS, 409),
                body=_obj(("name",), name=NAME, display_name=STRING),
            ),
        },
        f"{base}/users/{{name}}": {
            "patch": _op(
                "Enable or disable a user", {200: _json(_ref("User"))}, params=name, body=ENABLED
            )
        },
        f"{base}/groups": {
            "get": _op("Groups", {200: listing("groups", "Group")}),
            "post": _op(
                "Add a group",
                {201: _json(_ref("Group"))},
                errors=(*PROTECTED_ERRORS, 409),
                body=_obj(("name",), name=NAME, description=STRING),
            ),
        },
        f"{base}/groups/{{name}}": {
            "get": _op("A group and its members", {200: _json(_ref("Group"))}, params=name)
        },
        f"{base}/groups/{{name}}/members": {
            "post": _op(
                "Add a user to a group",
                {201: _json({"type": "object"})},
                params=name,
                body=_obj(("user",), user=NAME),
                errors=(*PROTECTED_ERRORS, 409),
            )
        },
        f"{base}/groups/{{name}}/members/{{user}}": {
            "delete": _op(
                "Remove a user from a group", gone, params=(*name, _param("user", "path", NAME))
            )
        },
        f"{base}/service-accounts": {
            "get": _op(
                "Service accounts (never their secrets)",
                {200: listing("service_accounts", "ServiceAccount")},
            ),
            "post": _op(
                "Add a service account; its secret is in this answer only",
                {201: _json(_ref("ServiceAccount"))},
                body=_obj(
                    ("client_id", "scopes"),
                    client_id=NAME,
                    scopes=_array(STRING),
                    description=STRING,
                ),
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        f"{base}/service-accounts/{{client_id}}": {
            "patch": _op(
                "Enable or disable a service account",
                {200: _json(_ref("ServiceAccount"))},
                params=(_param("client_id", "path", NAME),),
                body=ENABLED,
            ),
            "delete": _op(
                "Delete a service account and its grants",
                gone,
                params=(_param("client_id", "path", NAME),),
            ),
        },
        f"{base}/grants": {
            "get": _op(
                "Grants",
                {200: listing("grants", "Grant")},
                params=(_param("principal", "query", NAME), _param("target", "query", NAME)),
            ),
            "post": _op(
                "Grant read, write or admin on a policy or policy group",
                {201: _json(_ref("Grant"))},
                body=_ref("Grant")
                | {
                    "required": [
                        "principal_kind",
                        "principal",
                        "target_kind",
                        "target",
                        "permission",
                    ]
                },
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        f"{base}/grants/{{grant_id}}": {
            "patch": _op(
                "Enable or disable a grant",
                {200: _json(_ref("Grant"))},
                params=(_param("grant_id", "path", {"type": "integer", "minimum": 0}),),
                body=ENABLED,
            ),
            "delete": _op(
                "Delete a grant",
                gone,
                params=(_param("grant_id", "path", {"type": "integer", "minimum": 0}),),
            ),
        },
        f"{base}/audit": {
            "get": _op(
                "The audit log, newest first",
                {
                    200: _json(
                        _obj(
                            ("entries",),
                            entries=_array({"type": "object"}),
                            next_before_id={"type": ["integer", "null"]},
                        )
                    )
                },
                params=(
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _param("before_id", "query", {"type": "integer", "minimum": 1}),
                    _param("object_id", "query", NAME),
                ),
            )
        },
    }


def _public_paths() -> dict[str, Any]:
    token = _obj(
        ("access_token", "token_type", "expires_in"),
        access_token=STRING,
        token_type=STRING,
        expires_in={"type": "integer"},
        scope=STRING,
    )
    oauth_error = {
        "content": {JSON: {"schema": _obj(("error",), error=STRING, error_description=STRING)}}
    }
    form = _obj(
        ("grant_type",),
        grant_type={"const": "client_credentials"},
        scope=STRING,
        client_id=STRING,
        client_secret=STRING,
    )
    status = _obj(("status",), status=STRING, revision={"type": "integer"})
    return {
        "/api/v1/token": {
            "post": {
                "summary": "OAuth2 client credentials: a bearer token for a service account",
                "security": [{"basic": []}, {}],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": form}},
                },
                "responses": {
                    "200": _json(token),
                    **{
                        str(c): {"description": d, **oauth_error}
                        for c, d in (
                            (400, "invalid request"),
                            (401, "invalid client"),
                            (429, "too many failed logins"),
                        )
                    },
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": _op(
                "The public keys that verify tokens",
                {200: _json(_obj(("keys",), keys=_array({"type": "object"})))},
                errors=(),
                public=True,
            )
        },
        "/healthz": {"get": _op("Liveness", {200: _json(status)}, errors=(), public=True)},
        "/readyz": {
            "get": _op(
                "Readiness: the repository answers",
                {200: _json(status)},
                errors=(503,),
                public=True,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {
                    200: {
                        "description": "Prometheus text",
                        "content": {"text/plain": {"schema": STRING}},
                    }
                },
                errors=(400, 401, 403),
                public=True,
            )
        },
        "/api/v1/openapi.json": {
            "get": _op("This document", {200: _json({"type": "object"})}, errors=(), public=True)
        },
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (a new dict on every call)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pbgm REST API",
            "version": "1",
            "description": "Policy-Based Grid Management: policies, decisions, FlexOffers, "
            "administration.",
        },
        "paths": {
            **_policy_paths(),
            **_admin_policy_paths(),
            **_principal_paths(),
            **_public_paths(),
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
