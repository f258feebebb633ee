"""Services fetch the policies they may read: `GET /api/v1/policy` and `GET /api/v1/policies`.

- `GET /policy?policy_id=<base64>&policy_group=<group>`: one published policy;
  `GET /policy?asset_id=<base64>&policy_type=<type>`: the asset's published
  policies of that type (`{"policies": [...]}`). A malformed id is `400
  malformed_id`, an id of another group or type `400 id_type_mismatch` (only to
  a caller who may read it); not permitted and not found are the same `404`.
- `GET /policies?policy_group=&policy_type=&since_revision=`: every readable
  published policy and the repository `revision`. A loader that sends the
  revision it holds gets `{"changed": false, "policies": []}` while nothing
  changed: one cheap query instead of a download.

Both answer with an `ETag`; `If-None-Match` with it gives `304`. A served
policy reads `{"id", "type", "policy_group", "asset_id", "version", "etag",
"document"}`, the document being the published `pbgm/v1` JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from pbgm.access import AccessPoint, ServedPolicy
from pbgm.api._http import conditional_json, etag_of, integer, principal, query
from pbgm.api._metrics import Metrics
from pbgm.errors import InvalidInputError, NotFoundError, PbgmError
from pbgm.model import POLICY_TYPES
from pbgm.store.base import Store

FETCH_PARAMETERS = ("policy_id", "policy_group", "asset_id", "policy_type")
MAX_NAME = 200


def served_data(served: ServedPolicy) -> dict[str, Any]:
    return {
        "id": served.id,
        "type": served.type,
        "policy_group": served.policy_group,
        "asset_id": served.asset_id,
        "version": served.version,
        "etag": served.etag,
        "document": served.document,
    }


def _fetch(access: AccessPoint, values: dict[str, str]) -> Response:
    given = set(values)
    if given == {"policy_id", "policy_group"}:
        served = access.fetch_by_policy_id(values["policy_id"], values["policy_group"], principal())
        return conditional_json(served_data(served), served.etag)
    if given == {"asset_id", "policy_type"}:
        found = access.fetch_by_asset(values["asset_id"], values["policy_type"], principal())
        return conditional_json(
            {"policies": [served_data(s) for s in found]}, etag_of([s.etag for s in found])
        )
    raise InvalidInputError(
        "ask by `policy_id` and `policy_group`, or by `asset_id` and `policy_type`",
        code="invalid_parameters",
    )


def _name(values: dict[str, str], name: str) -> str | None:
    value = values.get(name)
    if value is not None and not 0 < len(value) <= MAX_NAME:
        raise InvalidInputError(
            f"`{name}` must be 1 to {MAX_NAME} characters", code="invalid_parameter"
        )
    return value


def policies_blueprint(store: Store, access: AccessPoint, metrics: Metrics) -> Blueprint:
    blueprint = Blueprint("policies", __name__, url_prefix="/api/v1")

    @blueprint.get("/policy", endpoint="get_policy")
    def get_policy() -> Response:
        try:
            response = _fetch(access, query(FETCH_PARAMETERS))
        except NotFoundError:
            metrics.policy_fetches.labels("not_found").inc()
            raise
        except PbgmError:
            metrics.policy_fetches.labels("bad_request").inc()
            raise
        metrics.policy_fetches.labels(
            "not_modified" if response.status_code == 304 else "served"
        ).inc()
        return response

    @blueprint.get("/policies", endpoint="list_policies")
    def list_policies() -> Response:
        values = query(["policy_group", "policy_type", "since_revision"])
        group, policy_type = _name(values, "policy_group"), values.get("policy_type")
        if policy_type is not None and policy_type not in POLICY_TYPES:
            raise InvalidInputError(
                f"unknown policy type `{policy_type}`", code="unknown_policy_type"
            )
        since = integer(values, "since_revision")
        revision = store.revision()  # read first: a change made meanwhile shows as newer
        if since is not None and since == revision:
            body: dict[str, Any] = {"revision": revision, "changed": False, "policies": []}
        else:
            readable = access.readable_policies(principal(), group, policy_type)
            body = {
                "revision": revision,
                "changed": True,
                "policies": [served_data(s) for s in readable],
            }
        return conditional_json(body, etag_of(body))

    return blueprint
