"""Every answer of the API carries a request id (the caller's when well formed), every
log line written while serving it too, a 500's correlation id is that id, and request
durations are observed by route (the URL rule), method and status."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pbgm.api import create_app
from pbgm.ops.logs import configure_logging
from pbgm.store import MemoryStore


class BrokenStore(MemoryStore):
    """A repository whose revision read fails with an unexpected error (a fault to inject)."""

    def revision(self) -> int:
        raise RuntimeError("the disk is on fire")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, pbgm_level = root.level, logging.getLogger("pbgm").level
    configure_logging("info", "json", stream=stream)
    yield stream
    root.removeHandler(next(h for h in root.handlers if h.get_name() == "pbgm"))
    root.setLevel(level)
    logging.getLogger("pbgm").setLevel(pbgm_level)


def app_with(store: MemoryStore, tmp_path: Path):
    settings = {"database_url": "memory://", "keys_dir": str(tmp_path), "metrics_public": True}
    return create_app(settings, store=store).test_client()


@pytest.mark.parametrize(
    ("what", "sent", "kept"),
    [
        ("a well-formed id is kept", "req-42.a:b", True),
        ("no id: one is made", None, False),
        ("a malformed id is replaced", "no spaces or <html> please", False),
        ("an id too long is replaced", "x" * 129, False),
    ],
)
def test_the_request_id_is_taken_or_made_and_echoed(tmp_path, what, sent, kept):
    client = app_with(MemoryStore(), tmp_path)
    headers = {"X-Request-Id": sent} if sent is not None else {}
    answer = client.get("/healthz", headers=headers)
    echoed = answer.headers["X-Request-Id"]
    assert (echoed == sent) is kept
    assert (1 <= len(echoed) <= 128 and echoed.replace("-", "").isalnum()) or echoed == sent
    other = client.get("/healthz").headers["X-Request-Id"]
    assert other != echoed


def test_a_500_names_the_request_id_and_its_log_line_carries_it(tmp_path, json_log):
    client = app_with(BrokenStore(), tmp_path)
    answer = client.get("/readyz", headers={"X-Request-Id": "trace-500"})
    assert answer.status_code == 500
    assert answer.json["correlation_id"] == "trace-500"
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    logged = [line for line in lines if line["level"] == "ERROR"]
    assert logged and all(line["request_id"] == "trace-500" for line in logged)
    assert "the disk is on fire" not in json_log.getvalue()  # the message may quote secrets
    assert {"time", "pid", "logger", "message"} <= set(logged[0])


def test_durations_by_route_not_by_raw_path(tmp_path):
    client = app_with(MemoryStore(), tmp_path)
    for name in ("a", "b", "c"):
        client.get(f"/api/v1/flexoffers/{name}")  # 401 without a token: still observed
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "pbgm_http_request_duration_seconds_count"
    }
    routes = {route for route, _ in counts}
    assert not any(route.endswith(("/a", "/b", "/c")) for route in routes)
    user_routes = [k for k in counts if k[0].startswith("/api/v1/flexoffers/<")]
    assert user_routes and counts[user_routes[0]] == 3
    assert counts[("unmatched", "404")] == 1
