"""Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

`/healthz` answers while the process serves; `/readyz` also reads the repository
revision (`503 store_unavailable` when it cannot) and says whether this worker's
decision points have their first set of policies (`503 policies_loading` until
then); `/metrics` is Prometheus text
(for a token with the `metrics:read` scope; public with `PBGM_METRICS_PUBLIC=true`,
for a port only the scraper reaches);
`/api/v1/openapi.json` describes every endpoint.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response

from pbgm.api._decisions import DecisionService
from pbgm.api._http import json_response, query
from pbgm.api._metrics import Metrics
from pbgm.api.openapi import openapi_document
from pbgm.errors import PbgmError, StoreUnavailableError
from pbgm.store.base import Store

log = logging.getLogger(__name__)


def ops_blueprint(store: Store, metrics: Metrics, decisions: DecisionService) -> Blueprint:
    blueprint = Blueprint("ops", __name__)
    document = openapi_document()

    @blueprint.get("/healthz", endpoint="healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @blueprint.get("/readyz", endpoint="readyz")
    def readyz() -> Response:
        try:
            revision = store.revision()
        except PbgmError as error:
            log.warning("not ready: %s", error.code)
            raise StoreUnavailableError("the policy repository cannot be read") from None
        decisions.start()
        if not decisions.ready:
            raise StoreUnavailableError("the policies are still loading", code="policies_loading")
        body = {"status": "ready", "revision": revision}
        return json_response(body, headers={"Cache-Control": "no-store"})

    @blueprint.get("/metrics", endpoint="metrics")
    def metrics_text() -> Response:
        query(())
        return Response(metrics.render(), mimetype=None, content_type=metrics.content_type)

    @blueprint.get("/api/v1/openapi.json", endpoint="openapi")
    def openapi() -> Response:
        return json_response(document)

    return blueprint
