"""The OpenAPI 3.1 document of the REST API, served at `/api/v1/openapi.json`.

Kept as code beside the endpoints; a test checks that its paths and methods are
exactly the routes of the app (`app.url_map`) and a contract test (schemathesis)
checks live answers against it. This module lists the endpoints, group by group; the
helpers and schemas they are spelt with are in `pbgm.api._openapi_schemas`.
"""

from __future__ import annotations

from typing import Any

from pbgm.api._openapi_devices import device_paths
from pbgm.api._openapi_devices import schemas as device_schemas
from pbgm.api._openapi_schemas import (
    B64,
    ENABLED,
    INT,
    JSON,
    NAME,
    PROTECTED_ERRORS,
    STRING,
    array,
    components,
    decision_answer,
    decision_request,
    json_response,
    obj,
    op,
    param,
    ref,
)


def _policy_paths() -> dict[str, Any]:
    fetch = (
        param("policy_id", "query", B64),
        param("policy_group", "query", NAME),
        param("asset_id", "query", B64),
        param("policy_type", "query", STRING),
    )
    listing = obj(
        ("revision", "changed", "policies"),
        revision={"type": "integer"},
        changed={"type": "boolean"},
        policies=array(ref("ServedPolicy")),
    )
    not_modified = {"description": "the client's copy is current (ETag)"}
    one_or_many = {
        "oneOf": [ref("ServedPolicy"), obj(("policies",), policies=array(ref("ServedPolicy")))]
    }
    return {
        "/api/v1/policy": {
            "get": op(
                "Fetch a published policy by base64 id and group, or by asset and type",
                {200: json_response(one_or_many), 304: not_modified},
                params=fetch,
            )
        },
        "/api/v1/policies": {
            "get": op(
                "The published policies the caller may read, and the repository revision",
                {200: json_response(listing), 304: not_modified},
                params=(
                    param("policy_group", "query", NAME),
                    param("policy_type", "query", STRING),
                    param("since_revision", "query", INT),
                ),
            )
        },
        "/api/v1/decisions": {
            "post": op(
                "Decide one request or a batch (pbgm JSON or the XACML 3.0 JSON Profile)",
                {200: json_response(decision_answer())},
                params=(param("policy_group", "query", NAME),),
                body=decision_request(),
            )
        },
        "/api/v1/flexoffers": {
            "post": op(
                "Validate a FlexOffer against its template policy and record its state",
                {201: json_response(ref("FlexOfferState"), "recorded: accepted or rejected")},
                params=(param("policy_id", "query", B64),),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 409),
            )
        },
        "/api/v1/flexoffers/{offer_id}": {
            "get": op(
                "A recorded FlexOffer with its schedules",
                {200: json_response(ref("FlexOfferState"))},
                params=(param("offer_id", "path", B64),),
            )
        },
        "/api/v1/flexoffers/{offer_id}/schedule": {
            "post": op(
                "Validate and record a schedule for a recorded FlexOffer",
                {201: json_response(ref("Schedule"), "recorded: accepted or rejected")},
                params=(param("offer_id", "path", B64),),
                body={"type": "object"},
            )
        },
    }


