"""Change notices: after each committed administrative change, one message on the bus.

Services running a `pbgm.loader.PolicyLoader` subscribe to the topic (default
`pbgm/changes`) and refresh the policies a notice names at once, instead of
waiting for their next poll. The payload (JSON, QoS 1, not retained):

```json
{"revision": 42, "previous": 41, "change": "publish_policy",
 "policy_ids": ["limits-bess-01"], "policy_groups": ["operational-limits"],
 "asset_ids": ["bess-01"]}
```

`previous` is the revision the request started from: a loader that has seen notices up
to a revision below it missed a change (a lost notice, a change made beside the API)
and refreshes everything it holds (`pbgm.loader`).

A change to users, groups, service accounts or grants names no policy (empty
lists): it may change who can read what, so a loader refreshes everything it
holds. A notice follows every write request (POST, PUT, PATCH, DELETE) that did
not fail and moved the repository revision, whatever surface took it: the REST
API's admin endpoints, the admin GUI's forms, any blueprint mounted later. The
revision is read before such a request and after it, in Flask's `after_request`,
when the store has already committed; the values are taken from the request and
response there, on the request's thread (the policy from a JSON answer, else from
the base64 `policy_id` of the URL), and only plain data reaches the bus (no Flask globals
on the bus's threads). A bus that fails is logged and counted; the change itself
stands, and loaders still poll.

Changes made beside the API (the CLI on the same database) send no notice; the
loaders' polling picks them up.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

from pbgm.access import decode_id
from pbgm.bus import Bus, check_topic
from pbgm.errors import MalformedIdError
from pbgm.store.base import Store

log = logging.getLogger("pbgm.api.notify")

DEFAULT_TOPIC = "pbgm/changes"
EXTENSION = "pbgm.notify"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ChangeNotifier:
    """Publishes one notice per committed admin change; counts what it sent and lost."""

    def __init__(self, bus: Bus, store: Store, *, topic: str = DEFAULT_TOPIC, qos: int = 1):
        self.bus = bus
        self.store = store
        self.topic = check_topic(topic)
        self.qos = qos
        self._lock = threading.Lock()
        self.published = 0
        self.failed = 0

    def before(self) -> None:
        """The `before_request` hook: the revision a write starts from."""
        if request.method in _WRITES:
            g.pbgm_revision_before = self.store.revision()

    def __call__(self, response: Response) -> Response:
        """The `after_request` hook: notice built here, on the request's thread."""
        before = g.pop("pbgm_revision_before", None)
        if before is None or response.status_code >= 400:
            return response
        try:
            revision = self.store.revision()
        except Exception as error:  # the answer stands; loaders fall back to polling
            log.warning("change notice not sent: the revision cannot be read: %s", error)
            return response
        if revision != before:
            self.notify(_notice_of(request.endpoint or "", response), revision, before)
        return response

    def notify(
        self, notice: dict[str, Any], revision: int | None = None, previous: int | None = None
    ) -> None:
        """Publish `notice` with the store's revision (and the one the change started
        from, when known); a bus failure never fails the change."""
        try:
            revision = self.store.revision() if revision is None else revision
            known = {"revision": revision} | ({} if previous is None else {"previous": previous})
            payload = json.dumps({**known, **notice}, sort_keys=True)
            self.bus.publish(self.topic, payload.encode(), qos=self.qos, retain=False)
        except Exception as error:  # the change is committed; loaders fall back to polling
            with self._lock:
                self.failed += 1
            log.warning("change notice not published on `%s`: %s", self.topic, error)
            return
        with self._lock:
            self.published += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"published": self.published, "failed": self.failed}


def install_change_notifications(
    app: Flask, bus: Bus, store: Store, *, topic: str = DEFAULT_TOPIC, qos: int = 1
) -> ChangeNotifier:
    """Publish a change notice on `topic` after each committed admin change of `app`.

    The notifier is kept in `app.extensions["pbgm.notify"]` (its `stats()` counts
    published and failed notices).
    """
    notifier = ChangeNotifier(bus, store, topic=topic, qos=qos)
    app.before_request(notifier.before)
    app.after_request(notifier)
    app.extensions[EXTENSION] = notifier
    return notifier


def _notice_of(endpoint: str, response: Response) -> dict[str, Any]:
    """What changed: the policy in the answer, or nothing named (a principal or grant)."""
    change = endpoint.rpartition(".")[2]
    data = response.get_json(silent=True) if response.is_json else None
    ids, groups, assets = [], [], []
    if isinstance(data, Mapping) and "policy_group" in data and "type" in data:
        ids = [data.get("id")]
        groups = [data.get("policy_group")]
        assets = [data.get("asset_id")]
    elif isinstance(encoded := (request.view_args or {}).get("policy_id"), str):
        ids = [_decoded(encoded)]
    return {
        "change": change,
        "policy_ids": [v for v in ids if isinstance(v, str)],
        "policy_groups": [v for v in groups if isinstance(v, str)],
        "asset_ids": [v for v in assets if isinstance(v, str)],
    }


def _decoded(encoded: str) -> str | None:
    """The policy id of a URL, which carries it in base64 (`pbgm.access.encode_id`)."""
    try:
        return decode_id(encoded)
    except MalformedIdError:
        return None
