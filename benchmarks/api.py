"""REST API under concurrent load on gunicorn, beside a bare Flask endpoint as the ceiling.

Two servers run side by side with the same gunicorn settings (`PbgmServer`'s
options: sync workers, same count): `pbgm serve` over a repository (SQLite, then
PostgreSQL) holding the example bundle, and a bare Flask app answering a fixed small JSON document.
The load comes from other processes (`LOAD_PROCESSES` processes x `THREADS`
threads, one `http.client` connection per request, as the sync worker closes
connections). The endpoints take turns: `ROUNDS` rounds of `SECONDS` each, after a
warm-up, so that other work on the machine weighs on all of them alike; the ratio
to the bare endpoint is the median of the per-round ratios.

- `bare`: the ceiling, a Flask view returning `{"status": "ok"}`;
- `floor`: what any decision endpoint pays at least, in the same bare app: the
  decision's request (its POST, bearer token and JSON body) with the body parsed and the
  token verified (once, then known by its text, as pbgm remembers verified tokens),
  answering a small JSON document; the decision is also given as a share of it;
- `floor + decision log`: the floor, and one audit row per call written off the request
  path in batches every 50 ms through the store's batch write, as pbgm's decision log
  does (`_FloorLog`): the least any decision endpoint with a decision log pays;
- `healthz`: pbgm's public endpoint (framework, hooks, error mapping, metrics);
- `policy fetch`: `GET /api/v1/policy` by base64 id with JWT verification, the
  enforcement hook's PDP decision and the Access Point's grant check;
- `decision`: `POST /api/v1/decisions`, one request, decided and written to the
  decision log.

Figures: requests/s and p50/p99 latency as the clients saw them, and requests per
CPU-second of the server's processes (psutil). On a small shared machine the load
generator competes with the servers for the same cores and can become the
bottleneck, so the ratio to the bare endpoint is taken on the server-side figure:
the throughput each server would reach with the CPU to itself.
Target: the policy fetch reaches at least 60 % of the bare endpoint's throughput.
Second target (issue 17): the decision endpoint, with the decision log on (written off
the request path), at least 60 % too. The repository is SQLite and then PostgreSQL.
Run: `.venv/bin/python -m benchmarks.api [--backends sqlite,postgres]`; results go to
`benchmarks/results/api.json`.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import psutil
from flask import Flask, jsonify, request

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "api.json"
WORKERS = 2
LOAD_PROCESSES = 2
THREADS = 4
WARMUP_SECONDS = 0.5
SECONDS = 1.5
ROUNDS = 4
TARGET = 0.60
DECISION_TARGET = 0.60  # issue 17: the decision endpoint, decision log on
CALLER = "svc-bench"
FLOOR = "floor (POST, JSON, known JWT)"
FLOOR_LOGGED = "floor + decision log"
FETCH = "policy fetch (JWT + grant)"
DECISION = "decision (JWT + PDP + log)"
SCOPES = ("policies:read", "decisions:write")


# --- the servers -------------------------------------------------------------------


def bare_app() -> Flask:
    app = Flask("bare")
    known: dict[str, Any] = {}

    @app.get("/bare")
    def bare() -> Any:
        return jsonify({"status": "ok"})

    @app.post("/floor")
    def floor() -> Any:
        """The decision request's floor: its body parsed, its bearer token verified (once,
        then known by its text, as pbgm remembers verified tokens), nothing else."""
        body = request.get_json()
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in known:
            known[token] = _floor_verifier().verify(token)
        return jsonify({"decision": "Permit", "subject": known[token].subject, "n": len(body)})

    @app.post("/floor-logged")
    def floor_logged() -> Any:
        """The floor with a decision log: the same, and one audit row per call written by
        a background thread in batches (`_FloorLog`), as pbgm's decision log does."""
        body = request.get_json()
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in known:
            known[token] = _floor_verifier().verify(token)
        subject = known[token].subject
        _floor_log().put(subject, request.get_data(as_text=True))
        return jsonify({"decision": "Permit", "subject": subject, "n": len(body)})

    return app


