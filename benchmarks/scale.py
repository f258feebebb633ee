"""Scale benchmark: serving 1,000 to 100,000 realistic policies from SQLite and PostgreSQL.

For each backend and size N, a repository is filled with the documents of
`benchmarks.scale_workload` (half operational limits with four rules and obligations,
half data access with three), then:

- load: a fresh process makes a decision point follow the repository
  (`PolicyDecisionPoint(store=...).sync()`): wall and CPU seconds to a ready set, and
  the resident memory it added;
- propagation: `pbgm serve` (2 gunicorn workers) serves the repository; a change (a
  policy updated and published, through the store) is committed, and the time until
  the API's decisions reflect it (three answers in a row) is taken, `--changes` times;
- unrelated decisions: a client, in a process of its own, asks about other policies
  all along (after a warm-up of `WARM_UP_S`, while their lazy policies compile); their
  latency without changes and during the changes is compared (p50, p99);
- two instances (PostgreSQL): a second server on the same database, where the same
  changes are watched;
- import: `pbgm.bundle.import_bundle` of `--import-size` documents into an empty
  repository (seconds, and policies per second).

Run: `.venv/bin/python -m benchmarks.scale [--sizes 1000,10000,100000]
[--backends sqlite,postgres] [--changes 20] [--import-size 2000]
[--part load,changes,import]`; results go to `benchmarks/results/scale.json`
(`--part` runs only some parts: `--part import --import-size 100000` only imports).
Targets (issue 17): a change reflected within 200 ms p99 (500 ms across instances),
unrelated p99 within 2x, load of 100,000 <= 2 s, import of 100,000 <= 60 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import scale_workload as workload
from benchmarks.scale_db import database, fill

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "scale.json"
CALLER = "svc-scale"
SCOPES = ("decisions:write",)
SEEN_IN_A_ROW = 3
POLL_S = 0.005
WARM_UP_S = 5.0
CHANGE_TIMEOUT_S = 30.0


# --- load, in a fresh process ------------------------------------------------------------


def load_in_process(url: str) -> dict[str, Any]:
    import psutil

    from pbgm.pdp import PolicyDecisionPoint
    from pbgm.store.sql import SqlStore

    store = SqlStore(url)
    store.revisions()  # the connection made before timing
    before = psutil.Process().memory_info().rss
    wall, cpu = time.perf_counter(), time.process_time()
    pdp = PolicyDecisionPoint(store=store)
    pdp.sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = (psutil.Process().memory_info().rss - before) / 2**20
    return {"load_s": round(wall, 3), "load_cpu_s": round(cpu, 3), "rss_mb": round(rss, 1),
            "policies": len(pdp.compiled)}  # fmt: skip


def measure_load(url: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scale", "--load", url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the servers ----------------------------------------------------------------------------


class Server:
    def __init__(self, url: str, keys: Path, port: int) -> None:
        self.port = port
        env = {**os.environ, "PBGM_KEYS_DIR": str(keys), "PBGM_WORKERS": "2"}
        env["PBGM_RATE_LIMIT"] = "0"  # two clients, hundreds of calls a second: not limited
        command = [sys.executable, "-m", "pbgm", "--db", url, "serve"]
        command += ["--bind", f"127.0.0.1:{port}"]
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/readyz", None, {})[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("pbgm serve did not become ready")

    def call(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body)
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _caller(url: str, directory: Path) -> tuple[Path, str]:
    from pbgm.auth.keys import KeyRing
    from pbgm.auth.secrets import hash_secret
    from pbgm.auth.tokens import TokenIssuer
    from pbgm.errors import NotFoundError
    from pbgm.model import Permission, PolicyGroup
    from pbgm.store import Grant, ServiceAccount
    from pbgm.store.sql import SqlStore

    store = SqlStore(url)
    try:
        generation = store.get_service_account(CALLER).token_generation  # a repository reused
    except NotFoundError:
        account = ServiceAccount(CALLER, hash_secret("x"), SCOPES)
        store.add_service_account(account, actor="bench")
        for group in (workload.LIMITS_GROUP, workload.ACCESS_GROUP):  # decided against
            store.put_policy_group(PolicyGroup(group), actor="bench")
            store.add_grant(Grant("service", CALLER, "policy_group", group, Permission.READ),
                            actor="bench")  # fmt: skip
        generation = store.get_service_account(CALLER).token_generation
    store.close()
    keys = directory / f"keys-{uuid.uuid4().hex[:8]}"
    ring = KeyRing(keys)
    ring.generate()
    issuer = TokenIssuer(ring, issuer="pbgm", audience="pbgm-api")
    return keys, issuer.issue(CALLER, SCOPES, generation=generation)


# --- propagation and unrelated decisions ---------------------------------------------------


def _decide(server: Server, token: str, request: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, body = server.call("POST", "/api/v1/decisions", request, headers)
    if status != 200:
        raise RuntimeError(f"decision answered {status}: {body}")
    return str(body["decision"])


def _seen(server: Server, token: str, request: dict[str, Any], since: float) -> float:
    """Seconds from `since` until the decision is Permit `SEEN_IN_A_ROW` times in a row."""
    first, row = 0.0, 0
    while time.perf_counter() - since < CHANGE_TIMEOUT_S:
        if _decide(server, token, request) == "Permit":
            first, row = first or time.perf_counter(), row + 1
            if row == SEEN_IN_A_ROW:
                return first - since
        else:
            first, row = 0.0, 0
        time.sleep(POLL_S)  # leave the workers to the other client too
    return float("inf")


PHASES = ("warm-up", "idle", "changes")


class Background:
    """A client deciding about other policies all along, recording latencies by phase.

    It runs in a process of its own: in the process that makes the changes (validation,
    SQL, the polling of `_seen`) it would wait for that process's interpreter, and its
    latencies would show the benchmark's own work rather than the server's."""

    def __init__(self, server: Server, token: str, n: int, avoid: set[int]) -> None:
        self.server, self.token = server, token
        self.latencies: dict[str, list[float]] = {phase: [] for phase in PHASES}
        rng = random.Random(7)
        keys = [k for k in (rng.randrange(n) for _ in range(2_000)) if k not in avoid]
        self.requests = [workload.request(k, rng.choice(workload.GROUPS)) for k in keys]
        context = multiprocessing.get_context("fork")
        self._phase = context.Value("i", 0)
        self._results: Any = context.Queue()
        self.process = context.Process(target=self._run, daemon=True)

    @property
    def phase(self) -> str:
        return PHASES[self._phase.value]

    @phase.setter
    def phase(self, name: str) -> None:
        self._phase.value = PHASES.index(name)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        """Stop the client and take its latencies."""
        self._phase.value = -1
        self.latencies = self._results.get(timeout=60)
        self.process.join(10)

    def _run(self) -> None:  # in the client's process
        latencies: dict[str, list[float]] = {phase: [] for phase in PHASES}
        i = 0
        while (phase := self._phase.value) >= 0:
            start = time.perf_counter()
            _decide(self.server, self.token, self.requests[i % len(self.requests)])
            latencies[PHASES[phase]].append(time.perf_counter() - start)
            i += 1
        self._results.put(latencies)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "count": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


def measure_changes(url: str, n: int, changes: int, directory: Path, two: bool) -> dict[str, Any]:
    from pbgm.pap import PolicyAdministrationPoint
    from pbgm.store.sql import SqlStore

    keys, token = _caller(url, directory)
    servers = [Server(url, keys, _free_port()) for _ in range(2 if two else 1)]
    store = SqlStore(url)
    pap = PolicyAdministrationPoint(store)
    rng = random.Random(11)
    chosen = [rng.randrange(n) for _ in range(changes)]
    try:
        for server in servers:
            server.wait_ready()
        background = Background(servers[0], token, n, set(chosen))
        background.start()
        time.sleep(WARM_UP_S)  # its policies compiled on first use: not what is compared
        background.phase = "idle"
        time.sleep(3.0)
        background.phase = "changes"
        seen: list[list[float]] = [[] for _ in servers]
        for step, k in enumerate(chosen):
            policy_id = workload.policy_id(k)
            record = store.get_policy(policy_id)
            group = next(
                g
                for g in workload.GROUPS[step % 40 :] + workload.GROUPS
                if g not in json.dumps(record.document["rules"][0])
            )
            document = workload.changed(dict(record.document), workload.GROUPS.index(group))
            request = workload.request(k, group)
            pap.update(policy_id, document, expected_version=record.version, actor="bench")
            pap.publish(policy_id, actor="bench")
            committed = time.perf_counter()
            for i, server in enumerate(servers):
                seen[i].append(_seen(server, token, request, committed))
            time.sleep(0.2)
        background.stop()
    finally:
        store.close()
        for server in servers:
            server.stop()
    result = {
        "propagation": [_percentiles(times) for times in seen],
        "propagation_ms": [[round(1000 * t, 1) for t in times] for times in seen],
        "unrelated_idle": _percentiles(background.latencies["idle"]),
        "unrelated_changes": _percentiles(background.latencies["changes"]),
    }
    idle, busy = result["unrelated_idle"], result["unrelated_changes"]
    if idle and busy:
        result["unrelated_p99_ratio"] = round(busy["p99_ms"] / idle["p99_ms"], 2)
    return result


# --- import ------------------------------------------------------------------------------------


def measure_import(backend: str, count: int, directory: Path) -> dict[str, Any]:
    """`import_bundle` of `count` documents into an empty repository: wall and CPU
    seconds (of this process; the database server's are not counted), and each phase's
    wall seconds. The bundle is built before the clock starts."""
    from pbgm.bundle import Bundle, import_bundle
    from pbgm.store.sql import SqlStore

    bundle = Bundle(policies=tuple(workload.documents(count)))
    starts: dict[str, float] = {}

    def phases(phase: str, done: int, total: int) -> None:
        starts.setdefault(phase, time.perf_counter())

    with database(backend, directory) as url:
        store = SqlStore(url)
        start, cpu = time.perf_counter(), time.process_time()
        import_bundle(store, bundle, actor="bench", phases=phases)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        store.close()
    ends = [*list(starts.values())[1:], start + seconds]
    return {
        "import_n": count,
        "import_s": round(seconds, 2),
        "import_cpu_s": round(cpu, 2),
        "per_s": round(count / seconds),
        "phases_s": {
            p: round(end - s, 2) for (p, s), end in zip(starts.items(), ends, strict=True)
        },
    }


# --- the run ------------------------------------------------------------------------------------


PARTS = ("load", "changes", "import")


@contextmanager
def _filled(backend: str, n: int, directory: Path, url: str | None) -> Iterator[tuple[str, float]]:
    """A repository of the `n` documents: `url` as it is (filled by an earlier run,
    `--url`), else a new one, filled here, and the seconds filling took."""
    if url is not None:
        yield url, 0.0
        return
    with database(backend, directory) as url:
        started = time.perf_counter()
        fill(url, workload.documents(n))
        yield url, round(time.perf_counter() - started, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    parts = set(args.part.split(","))
    if not parts <= set(PARTS):
        raise SystemExit(f"--part takes some of {','.join(PARTS)}")
    if args.url and ("," in args.sizes or "," in args.backends):
        raise SystemExit("--url takes one of --sizes and one of --backends")
    with tempfile.TemporaryDirectory(prefix="pbgm-bench-scale-") as workdir:
        directory = Path(workdir)
        for backend in args.backends.split(","):
            for n in (int(s) for s in args.sizes.split(",")) if parts - {"import"} else ():
                with _filled(backend, n, directory, args.url) as (url, fill_s):
                    row: dict[str, Any] = {"backend": backend, "n": n, "fill_s": fill_s}
                    if "load" in parts:
                        row |= measure_load(url)
                    if "changes" in parts:
                        two = backend == "postgres"
                        row |= measure_changes(url, n, args.changes, directory, two)
                print(json.dumps(row), flush=True)
                rows.append(row)
            if args.import_size and "import" in parts:
                imported = {"backend": backend} | measure_import(
                    backend, args.import_size, directory
                )
                print(json.dumps(imported), flush=True)
                rows.append(imported)
    return {"time": time.time(), "cpus": os.cpu_count(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--import-size", type=int, default=2_000)
    parser.add_argument("--part", default=",".join(PARTS), help="some of load,changes,import")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--url", help="an existing repository of the --sizes documents, used as it is"
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)  # child: measure one load
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load_in_process(args.load)))
        return
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