def _admin_policy_paths() -> dict[str, Any]:
    pid = (param("policy_id", "path", B64),)
    reason = param("reason", "query", {"type": "string", "maxLength": 2000})
    record = json_response(ref("PolicyRecord"))
    action = obj(version={"type": "integer", "minimum": 1}, reason=STRING)
    base = "/api/v1/admin/policies"
    return {
        base: {
            "get": op(
                "Every policy, any status",
                {200: json_response(obj(("policies",), policies=array(ref("PolicyRecord"))))},
                params=(
                    param("policy_group", "query", NAME),
                    param("policy_type", "query", STRING),
                    param("status", "query", {"enum": ["draft", "published", "retired"]}),
                ),
            ),
            "post": op(
                "Create a policy (a draft)",
                {201: json_response(ref("PolicyRecord"), "created")},
                params=(reason,),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        base + "/{policy_id}": {
            "get": op("A policy with its latest document", {200: record}, params=pid),
            "put": op(
                "A new version; `If-Match` names the version edited",
                {200: record},
                params=(*pid, reason, param("If-Match", "header", STRING, required=True)),
                body={"type": "object"},
                errors=(*PROTECTED_ERRORS, 412, 428),
            ),
        },
        base + "/{policy_id}/publish": {
            "post": op(
                "Publish a version (default: the latest)", {200: record}, params=pid, body=action
            )
        },
        base + "/{policy_id}/retire": {
            "post": op("Stop serving a policy", {200: record}, params=pid, body=obj(reason=STRING))
        },
        base + "/{policy_id}/versions": {
            "get": op(
                "The history",
                {200: json_response(obj(("versions",), versions=array({"type": "object"})))},
                params=pid,
            )
        },
        base + "/{policy_id}/rollback": {
            "post": op(
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
    name = (param("name", "path", NAME),)

    def listing(key: str, item: str) -> dict[str, Any]:
        return json_response(obj((key,), **{key: array(ref(item))}))

    return {
        f"{base}/users": {
            "get": op("Users", {200: listing("users", "User")}),
            "post": op(
                "Add a user",
                {201: json_response(ref("User"))},
                errors=(*PROTECTED_ERRORS, 409),
                body=obj(("name",), name=NAME, display_name=STRING),
            ),
        },
        f"{base}/users/{{name}}": {
            "patch": op(
                "Enable or disable a user",
                {200: json_response(ref("User"))},
                params=name,
                body=ENABLED,
            )
        },
        f"{base}/groups": {
            "get": op("Groups", {200: listing("groups", "Group")}),
            "post": op(
                "Add a group",
                {201: json_response(ref("Group"))},
                errors=(*PROTECTED_ERRORS, 409),
                body=obj(("name",), name=NAME, description=STRING),
            ),
        },
        f"{base}/groups/{{name}}": {
            "get": op("A group and its members", {200: json_response(ref("Group"))}, params=name)
        },
        f"{base}/groups/{{name}}/members": {
            "post": op(
                "Add a user to a group",
                {201: json_response({"type": "object"})},
                params=name,
                body=obj(("user",), user=NAME),
                errors=(*PROTECTED_ERRORS, 409),
            )
        },
        f"{base}/groups/{{name}}/members/{{user}}": {
            "delete": op(
                "Remove a user from a group", gone, params=(*name, param("user", "path", NAME))
            )
        },
        f"{base}/service-accounts": {
            "get": op(
                "Service accounts (never their secrets)",
                {200: listing("service_accounts", "ServiceAccount")},
            ),
            "post": op(
                "Add a service account; its secret is in this answer only",
                {201: json_response(ref("ServiceAccount"))},
                body=obj(
                    ("client_id", "scopes"),
                    client_id=NAME,
                    scopes=array(STRING),
                    description=STRING,
                ),
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        f"{base}/service-accounts/{{client_id}}": {
            "patch": op(
                "Enable or disable a service account",
                {200: json_response(ref("ServiceAccount"))},
                params=(param("client_id", "path", NAME),),
                body=ENABLED,
            ),
            "delete": op(
                "Delete a service account and its grants",
                gone,
                params=(param("client_id", "path", NAME),),
            ),
        },
        f"{base}/grants": {
            "get": op(
                "Grants",
                {200: listing("grants", "Grant")},
                params=(param("principal", "query", NAME), param("target", "query", NAME)),
            ),
            "post": op(
                "Grant read, write or admin on a policy or policy group",
                {201: json_response(ref("Grant"))},
                body=ref("Grant")
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
            "patch": op(
                "Enable or disable a grant",
                {200: json_response(ref("Grant"))},
                params=(param("grant_id", "path", {"type": "integer", "minimum": 0}),),
                body=ENABLED,
            ),
            "delete": op(
                "Delete a grant",
                gone,
                params=(param("grant_id", "path", {"type": "integer", "minimum": 0}),),
            ),
        },
        f"{base}/audit": {
            "get": op(
                "The audit log, newest first",
                {
                    200: json_response(
                        obj(
                            ("entries",),
                            entries=array({"type": "object"}),
                            next_before_id={"type": ["integer", "null"]},
                        )
                    )
                },
                params=(
                    param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    param("before_id", "query", {"type": "integer", "minimum": 1}),
                    param("object_id", "query", NAME),
                ),
            )
        },
    }


def _public_paths() -> dict[str, Any]:
    token = obj(
        ("access_token", "token_type", "expires_in"),
        access_token=STRING,
        token_type=STRING,
        expires_in={"type": "integer"},
        scope=STRING,
    )
    oauth_error = {
        "content": {JSON: {"schema": obj(("error",), error=STRING, error_description=STRING)}}
    }
    form = obj(
        ("grant_type",),
        grant_type={"const": "client_credentials"},
        scope=STRING,
        client_id=STRING,
        client_secret=STRING,
    )
    status = obj(("status",), status=STRING, revision={"type": "integer"})
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
                    "200": json_response(token),
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
            "get": op(
                "The public keys that verify tokens",
                {200: json_response(obj(("keys",), keys=array({"type": "object"})))},
                errors=(),
                public=True,
            )
        },
        "/healthz": {"get": op("Liveness", {200: json_response(status)}, errors=(), public=True)},
        "/readyz": {
            "get": op(
                "Readiness: the repository answers",
                {200: json_response(status)},
                errors=(503,),
                public=True,
            )
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics",
                {
                    200: {
                        "description": "Prometheus text",
                        "content": {"text/plain": {"schema": STRING}},
                    }
                },
                errors=(400, 401, 403, 429),
            )
        },
        "/api/v1/openapi.json": {
            "get": op(
                "This document", {200: json_response({"type": "object"})}, errors=(), public=True
            )
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
            "administration, 5G device management.",
        },
        "paths": {
            **_policy_paths(),
            **_admin_policy_paths(),
            **_principal_paths(),
            **_public_paths(),
            **device_paths(),
        },
        "components": _with_device_schemas(components()),
    }


def _with_device_schemas(found: dict[str, Any]) -> dict[str, Any]:
    found["schemas"].update(device_schemas())
    return found
