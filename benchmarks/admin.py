"""The admin GUI's pages with 10,000 policies in PostgreSQL, through gunicorn, beside
the same pages with 10 policies and beside the REST policy fetch.

Two repositories in fresh PostgreSQL databases (10 and 10,000 `operational_limits`
policies in 20 groups; one policy has two versions for the diff), each served by
`pbgm serve` (gunicorn, 2 sync workers). A client signs in to the GUI over HTTP
(cookies, CSRF token) and asks, one request at a time, `REQUESTS` times each:

- `list`: `/admin/policies` (page 1, 50 rows, server-side count);
- `list, deep page`: the last page of the list;
- `list, filtered`: a search and a group filter;
- `list, text search`: words of a description, searched in every policy's document
  (`PolicyQuery.text`: the id, the asset id, the document's JSON text);
- `policy page`: an operational-limits policy with its SVG chart and history;
- `diff page`: two versions side by side;
- `REST policy fetch`: `GET /api/v1/policy` by base64 id with a bearer token.

Target: each GUI page under 100 ms p95 with 10,000 policies, and the list as fast
with 10,000 as with 10 (the ratio is reported).
Run: `.venv/bin/python -m benchmarks.admin` (needs PostgreSQL, default
`postgresql://postgres@127.0.0.1:5432/test`, or `PBGM_BENCH_POSTGRES_URL`);
results go to `benchmarks/results/admin.json`.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pbgm.access import encode_id
from pbgm.auth import KeyRing, hash_secret
from pbgm.model import Permission, PolicyGroup, PolicyStatus
from pbgm.store import Grant, ServiceAccount, User
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "admin.json"
SERVER_URL = os.environ.get("PBGM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SIZES = (10, 10_000)
GROUPS = 20
REQUESTS = 200
WARMUP = 20
PASSWORD = "bench-password-123"
SECRET = "bench-secret"
TARGET_MS = 100.0


def document(i: int, v_max: float = 1.1) -> dict[str, Any]:
    return {
        "format": "pbgm/v1",
        "id": f"limits-{i:05d}",
        "type": "operational_limits",
        "policy_group": f"grid-{i % GROUPS:02d}",
        "asset_id": f"asset-{i:05d}",
        "description": f"limits of asset {i}",
        "rules": [{"id": "read", "effect": "Permit", "target": {"action": {"id": "read"}}}],
        "content": {
            "voltage": {"v_nominal_v": 230, "v_min_pu": 0.9, "v_max_pu": v_max},
            "power": {"p_min_kw": -100, "p_max_kw": 100, "q_min_kvar": -50, "q_max_kvar": 50},
        },
    }


def fill(url: str, size: int) -> None:
    """`size` published policies, an admin user, a REST caller; one policy with two versions."""
    upgrade(url)
    store = SqlStore(url)
    try:
        with store.atomic() as view:
            for group in ("*", *(f"grid-{g:02d}" for g in range(GROUPS))):
                view.put_policy_group(PolicyGroup(group), actor="bench")
            for i in range(size):
                view.create_policy(document(i), actor="bench")
                view.set_policy_status(f"limits-{i:05d}", PolicyStatus.PUBLISHED, actor="bench")
            view.update_policy("limits-00001", document(1, 1.08), expected_version=1, actor="bench")
            view.add_user(User("bench", password_hash=hash_secret(PASSWORD)), actor="bench")
            view.add_grant(Grant("user", "bench", "policy_group", "*", Permission.ADMIN), actor="b")
            account = ServiceAccount("svc-bench", hash_secret(SECRET), ("policies:read",))
            view.add_service_account(account, actor="bench")
            grant = Grant("service", "svc-bench", "policy_group", "grid-01", Permission.READ)
            view.add_grant(grant, actor="bench")
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(url: str, keys: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PBGM_DATABASE_URL": url, "PBGM_KEYS_DIR": str(keys)}
    command = [str(Path(sys.executable).parent / "pbgm"), "serve", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("pbgm serve did not start")


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> bytes:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        with self.opener.open(request, timeout=30) as reply:
            return reply.read()

    def sign_in(self) -> None:
        page = self.get("/admin/sign-in").decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = {"csrf_token": token.group(1), "name": "bench", "password": PASSWORD}
        with self.opener.open(self.base + "/admin/sign-in", urllib.parse.urlencode(form).encode()):
            pass

    def bearer(self) -> str:
        form = urllib.parse.urlencode({"grant_type": "client_credentials"}).encode()
        request = urllib.request.Request(self.base + "/api/v1/token", form)
        request.add_unredirected_header("Authorization", "Basic " + _basic())
        with urllib.request.urlopen(request) as reply:
            return str(json.load(reply)["access_token"])


def _basic() -> str:
    import base64

    return base64.b64encode(f"svc-bench:{SECRET}".encode()).decode()


def timed(client: Client, path: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    for _ in range(WARMUP):
        client.get(path, headers)
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(path, headers)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}


def measure(size: int, base: str) -> dict[str, dict[str, float]]:
    client = Client(base)
    client.sign_in()
    token = client.bearer()
    last_page = max(1, -(-size // 50))
    policy = "/admin/policies/" + encode_id("limits-00001")
    rest = f"/api/v1/policy?policy_id={encode_id('limits-00001')}&policy_group=grid-01"
    return {
        "list": timed(client, "/admin/policies"),
        "list, deep page": timed(client, f"/admin/policies?page={last_page}"),
        "list, filtered": timed(client, "/admin/policies?q=0001&group=grid-01"),
        "list, text search": timed(client, "/admin/policies?q=of+asset+4321"),
        "policy page": timed(client, policy),
        "diff page": timed(client, policy + "/diff?from=1&to=2"),
        "REST policy fetch": timed(client, rest, {"Authorization": f"Bearer {token}"}),
    }


def run_size(size: int, admin_url: str) -> dict[str, dict[str, float]]:
    name = f"pbgm_bench_admin_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        started = time.perf_counter()
        fill(url, size)
        print(f"{size:>6} policies stored in {time.perf_counter() - started:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as keys:
            KeyRing(keys).generate()
            port = free_port()
            server = start(url, Path(keys), port)
            try:
                return measure(size, f"http://127.0.0.1:{port}")
            finally:
                server.terminate()
                server.wait(timeout=10)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            connection.execute(drop.format(sql.Identifier(name)))


def report(results: dict[int, dict[str, dict[str, float]]]) -> str:
    small, large = results[SIZES[0]], results[SIZES[-1]]
    rest = large["REST policy fetch"]["p95_ms"]
    lines = [
        f"| what | p50 ms ({SIZES[0]}) | p95 ms ({SIZES[0]}) | p50 ms ({SIZES[-1]:,}) "
        f"| p95 ms ({SIZES[-1]:,}) | p95 {SIZES[-1]:,} / {SIZES[0]} | p95 / REST fetch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for what, figures in large.items():
        few = small[what]
        lines.append(
            f"| {what} | {few['p50_ms']:.1f} | {few['p95_ms']:.1f} | {figures['p50_ms']:.1f} "
            f"| {figures['p95_ms']:.1f} | {figures['p95_ms'] / few['p95_ms']:.2f} "
            f"| {figures['p95_ms'] / rest:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    results = {size: run_size(size, SERVER_URL) for size in SIZES}
    table = report(results)
    print(table)
    slow = [
        w
        for w, f in results[SIZES[-1]].items()
        if w != "REST policy fetch" and f["p95_ms"] > TARGET_MS
    ]
    print("target (< 100 ms p95 with 10,000 policies):", "met" if not slow else f"missed by {slow}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "requests": REQUESTS,
                "results": {str(k): v for k, v in results.items()},
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
