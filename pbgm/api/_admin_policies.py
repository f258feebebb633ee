"""Policy administration over REST (the PAP), under `/api/v1/admin/policies`.

Every write is validated by `pbgm.pap` first (`422` lists every problem) and
audited by the store with the caller as actor. Policy ids in paths are URL-safe
base64. A policy answer carries `ETag: "v<version>"`; `PUT` must send it back in
`If-Match` (`428` without it, `412 version_conflict` when it is stale, and
nothing changes). `reason` (query parameter of `POST`/`PUT`, member of the action
bodies) goes to the audit log and the version history.

Policy ids are global: one id names one policy across every policy group. Creating
a policy whose id is taken is `409 already_exists` whichever group holds it, and
the answer names neither that group nor anything of the policy (only an
administrator of the group the new document names gets this far).

==========================================  ======================================
`GET    /policies?policy_group&policy_type   every policy, any status
        &status`
`POST   /policies?reason`                    create (a draft, version 1)
`GET    /policies/<id>`                      the record with its latest document
`PUT    /policies/<id>?reason`               a new version (`If-Match` required)
`POST   /policies/<id>/publish`              `{"version"?, "reason"?}`
`POST   /policies/<id>/retire`               `{"reason"?}`
`GET    /policies/<id>/versions`             the history
`POST   /policies/<id>/rollback`             `{"version", "reason"?, "publish"?}`
==========================================  ======================================
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, request, url_for

from pbgm.access import encode_id
from pbgm.api._fields import fields, optional_body
from pbgm.api._http import actor, json_body, json_response, path_id, query
from pbgm.api.errors import PreconditionRequiredError
from pbgm.errors import AlreadyExistsError, InvalidInputError
from pbgm.model import POLICY_TYPES, PolicyStatus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import PolicyRecord, PolicyVersion

_IF_MATCH = re.compile(r'(?:W/)?"v?(\d{1,9})"')
MAX_REASON = 2000


def record_data(record: PolicyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": record.type,
        "policy_group": record.policy_group,
        "asset_id": record.asset_id,
        "version": record.version,
        "status": str(record.status),
        "published_version": record.published_version,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "updated_by": record.updated_by,
        "document": record.document,
    }


def version_data(version: PolicyVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "action": version.action,
        "author": version.author,
        "created_at": version.created_at.isoformat(),
        "reason": version.reason,
        "document": version.document,
    }


def _record_response(record: PolicyRecord, status: int = 200) -> Response:
    headers = {"ETag": f'"v{record.version}"', "Cache-Control": "no-store"}
    if status == 201:
        headers["Location"] = url_for("admin.get_policy", policy_id=encode_id(record.id))
    return json_response(record_data(record), status, headers=headers)


def expected_version() -> int:
    """The version `If-Match` names; required on updates."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequiredError(
            'send the version you edit in `If-Match` (its ETag, e.g. `"v3"`)'
        )
    match = _IF_MATCH.fullmatch(header.strip())
    if match is None:
        raise InvalidInputError(
            '`If-Match` must be an ETag such as `"v3"`', code="invalid_if_match"
        )
    return int(match.group(1))


def _reason(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise InvalidInputError(f"`reason` must be text of at most {MAX_REASON} characters")
    return value


def add_policy_routes(blueprint: Blueprint, pap: PolicyAdministrationPoint) -> None:
    """Register the policy administration endpoints on the `admin` blueprint."""
    store = pap.store

    @blueprint.get("/policies", endpoint="list_policies")
    def list_policies() -> Response:
        values = query(["policy_group", "policy_type", "status"])
        status = values.get("status")
        if status is not None and status not in {str(s) for s in PolicyStatus}:
            raise InvalidInputError(f"unknown status `{status}`", code="invalid_parameter")
        if values.get("policy_type") not in (None, *POLICY_TYPES):
            raise InvalidInputError("unknown policy type", code="unknown_policy_type")
        records = store.list_policies(
            policy_group=values.get("policy_group"),
            policy_type=values.get("policy_type"),
            status=PolicyStatus(status) if status else None,
        )
        return json_response({"policies": [record_data(r) for r in records]})

    @blueprint.post("/policies", endpoint="create_policy")
    def create_policy() -> Response:
        reason = _reason(query(["reason"]).get("reason"))
        document = json_body()
        try:
            record = pap.create(document, actor=actor(), reason=reason)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"policy id `{document.get('id')}` is taken: policy ids are unique across "
                "every policy group"
            ) from None
        return _record_response(record, 201)

    @blueprint.get("/policies/<policy_id>", endpoint="get_policy")
    def get_policy(policy_id: str) -> Response:
        query(())
        return _record_response(store.get_policy(path_id(policy_id, "policy_id")))

    @blueprint.put("/policies/<policy_id>", endpoint="update_policy")
    def update_policy(policy_id: str) -> Response:
        reason = _reason(query(["reason"]).get("reason"))
        expected = expected_version()
        record = pap.update(
            path_id(policy_id, "policy_id"),
            json_body(),
            expected_version=expected,
            actor=actor(),
            reason=reason,
        )
        return _record_response(record)

    @blueprint.post("/policies/<policy_id>/publish", endpoint="publish_policy")
    def publish_policy(policy_id: str) -> Response:
        query(())
        body = fields(optional_body(), optional={"version": int, "reason": str})
        record = pap.publish(
            path_id(policy_id, "policy_id"),
            actor=actor(),
            version=body.get("version"),
            reason=_reason(body.get("reason")),
        )
        return _record_response(record)

    @blueprint.post("/policies/<policy_id>/retire", endpoint="retire_policy")
    def retire_policy(policy_id: str) -> Response:
        query(())
        body = fields(optional_body(), optional={"reason": str})
        record = pap.retire(
            path_id(policy_id, "policy_id"), actor=actor(), reason=_reason(body.get("reason"))
        )
        return _record_response(record)

    @blueprint.get("/policies/<policy_id>/versions", endpoint="policy_versions")
    def policy_versions(policy_id: str) -> Response:
        query(())
        versions = store.policy_versions(path_id(policy_id, "policy_id"))
        return json_response({"versions": [version_data(v) for v in versions]})

    @blueprint.post("/policies/<policy_id>/rollback", endpoint="rollback_policy")
    def rollback_policy(policy_id: str) -> Response:
        query(())
        body = fields(
            optional_body(), required={"version": int}, optional={"reason": str, "publish": bool}
        )
        record = pap.rollback(
            path_id(policy_id, "policy_id"),
            body["version"],
            actor=actor(),
            reason=_reason(body.get("reason")),
            publish=body.get("publish"),
        )
        return _record_response(record)