class _FloorLog:
    """The least a decision log costs: each call's body kept as its entry's text, and
    every `LINGER_S` the calls gathered written in one transaction through the store's
    batch write (`Store.record_audit_batch`, the write pbgm's `LogWriter` makes)."""

    LINGER_S = 0.05

    def __init__(self, url: str) -> None:
        from pbgm.store.sql import SqlStore

        self.store = SqlStore(url)
        self.calls: deque[tuple[str, str]] = deque()
        threading.Thread(target=self._drain, daemon=True).start()

    def put(self, actor: str, body: str) -> None:
        self.calls.append((actor, body))

    def _drain(self) -> None:
        from pbgm.store.base import AuditItem

        while True:
            time.sleep(self.LINGER_S)
            batch = [self.calls.popleft() for _ in range(len(self.calls))]
            if batch:
                items = [
                    AuditItem(actor, "decision", "decision", "request", None, _entry_text(body))
                    for actor, body in batch
                ]
                self.store.record_audit_batch(items)


def _entry_text(body: str) -> str:
    return '{"decisions":[{"request":' + body + ',"decision":"Permit","status":"ok"}]}'


_FLOOR_LOG: list[_FloorLog] = []


def _floor_log() -> _FloorLog:
    """This worker's log (made after the fork, on the first call)."""
    if not _FLOOR_LOG:
        _FLOOR_LOG.append(_FloorLog(os.environ["PBGM_BENCH_LOG_URL"]))
    return _FLOOR_LOG[0]


def _floor_verifier() -> Any:
    from pbgm.auth.keys import KeyRing
    from pbgm.auth.tokens import TokenVerifier

    ring = KeyRing(Path(os.environ["PBGM_KEYS_DIR"]))
    return TokenVerifier(ring.verification_keys, issuer="pbgm", audience="pbgm-api")


def _serve_bare(port: int) -> None:
    """Run the bare app with exactly the gunicorn options `pbgm serve` uses."""
    from pbgm.api import Settings
    from pbgm.api.server import PbgmServer

    class BareServer(PbgmServer):
        def load(self) -> Flask:
            return bare_app()

    BareServer(Settings(bind=f"127.0.0.1:{port}", workers=WORKERS)).run()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _repository(directory: Path, url: str) -> tuple[str, Path, str]:
    """The migrated repository at `url` with the example bundle, a key ring, a token."""
    from pbgm.auth.keys import KeyRing
    from pbgm.auth.secrets import hash_secret
    from pbgm.auth.tokens import TokenIssuer
    from pbgm.bundle import import_bundle, read_bundle
    from pbgm.model import Permission
    from pbgm.store import Grant, ServiceAccount
    from pbgm.store.sql import SqlStore

    store = SqlStore(url)
    import_bundle(store, read_bundle(ROOT / "examples" / "policies"), actor="bench", publish=True)
    store.add_service_account(ServiceAccount(CALLER, hash_secret("x"), SCOPES), actor="bench")
    grant = Grant("service", CALLER, "policy_group", "operational-limits", Permission.READ)
    store.add_grant(grant, actor="bench")
    generation = store.get_service_account(CALLER).token_generation
    store.close()
    keys = directory / "keys"
    ring = KeyRing(keys)
    ring.generate()
    issuer = TokenIssuer(ring, issuer="pbgm", audience="pbgm-api")
    token = issuer.issue(CALLER, SCOPES, generation=generation)
    return url, keys, token


def _start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server on port {port} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the load ------------------------------------------------------------------------


