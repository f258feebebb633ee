"""What every request leaves behind: its request id, its metrics, its log context.

`install_observation(app, metrics, store)` registers, before any other hook:

- a `before_request` that takes the caller's `X-Request-Id` (when well formed,
  `pbgm.ops.logs.request_id`) or makes one (32 hex digits: a random prefix per process
  and a counter, `_new_id`), puts it in the logging context so every
  log line of the request carries it, and notes the start time;
- an `after_request` that echoes `X-Request-Id`, counts the answer
  (`pbgm_http_requests_total`), observes its duration by route, method and status
  (`pbgm_http_request_duration_seconds`; the route is the URL rule such as
  `/api/v1/policies/<encoded_id>`, never the raw path, so ids do not multiply
  series; a path no route matches is `unmatched`), counts refused logins and sets
  the worker's revision gauge;
- a scrape hook that reads the repository revision into `pbgm_policy_revision`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g

from pbgm.api._http import current_request
from pbgm.api._metrics import Metrics
from pbgm.errors import PbgmError
from pbgm.ops.logs import HEADER, REQUEST_ID, request_id
from pbgm.store.base import Store

UNMATCHED = "unmatched"


def install_observation(app: Flask, metrics: Metrics, store: Store) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish(metrics))
    app.teardown_request(_forget)
    metrics.on_scrape(_revision_reader(metrics, store))


def _begin() -> None:
    incoming = current_request().environ.get(_HEADER_KEY)
    made = request_id(incoming) if incoming is not None else _new_id()
    here = g._get_current_object()  # one proxy lookup
    here.pbgm_request_id = made
    here.pbgm_started = time.perf_counter()
    here.pbgm_request_token = REQUEST_ID.set(made)


_HEADER_KEY = "HTTP_" + HEADER.upper().replace("-", "_")
_ids: tuple[str, Iterator[int]] | None = None


def _new_id() -> str:
    """A request id unique across processes without a system call per request: a random
    64-bit prefix drawn once per process (again in a forked child), then a counter; 32
    hex digits like `pbgm.ops.logs.request_id`'s. Ids name requests in logs, they guard
    nothing, so a guessable successor does no harm."""
    global _ids
    ids = _ids
    if ids is None:
        ids = _ids = (secrets.token_hex(8), itertools.count(1))
    return f"{ids[0]}{next(ids[1]):016x}"


def _forget_ids() -> None:
    global _ids
    _ids = None


os.register_at_fork(after_in_child=_forget_ids)


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return REQUEST_ID.get()


def _finish(metrics: Metrics) -> Any:
    def finish(response: Response) -> Response:
        req, here = current_request(), g._get_current_object()  # one lookup each
        status = str(response.status_code)
        endpoint = req.endpoint or "unknown"
        rule = req.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        metrics.labelled(metrics.requests, endpoint, status).inc()
        started = here.get("pbgm_started")
        if started is not None:
            elapsed = time.perf_counter() - started
            duration = metrics.labelled(metrics.request_duration, route, req.method, status)
            duration.observe(elapsed)
        if endpoint == "auth.token" and status == "401":
            metrics.authentication_failures.labels("invalid_client").inc()
        revisions = here.get("pbgm_revisions")
        if revisions is not None and revisions.repository != metrics.worker_revision_set:
            metrics.worker_revision.set(revisions.repository)
            metrics.worker_revision_set = revisions.repository
        made = here.get("pbgm_request_id")
        if made is not None:
            response.headers[HEADER] = made
        return response

    return finish


def _forget(_error: BaseException | None) -> None:
    token = g._get_current_object().pop("pbgm_request_token", None)
    if token is not None:
        REQUEST_ID.reset(token)


def _revision_reader(metrics: Metrics, store: Store) -> Any:
    def read() -> None:
        with contextlib.suppress(PbgmError):  # `/readyz` tells; the scrape still answers
            metrics.policy_revision.set(store.revision())

    return read
