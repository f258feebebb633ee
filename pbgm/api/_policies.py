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

import json
import threading
from typing import Any

from flask import Blueprint, Response

from pbgm.access import AccessPoint, ServedPolicy, listing_etag
from pbgm.api._http import conditional_json, etag_of, integer, not_modified, principal, query
from pbgm.api._metrics import Metrics
from pbgm.errors import InvalidInputError, NotFoundError, PbgmError
from pbgm.model import POLICY_TYPES
from pbgm.store.base import Store

FETCH_PARAMETERS = ("policy_id", "policy_group", "asset_id", "policy_type")
MAX_NAME = 200
MAX_MEMO = 10_000


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


class FetchMemo:
    """The answers of `GET /policy`, memoised per revision, caller and query.

    What the Access Point served (after its grant check) cannot change while the
    revision stands: grants, principals and policies all bump it. Serving the
    same answer again saves recomputing the ETag and the JSON of the document.
    """

    def __init__(self, access: AccessPoint, reads: Store) -> None:
        self.access, self.reads = access, reads
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._answers: dict[tuple[Any, ...], tuple[bytes, str]] = {}

    def answer(self, values: dict[str, str]) -> tuple[bytes, str]:
        """The JSON body and ETag for the caller's query."""
        revision = self.reads.revision()
        key: tuple[Any, ...] = (principal().id, *sorted(values.items()))
        with self._lock:
            if revision != self._revision or len(self._answers) >= MAX_MEMO:
                self._revision, self._answers = revision, {}
            found = self._answers.get(key)
        if found is None:
            found = _fetched(self.access, values)
            with self._lock:
                if revision == self._revision:
                    self._answers[key] = found
        return found


def _fetched(access: AccessPoint, values: dict[str, str]) -> tuple[bytes, str]:
    given = set(values)
    if given == {"policy_id", "policy_group"}:
        served = access.fetch_by_policy_id(values["policy_id"], values["policy_group"], principal())
        return _json_bytes(served_data(served)), served.etag
    if given == {"asset_id", "policy_type"}:
        found = access.fetch_by_asset(values["asset_id"], values["policy_type"], principal())
        body = {"policies": [served_data(s) for s in found]}
        return _json_bytes(body), listing_etag(s.etag for s in found)
    raise InvalidInputError(
        "ask by `policy_id` and `policy_group`, or by `asset_id` and `policy_type`",
        code="invalid_parameters",
    )


def _json_bytes(data: Any) -> bytes:
    return _ENCODE_SORTED(data).encode()


_ENCODE_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
"""`json.dumps` with these options, without making an encoder per answer."""


def _conditional(body: bytes, etag: str) -> Response:
    if not_modified(etag):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _name(values: dict[str, str], name: str) -> str | None:
    value = values.get(name)
    if value is not None and not 0 < len(value) <= MAX_NAME:
        raise InvalidInputError(
            f"`{name}` must be 1 to {MAX_NAME} characters", code="invalid_parameter"
        )
    return value


def policies_blueprint(store: Store, access: AccessPoint, metrics: Metrics) -> Blueprint:
    """`store` is the request's view (`pbgm.api._cache.RevisionReads`)."""
    blueprint = Blueprint("policies", __name__, url_prefix="/api/v1")
    memo = FetchMemo(access, store)

    @blueprint.get("/policy", endpoint="get_policy")
    def get_policy() -> Response:
        try:
            response = _conditional(*memo.answer(query(FETCH_PARAMETERS)))
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