def _worker(spec: dict[str, Any], until: float, warm_until: float, out: Any) -> None:
    """One load process: THREADS threads sending the same request until `until`."""
    latencies: list[float] = []
    errors, sent = [0], [0]
    lock = threading.Lock()

    def loop() -> None:
        mine: list[float] = []
        bad = total = 0
        while (now := time.monotonic()) < until:
            connection = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=10)
            try:
                connection.request(
                    spec["method"], spec["path"], body=spec["body"], headers=spec["headers"]
                )
                response = connection.getresponse()
                response.read()
                ok = response.status == spec["status"]
            except OSError:
                ok = False
            finally:
                connection.close()
            total += 1
            if now >= warm_until:
                mine.append(time.monotonic() - now)
                bad += 0 if ok else 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            sent[0] += total

    threads = [threading.Thread(target=loop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, errors[0], sent[0]))


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by a server's worker processes (and its master)."""
    master = psutil.Process(pid)
    processes = [master, *master.children(recursive=True)]
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Latencies of one endpoint under the load, and the server CPU it took."""
    queue: Any = multiprocessing.get_context("fork").Queue()
    cpu_before = server_cpu(spec["pid"])
    start = time.monotonic()
    warm_until, until = start + WARMUP_SECONDS, start + WARMUP_SECONDS + SECONDS
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_worker, args=(spec, until, warm_until, queue))
        for _ in range(LOAD_PROCESSES)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    latencies = [x for lat, _, _ in results for x in lat]
    return {
        "latencies": latencies,
        "errors": sum(err for _, err, _ in results),
        "sent": sum(sent for _, _, sent in results),
        "cpu": server_cpu(spec["pid"]) - cpu_before,
    }


def summarise(name: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for r in rounds for x in r["latencies"])
    count = len(latencies)
    return {
        "endpoint": name,
        "requests_per_second": round(count / (SECONDS * len(rounds)), 1),
        "p50_ms": round(latencies[count // 2] * 1000, 2) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2) if count else None,
        "requests": count,
        "errors": sum(r["errors"] for r in rounds),
        "requests_per_server_cpu_second": round(
            sum(r["sent"] for r in rounds) / (sum(r["cpu"] for r in rounds) or 1), 1
        ),
        "per_round": [r["sent"] / (r["cpu"] or 1) for r in rounds],
    }


def _specs(pbgm_port: int, bare_port: int, token: str) -> list[dict[str, Any]]:
    from pbgm.access import encode_id

    auth = {"Authorization": f"Bearer {token}"}
    fetch = (
        f"/api/v1/policy?policy_id={encode_id('limits-bess-01')}&policy_group=operational-limits"
    )
    decision = {
        "subject": {"id": "op-anna"},
        "resource": {"asset_id": "bess-01"},
        "action": {"id": "write"},
    }
    json_headers = {**auth, "Content-Type": "application/json"}

    def spec(name: str, port: int, method: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "port": port, "method": method, "path": path, "body": None,
                "headers": {}, "status": 200, **extra}  # fmt: skip

    return [
        spec("bare Flask (ceiling)", bare_port, "GET", "/bare"),
        spec(
            FLOOR,
            bare_port,
            "POST",
            "/floor",
            headers=json_headers,
            body=json.dumps(decision),
        ),
        spec("pbgm /healthz", pbgm_port, "GET", "/healthz"),
        spec(FETCH, pbgm_port, "GET", fetch, headers=auth),
        spec(
            FLOOR_LOGGED,
            bare_port,
            "POST",
            "/floor-logged",
            headers=json_headers,
            body=json.dumps(decision),
        ),
        spec(
            DECISION,
            pbgm_port,
            "POST",
            "/api/v1/decisions",
            headers=json_headers,
            body=json.dumps(decision),
        ),
    ]


def run(backend: str = "sqlite") -> dict[str, Any]:
    from benchmarks.scale_db import database

    directory = Path(tempfile.mkdtemp(prefix="pbgm-bench-api-"))
    try:
        with database(backend, directory) as url:
            return _run(directory, url, backend)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(directory: Path, url: str, backend: str) -> dict[str, Any]:
    db, keys, token = _repository(directory, url)
    pbgm_port, bare_port = _free_port(), _free_port()
    env = {**os.environ, "PBGM_KEYS_DIR": str(keys), "PBGM_WORKERS": str(WORKERS)}
    env["PBGM_RATE_LIMIT"] = "0"  # one client, thousands of calls a second: not limited
    python = sys.executable
    pbgm = _start(
        [python, "-m", "pbgm", "--db", db, "serve", "--bind", f"127.0.0.1:{pbgm_port}"],
        env,
        pbgm_port,
    )
    bare_env = {**env, "PBGM_BENCH_LOG_URL": db}
    bare = _start(
        [python, "-m", "benchmarks.api", "--serve-bare", str(bare_port)], bare_env, bare_port
    )
    try:
        pids = {pbgm_port: pbgm.pid, bare_port: bare.pid}
        specs = [
            {**spec, "pid": pids[spec["port"]]} for spec in _specs(pbgm_port, bare_port, token)
        ]
        rounds = [[measure(spec) for spec in specs] for _ in range(ROUNDS)]
        rows = [summarise(spec["name"], [r[i] for r in rounds]) for i, spec in enumerate(specs)]
    finally:
        _stop(pbgm)
        _stop(bare)
    for row in rows:
        ratios = [n / (b or 1) for n, b in zip(row["per_round"], rows[0]["per_round"], strict=True)]
        row["ratio_to_bare"] = round(statistics.median(ratios), 2)
    named = {r["endpoint"]: r for r in rows}
    decision, floor, logged = named[DECISION], named[FLOOR], named[FLOOR_LOGGED]
    fetch = named[FETCH]["ratio_to_bare"]
    return {
        "backend": backend,
        "decision_ratio": decision["ratio_to_bare"],
        "floor_ratio": floor["ratio_to_bare"],
        "floor_logged_ratio": logged["ratio_to_bare"],
        "decision_to_floor_ratio": _ratio_of(decision, floor),
        "decision_to_floor_logged_ratio": _ratio_of(decision, logged),
        "decision_target_ratio": DECISION_TARGET,
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "workers": WORKERS,
            "load": f"{LOAD_PROCESSES} processes x {THREADS} threads",
            "rounds": ROUNDS,
            "seconds_per_endpoint_and_round": SECONDS,
            "time": time.time(),
        },
        "rows": rows,
        "policy_fetch_ratio": fetch,
        "target_ratio": TARGET,
        "meets_target": fetch >= TARGET,
    }


def _ratio_of(row: dict[str, Any], base: dict[str, Any]) -> float:
    """The median per-round ratio of `row`'s throughput to `base`'s."""
    pairs = zip(row["per_round"], base["per_round"], strict=True)
    return round(float(statistics.median(n / (b or 1) for n, b in pairs)), 2)


def report(result: dict[str, Any]) -> None:
    print(
        f"{'endpoint':<30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'req/CPU-s':>10} {'x bare':>7} {'errors':>6}"
    )
    for row in result["rows"]:
        print(
            f"{row['endpoint']:<30} {row['requests_per_second']:>8.1f} {row['p50_ms']:>7} "
            f"{row['p99_ms']:>7} {row['requests_per_server_cpu_second']:>10.1f} "
            f"{row['ratio_to_bare']:>7.2f} {row['errors']:>6}"
        )
    decision = result["decision_ratio"]
    print(
        f"floor (a bare POST with the decision's body and token) at {result['floor_ratio']:.0%}"
        f" of the bare endpoint; the decision at {result['decision_to_floor_ratio']:.0%} of it"
    )
    print(
        f"floor with a decision log at {result['floor_logged_ratio']:.0%} of the bare endpoint;"
        f" the decision at {result['decision_to_floor_logged_ratio']:.0%} of it"
    )
    print(
        f"decision (decision log on) at {decision:.0%} of the bare endpoint: "
        f"{'meets' if decision >= DECISION_TARGET else 'misses'} the {DECISION_TARGET:.0%} target"
    )
    verdict = "meets" if result["meets_target"] else "misses"
    print(
        f"policy fetch at {result['policy_fetch_ratio']:.0%} of the bare endpoint: "
        f"{verdict} the {result['target_ratio']:.0%} target ({result['meta']['load']}, "
        f"{result['meta']['workers']} gunicorn workers, {result['meta']['cpus']} CPUs)"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        _serve_bare(int(sys.argv[2]))
        return
    backends = (
        sys.argv[2].split(",")
        if len(sys.argv) == 3 and sys.argv[1] == "--backends"
        else ["sqlite", "postgres"]
    )
    results = []
    for backend in backends:
        result = run(backend)
        print(f"-- {backend}")
        report(result)
        results.append(result)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
