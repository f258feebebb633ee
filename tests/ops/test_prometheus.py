"""`pbgm serve` with two workers, a loader and a control service, scraped by a real
Prometheus configured as `deploy/prometheus/prometheus.yml` is (OAuth2 client
credentials against pbgm's token endpoint for `/metrics`).

Counters never go backwards across scrapes, whichever worker answers; and every query of
every panel of `deploy/grafana/pbgm-dashboard.json` returns a series from that Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbgm.auth import hash_secret
from pbgm.store import ServiceAccount, open_store
from tests.api.conftest import SECRET
from tests.api.test_api_serve import LIMITS, Served, free_port
from tests.ops.prometheus import Prometheus, prometheus_binary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRAPE_S = 1
RATE_WINDOW = "1m"  # what `$__rate_interval` stands for in the dashboard's queries


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "pbgm-dashboard.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def scrape_config(api: Served, secret_file: Path, services: list[int]) -> dict[str, Any]:
    """The deploy configuration with this test's addresses, every 1 s."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": "1s"}
    api_job, services_job = config["scrape_configs"]
    api_job["scheme"] = "http"
    api_job["oauth2"]["client_id"] = "svc-prometheus"
    api_job["oauth2"]["client_secret_file"] = str(secret_file)
    api_job["oauth2"]["token_url"] = f"http://127.0.0.1:{api.port}/api/v1/token"
    api_job["static_configs"] = [{"targets": [f"127.0.0.1:{api.port}"]}]
    services_job["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in services]}]
    return config


class Process:
    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.path = log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def installation(sqlite_db: str, keys: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prometheus_binary()  # skip (or fail in CI) before starting anything
    store = open_store(sqlite_db)
    account = ServiceAccount("svc-prometheus", hash_secret(SECRET), ("metrics:read",))
    store.add_service_account(account, actor="test")
    store.close()
    secret = tmp_path / "service.secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    api = Served(sqlite_db, keys, "--workers", "2")
    started: list[Process] = []
    prometheus = None
    try:
        api.wait_ready()
        loader_port, voltage_port = free_port(), free_port()
        server = {
            "url": f"http://127.0.0.1:{api.port}",
            "client_id": "svc-voltage",
            "client_secret_file": str(secret),
        }
        loader = {
            "server": server,
            "refresh_interval_s": 1,
            "cache_dir": str(tmp_path / "loader-cache"),
            "policies": [
                {"name": "bess", "asset_id": "bess-01", "policy_type": "operational_limits",
                 "deliver_to": "log"},
            ],
        }  # fmt: skip
        (tmp_path / "loader.yaml").write_text(yaml.safe_dump(loader))
        voltage = yaml.safe_load((ROOT / "examples" / "scenario" / "voltage.yaml").read_text())
        voltage["bus"] = {"kind": "memory"}
        voltage["loader"]["server"] = server
        voltage["loader"]["cache_dir"] = str(tmp_path / "voltage-cache")
        voltage["loader"].pop("notifications")
        (tmp_path / "voltage.yaml").write_text(yaml.safe_dump(voltage))
        started.append(
            Process(
                [sys.executable, "-m", "pbgm", "loader", "run", "--config",
                 str(tmp_path / "loader.yaml"), "--metrics-port", str(loader_port)],
                tmp_path / "loader.log",
            )
        )  # fmt: skip
        started.append(
            Process(
                [sys.executable, "-m", "adapters.cli", "voltage", "--config",
                 str(tmp_path / "voltage.yaml"), "--metrics-port", str(voltage_port)],
                tmp_path / "voltage.log",
            )
        )  # fmt: skip
        config = scrape_config(api, secret, [loader_port, voltage_port])
        prometheus = Prometheus(tmp_path, free_port(), config)
        prometheus.wait_ready()
        yield {"api": api, "prometheus": prometheus, "processes": started}
    finally:
        if prometheus is not None:
            prometheus.stop()
        for process in started:
            process.stop()
        api.stop()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def traffic(api: Served) -> None:
    """Answers of every kind, spread over the workers."""
    for _ in range(40):
        assert api.call("GET", "/healthz").status == 200
    assert api.as_caller("svc-voltage", "GET", LIMITS).status == 200
    request = {"subject": {"id": "op-anna"}, "resource": {"asset_id": "bess-01"},
               "action": {"id": "write"}}  # fmt: skip
    assert api.as_caller("svc-voltage", "POST", "/api/v1/decisions", request).status == 200
    batch = {"requests": [request, request]}
    assert api.as_caller("svc-voltage", "POST", "/api/v1/decisions", batch).status == 200
    assert api.call("GET", LIMITS, Authorization="Bearer not-a-token").status == 401


def test_counters_add_up_and_every_dashboard_query_has_a_series(installation):
    api: Served = installation["api"]
    prometheus: Prometheus = installation["prometheus"]

    def all_up() -> bool:
        targets = prometheus.targets()
        return len(targets) == 3 and all(t["health"] == "up" for t in targets)

    try:
        wait_for(all_up, 20, "every target up")
    except AssertionError:
        details = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in prometheus.targets()]
        logs = {p.path.name: p.path.read_text()[-1500:] for p in installation["processes"]}
        raise AssertionError(f"targets: {details}\n{logs}\n{prometheus.output()}") from None
    started = time.time()
    for _ in range(4):  # traffic between scrapes, so that scrapes land on both workers
        traffic(api)
        time.sleep(SCRAPE_S * 1.2)
    scrapes = 'count_over_time(up{job="pbgm-api"}[1m])'
    wait_for(lambda: float(prometheus.query(scrapes)[0]["value"][1]) >= 6, 15, "six scrapes")

    counters = '{__name__=~"pbgm_.*_total|pbgm_.*_count|process_cpu_seconds_total"}'
    series = prometheus.query_range(counters, started - 5, time.time())
    assert len(series) > 10
    for one in series:
        values = [float(value) for _, value in one["values"]]
        assert values == sorted(values), f"{one['metric']} went backwards: {values}"
    healthz = 'sum(pbgm_http_requests_total{endpoint="ops.healthz"})'
    assert float(prometheus.query(healthz)[0]["value"][1]) == 160  # every worker's, added up
    workers = prometheus.query('count(pbgm_policy_revision_worker{job="pbgm-api"})')
    assert float(workers[0]["value"][1]) == 2

    empty = []
    for title, expression in dashboard_queries():
        query = expression.replace("$__rate_interval", RATE_WINDOW)
        if not prometheus.query(query):
            empty.append((title, query))
    assert empty == [], f"dashboard queries without a series: {empty}"


def test_the_deploy_files_name_what_pbgm_exports():
    """The dashboard's queries and the scrape config stay in step with the code: every
    metric name a query uses is one pbgm exports."""
    from pbgm.api._device_metrics import NAMES as DEVICE_GAUGES
    from pbgm.api._metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()} | set(DEVICE_GAUGES)
    exported |= {"pbgm_service_events", "pbgm_service_staleness_seconds", "pbgm_service_ready"}
    exported |= {"pbgm_service_policy_revision", "pbgm_service_policy_age_seconds"}
    exported |= {"process_resident_memory_bytes", "process_cpu_seconds"}
    for title, expression in dashboard_queries():
        import re

        names = set(re.findall(r"\b(pbgm_[a-z_]+|process_[a-z_]+)", expression))
        bases = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in names}
        assert bases <= exported, (title, bases - exported)
    assert os.path.exists(DEPLOY / "prometheus" / "prometheus.yml")
