"""A small flexibility market over a real socket, speaking docs/market.md, for demos and
tests (`StandInMarket`). It is a market, not a script: each offer has its own state
machine, offered -> accepted | rejected -> assigned (with a schedule) -> executed, driven
by the clock (`accept_after_s`, `assign_after_s`), and it keeps the protocol's promises
(idempotent submit by offer id, 409 for a taken id, 422 for an offer it cannot read,
cancel before assignment only).

Faults to order: `fail_next(n, status, retry_after=...)` answers the next `n` requests
with `status` (5xx, 429), `garble_next(n)` with a body that is not JSON, `delay_s` slows
every answer, `answer=False` never decides (a market that does not answer in time),
`rule(offer) -> reason | None` rejects offers, `schedule="out_of_bounds"` assigns a
schedule that breaks its offer. `api_key` makes it ask for `X-API-Key`.

The market assigns, for each slice, the bound of larger magnitude times `fill` (the
flexibility asked for), scaled into the offer's `totalEnergyConstraint`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Rule = Callable[[Mapping[str, Any]], str | None]
REQUIRED = ("id", "state", "offeredById", "startBeforeTime", "flexOfferProfileConstraints")


@dataclass
class Listed:
    """One offer the market holds."""

    document: Mapping[str, Any]
    body: bytes
    received: float
    state: str = "offered"
    reason: str | None = None
    decided_at: float | None = None
    schedule: dict[str, Any] | None = None
    schedule_status: Mapping[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.document["id"], "state": self.state}
        if self.reason:
            out["stateReason"] = self.reason
        if self.schedule is not None:
            out["flexOfferSchedule"] = self.schedule
        return out


@dataclass
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    at: float = field(default_factory=time.perf_counter)


class StandInMarket:
    """See the module docstring. Use as a context manager; `url` is its base URL."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        accept_after_s: float = 0.0,
        assign_after_s: float = 0.05,
        fill: float = 1.0,
        rule: Rule | None = None,
        schedule: str = "fill",
        answer: bool = True,
        delay_s: float = 0.0,
    ) -> None:
        self.api_key, self.rule, self.schedule_mode = api_key, rule, schedule
        self.accept_after_s, self.assign_after_s, self.fill = accept_after_s, assign_after_s, fill
        self.answer, self.delay_s = answer, delay_s
        self.offers: dict[str, Listed] = {}
        self.seen: list[Seen] = []
        self._faults: list[tuple[int, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        market = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()  # answers go out at once, not after a delayed ACK
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = market._answer(
                    self.command, self.path, dict(self.headers.items()), body
                )
                if market.delay_s:
                    time.sleep(market.delay_s)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/api/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StandInMarket:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- faults ------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, *, retry_after: float | None = None) -> None:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        body = json.dumps({"title": "market busy" if status == 429 else "market failed"})
        with self._lock:
            self._faults.extend([(status, body.encode(), headers)] * n)

    def garble_next(self, n: int) -> None:
        with self._lock:
            self._faults.extend([(200, b"<html>not json", {})] * n)

    def requests(self, method: str, prefix: str = "/api/v1/flexoffers") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    # -- the protocol ------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.seen.append(Seen(method, path, headers))
            if self._faults:
                return self._faults.pop(0)
            if self.api_key is not None and headers.get("X-API-Key") != self.api_key:
                return _json(401, {"title": "unauthorised", "code": "unauthorised"})
            parts = path.split("?", 1)[0].rstrip("/").split("/")
            if parts[:4] != ["", "api", "v1", "flexoffers"]:
                return _json(404, {"title": "no such resource"})
            if method == "POST" and len(parts) == 4:
                return self._submit(body)
            offer = self.offers.get(parts[4]) if len(parts) >= 5 else None
            if offer is None:
                return _json(404, {"title": "no such offer", "code": "unknown_offer"})
            self._advance(offer)
            if method == "GET" and len(parts) == 5:
                return _json(200, offer.view())
            if method == "DELETE" and len(parts) == 5:
                return self._cancel(offer)
            if method == "PUT" and parts[5:] == ["schedule-status"]:
                offer.schedule_status = json.loads(body or b"{}")
                return _json(200, offer.view())
            return _json(405, {"title": "method not allowed"})

    def _submit(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        try:
            document = json.loads(body)
        except ValueError:
            return _json(422, {"title": "not JSON", "code": "invalid_offer"})
        missing = [k for k in REQUIRED if not isinstance(document, dict) or k not in document]
        if missing:
            detail = f"missing `{missing[0]}`"
            return _json(422, {"title": "invalid offer", "code": "invalid_offer", "detail": detail})
        known = self.offers.get(str(document["id"]))
        if known is not None:
            if known.body != body:
                return _json(409, {"title": "offer id taken", "code": "offer_id_taken"})
            return _json(200, known.view())
        offer = Listed(document, body, time.monotonic())
        self.offers[str(document["id"])] = offer
        self._advance(offer)
        return _json(201, offer.view())

    def _cancel(self, offer: Listed) -> tuple[int, bytes, dict[str, str]]:
        if offer.state not in ("offered", "accepted"):
            return _json(409, offer.view())
        offer.state, offer.reason = "canceled", "withdrawn by the offerer"
        return _json(200, offer.view())

    def _advance(self, offer: Listed) -> None:
        """Move the offer along its life cycle as far as the clock allows."""
        if not self.answer:
            return
        age = time.monotonic() - offer.received
        if offer.state == "offered" and age >= self.accept_after_s:
            reason = _late(offer.document) or (self.rule(offer.document) if self.rule else None)
            offer.state, offer.reason = ("rejected", reason) if reason else ("accepted", None)
            offer.decided_at = time.monotonic()
        if offer.state == "accepted" and age >= self.accept_after_s + self.assign_after_s:
            offer.schedule = _schedule(offer.document, self.fill, self.schedule_mode)
            offer.state = "assigned"


def _json(status: int, body: Any) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(body).encode(), {}


def _late(document: Mapping[str, Any]) -> str | None:
    deadline = document.get("acceptBeforeTime")
    if isinstance(deadline, str) and datetime.fromisoformat(deadline) < _now(deadline):
        return "the acceptance deadline has passed"
    return None


def _now(like: str) -> datetime:
    return datetime.now(datetime.fromisoformat(like).tzinfo)


def _schedule(document: Mapping[str, Any], fill: float, mode: str) -> dict[str, Any]:
    slices = []
    for piece in document["flexOfferProfileConstraints"]:
        bounds = piece["energyConstraintList"][0]
        lower, upper = float(bounds["lower"]), float(bounds["upper"])
        per_interval = upper if abs(upper) >= abs(lower) else lower
        duration = int(piece.get("minDuration", 1))
        slices.append({"duration": duration, "energyAmount": fill * per_interval * duration})
    total = document.get("totalEnergyConstraint")
    if total is not None:
        _fit(slices, float(total["lower"]), float(total["upper"]))
    if mode == "out_of_bounds":
        for piece in slices:
            piece["energyAmount"] = piece["energyAmount"] * 3 + 1000.0
    start = datetime.fromisoformat(document.get("startAfterTime") or document["startBeforeTime"])
    text = start.isoformat().replace("+00:00", "Z")
    return {"scheduleId": 1, "updateId": 1, "startTime": text, "scheduleSlices": slices}


def _fit(slices: list[dict[str, Any]], lower: float, upper: float) -> None:
    total = sum(s["energyAmount"] for s in slices)
    target = min(max(total, lower), upper)
    if total and target != total:
        for piece in slices:
            piece["energyAmount"] *= target / total
