"""The scenario's grid operator: sets pbgm up through its admin API, then tightens a limit.

    operator.py bootstrap --db URL --secret-file FILE
        the first administrator, straight in the repository (nothing can call the API
        before there is one): service account `scenario-admin`, scopes `admin` and
        `policies:read`, an admin grant on every policy group (`*`); its secret is
        written to FILE (mode 0600), never printed
    operator.py setup --api URL --secret-file FILE --service-secret-file OUT
        through the API: the voltage service's account `svc-voltage-control` (secret to
        OUT), read grants on `operational-limits` and `voltage-control`, and the band
        policy `limits-feeder-3` created and published
    operator.py tighten --api URL --secret-file FILE --host H --port P --v-max 1.04
        waits for the service's set-points under the first band, changes the band
        (`GET`, `PUT` with `If-Match`, `POST .../publish`), and measures the time from
        that change to the first set-point computed with the new limits (from the
        service's status topic); then waits for the feeder's voltages to follow

Only the standard library for HTTP, so the calls read as any client would make them.
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from pbgm.access import encode_id
from pbgm.bus import open_bus

MQTT = "adapters.mqtt:open_mqtt_bus"  # the MQTT bus, without an installed entry point
HERE = Path(__file__).resolve().parent
ADMIN = "scenario-admin"
SERVICE = "svc-voltage-control"
BAND_POLICY = "limits-feeder-3"
STATUS_TOPIC = "/voltage_control/status"


def say(text: str) -> None:
    print(f"[operator] {text}", flush=True)


class Api:
    """A client-credentials token and JSON calls to one pbgm server."""

    def __init__(self, url: str, client_id: str, secret: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        form = urlencode({"grant_type": "client_credentials"})
        headers = {"Authorization": f"Basic {basic}"}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, _, body = self.send("POST", "/api/v1/token", form.encode(), headers)
        if status != 200:
            raise SystemExit(f"token refused ({status}): {body!r}")
        self.token = json.loads(body)["access_token"]

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def call(self, method: str, path: str, data: Any = None, **headers: str):
        """A JSON call under `/api/v1/admin`; a failure ends the scenario with its answer."""
        sent = {"Authorization": f"Bearer {self.token}", **headers}
        body = None if data is None else json.dumps(data).encode()
        if body is not None:
            sent["Content-Type"] = "application/json"
        status, answer_headers, answer = self.send(method, f"/api/v1/admin{path}", body, sent)
        if not 200 <= status < 300:
            raise SystemExit(f"{method} {path} failed ({status}): {answer.decode()}")
        return (json.loads(answer) if answer else None), answer_headers


def bootstrap(args: argparse.Namespace) -> None:
    from pbgm.auth.secrets import generate_secret, hash_secret
    from pbgm.model import Permission, PolicyGroup
    from pbgm.store import Grant, ServiceAccount, open_store

    store = open_store(args.db)
    secret = generate_secret()
    store.put_policy_group(PolicyGroup("*", description="global administrators"), actor="setup")
    account = ServiceAccount(ADMIN, hash_secret(secret), ("admin", "policies:read"))
    store.add_service_account(account, actor="setup")
    store.add_grant(Grant("service", ADMIN, "policy_group", "*", Permission.ADMIN), actor="setup")
    write_secret(Path(args.secret_file), secret)
    say(f"bootstrap: service account `{ADMIN}` with an admin grant on every policy group")


def write_secret(path: Path, secret: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret)


def admin_api(args: argparse.Namespace) -> Api:
    return Api(args.api, ADMIN, Path(args.secret_file).read_text(encoding="utf-8").strip())


def setup(args: argparse.Namespace) -> None:
    api = admin_api(args)
    account = {"client_id": SERVICE, "scopes": ["policies:read"]}
    made, _ = api.call("POST", "/service-accounts", account)
    write_secret(Path(args.service_secret_file), made["client_secret"])
    say(f"POST /service-accounts: `{SERVICE}` (scope policies:read), secret kept for its loader")
    for group in ("operational-limits", "voltage-control"):
        grant = {"principal_kind": "service", "principal": SERVICE}
        grant |= {"target_kind": "policy_group", "target": group, "permission": "read"}
        api.call("POST", "/grants", grant)
        say(f"POST /grants: read on policy group `{group}`")
    band = json.loads((HERE / f"{BAND_POLICY}.json").read_text(encoding="utf-8"))
    record, _ = api.call("POST", "/policies?reason=scenario", band)
    api.call("POST", f"/policies/{encode_id(BAND_POLICY)}/publish", {"version": record["version"]})
    voltage = band["content"]["voltage"]
    say(
        f"POST /policies + publish: `{BAND_POLICY}` version {record['version']}, band "
        f"{voltage['v_target_min_pu']}-{voltage['v_target_max_pu']} pu"
    )


class Watch:
    """The service's status messages, as they arrive, with their arrival time."""

    def __init__(self, host: str, port: int) -> None:
        self.bus = open_bus({"factory": MQTT, "host": host, "port": port})
        self.seen: list[tuple[float, dict]] = []
        self.cond = threading.Condition()
        self.bus.subscribe(STATUS_TOPIC, self.take, qos=0)

    def take(self, message) -> None:
        status = json.loads(message.payload)
        with self.cond:
            self.seen.append((time.monotonic(), status))
            self.cond.notify_all()

    def until(self, test, timeout: float, after: int = 0) -> tuple[float, dict] | None:
        """The first status from index `after` on that passes `test`, or None."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((s for s in self.seen[after:] if test(s[1])), None)
                if found or time.monotonic() >= end:
                    return found
                self.cond.wait(end - time.monotonic())


def tighten(args: argparse.Namespace) -> int:
    watch = Watch(args.host, args.port)
    try:
        return _tighten(args, watch)
    finally:
        watch.bus.close()


def _tighten(args: argparse.Namespace, watch: Watch) -> int:
    api = admin_api(args)
    first = watch.until(lambda s: s["limits"]["v_max_pu"] > args.v_max, timeout=30)
    if first is None:
        say("no set-points from the voltage service within 30 s")
        return 1
    time.sleep(args.settle)
    before = watch.seen[-1][1]
    say(
        f"before: band {before['limits']['v_min_pu']}-{before['limits']['v_max_pu']} pu, "
        f"highest measured voltage {before['v_max_measured_pu']:.4f} pu"
    )
    path = f"/policies/{encode_id(BAND_POLICY)}"
    record, headers = api.call("GET", path)
    document = copy.deepcopy(record["document"])
    document["content"]["voltage"]["v_target_max_pu"] = args.v_max
    record, _ = api.call("PUT", f"{path}?reason=tighten", document, **{"If-Match": headers["ETag"]})
    mark = len(watch.seen)
    changed = time.monotonic()
    api.call("POST", f"{path}/publish", {"version": record["version"], "reason": "tighten"})
    say(f"PUT (If-Match {headers['ETag']}) + publish: `{BAND_POLICY}` version {record['version']}, "
        f"v_target_max_pu {args.v_max}")  # fmt: skip
    return _measure(args, watch, changed, mark, record["version"])


def _measure(args: argparse.Namespace, watch: Watch, changed: float, mark: int, version: int):
    hit = watch.until(lambda s: s["limits"]["v_max_pu"] == args.v_max, timeout=10, after=mark)
    if hit is None:
        say("the voltage service did not take the new limits within 10 s")
        return 1
    print(
        f"propagation: {hit[0] - changed:.3f} s from the admin change (publish of version "
        f"{version}) to the first set-point computed with the new limits",
        flush=True,
    )
    inside = watch.until(
        lambda s: (
            s["limits"]["v_max_pu"] == args.v_max and s["v_max_measured_pu"] <= args.v_max + 0.002
        ),
        timeout=10,
        after=mark,
    )
    if inside is None:
        say(f"the feeder's voltages did not come under {args.v_max} pu within 10 s")
        return 1
    say(
        f"after: highest measured voltage {inside[1]['v_max_measured_pu']:.4f} pu, "
        f"{inside[0] - changed:.2f} s after the change"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("bootstrap")
    first.add_argument("--db", required=True)
    first.add_argument("--secret-file", required=True)
    prepare = commands.add_parser("setup")
    prepare.add_argument("--api", required=True)
    prepare.add_argument("--secret-file", required=True)
    prepare.add_argument("--service-secret-file", required=True)
    change = commands.add_parser("tighten")
    change.add_argument("--api", required=True)
    change.add_argument("--secret-file", required=True)
    change.add_argument("--host", default="127.0.0.1")
    change.add_argument("--port", type=int, default=1883)
    change.add_argument("--v-max", type=float, default=1.04)
    change.add_argument("--settle", type=float, default=2.0, help="seconds before the change")
    args = parser.parse_args(argv)
    if args.command == "bootstrap":
        bootstrap(args)
    elif args.command == "setup":
        setup(args)
    else:
        return tighten(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
