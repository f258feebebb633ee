"""The `flexibility-market` grid service: a flexibility request in, a flex result out.

One run (docs/market.md "What pbgm does with a request"):

1. read the request (either shape, `controls.flex.parse_flex_request`);
2. ask the PDP whether the requester may ask for flexibility from this market
   (`request_flexibility`); Deny -> result `denied`;
3. per requested node: the assets there (`grid_node` of their `flexoffer` policy);
   ask the PDP whether this asset may be offered to this market within these bounds
   (`offer`, obligation `limit-energy` narrows them); build the offer from the
   template and validate it with `pbgm.flexoffer.validate_offer`; an invalid offer
   never leaves;
4. write the decisions to the decision log (`events.market.*`), in one batch, before
   anything is submitted (no decision acted on unrecorded);
5. submit, follow each offer until it is assigned, rejected or the deadline passes,
   check each schedule against its offer (`validate_schedule`) and tell the market;
6. publish the `flex_result` (`controls.flex.covee_result` plus `status`, `offers`) and
   write one audit entry: `market.result`, or `market.fallback` when nothing was
   traded because the market did not answer in time or could not be reached. Offers
   still open at the deadline are withdrawn; a rejected offer is reported, never
   re-submitted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.rest import RestError
from controls import ControlError
from controls.flex import FlexSchedule, covee_result, parse_flex_request
from pbgm.bus import Bus
from pbgm.errors import ConfigurationError, PbgmError
from pbgm.events import PolicyCache, ServiceRun
from pbgm.flexoffer import (
    FlexOffer,
    FlexOfferTemplate,
    dump_flexoffer,
    parse_schedule,
    parse_template,
    validate_offer,
    validate_schedule,
)
from pbgm.model import Obligation, Request
from pbgm.ops.metrics import counter
from pbgm.pdp import utc_now
from pbgm.pep import Enforcement, PolicyEnforcementPoint
from pbgm.store.base import AuditItem, Store, iter_published

from ._client import TERMINAL, MarketClient, MarketState
from ._config import MarketSettings, RunSettings
from ._offers import NotOfferable, Shape, build_offer, shape, slice_bounds

log = logging.getLogger(__name__)

FALLBACK_REASONS = ("market_timeout", "market_unavailable", "market_busy", "market_error")
_UNREACHABLE = {
    "peer_unavailable": "market_unavailable",
    "peer_timeout": "market_unavailable",
    "peer_busy": "market_busy",
    "peer_auth_failed": "market_error",
}
_OFFERS = counter("pbgm_market_offers", "FlexOffers by outcome", ("state",))
_RESULTS = counter("pbgm_market_results", "Flex results published, by status", ("status",))
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset that can be offered: its `flexoffer` policy and template."""

    policy_id: str
    asset_id: str
    template: FlexOfferTemplate


_NO_ASSET = Asset("", "", FlexOfferTemplate(asset_id="", sign_convention="production_positive"))


@dataclass(slots=True)
class Offer:
    """One asset's part of a run, from decision to outcome."""

    asset: Asset
    node: int
    variable: str
    state: str = "not_offered"
    reason: str | None = None
    violations: list[dict[str, str]] = field(default_factory=list)
    offer: FlexOffer | None = None
    form: Shape | None = None
    traded_kw: tuple[float, ...] | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "asset_id": self.asset.asset_id,
            "node": self.node,
            "variable": self.variable,
            "state": self.state,
        }
        if self.offer is not None:
            out["id"] = self.offer.id
        if self.reason:
            out["reason"] = self.reason
        if self.violations:
            out["violations"] = [v["code"] for v in self.violations]
        return out


class MarketService:
    """Turns flexibility requests into FlexOffers and market results into flex results."""

    def __init__(
        self,
        bus: Bus,
        *,
        store: Store,
        settings: MarketSettings,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings = settings.checked()  # made in code: refused here as its options would be
        self.bus, self.store, self.settings = bus, store, settings
        self.clock, self.monotonic, self.sleep = clock, monotonic, sleep
        self.policies = PolicyCache(store, refresh_s=0.0)
        self._clients: dict[str, MarketClient] = {}
        self._assets: tuple[int | None, Mapping[int, tuple[Asset, ...]]] = (None, {})
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- one run -------------------------------------------------------------------------

    def __call__(self, run: ServiceRun) -> dict[str, Any]:
        """A run started by the event service: the request is the triggering message."""
        payload = run.window[-1].fields if run.window else {}
        return self.handle(payload, run.parameters)

    def handle(self, payload: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Handle one request and publish its result (module docstring); never raises
        on input, on the market or on policies: each ends in a published status."""
        request_id = uuid.uuid4().hex[:16]
        result = self._run(request_id, payload, parameters)
        self._finish(request_id, result)
        return result

    def _run(
        self, request_id: str, payload: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        try:
            run = self.settings.for_run(parameters)
        except ConfigurationError as error:
            return _failed(request_id, "fallback", "invalid_parameters", error.message)
        try:
            schedules = parse_flex_request(payload)
        except ControlError as error:
            return _failed(request_id, "invalid_request", "invalid_request", str(error))
        now = self.clock()
        self.policies.refresh(force=True)
        asked, entries = self._may_request(request_id, run, schedules, now)
        offers = self._offers(request_id, run, schedules, now, entries) if asked.allowed else []
        try:
            self.store.record_audits(entries)
        except Exception:
            log.exception("cannot write the decision log; nothing is offered")
            return _failed(request_id, "fallback", "audit_failed", "the decision log failed")
        if not asked.allowed:
            return _failed(request_id, "denied", "request_denied", asked.reason)
        reason = self._trade(run, offers)
        return self._result(request_id, run, payload, schedules, offers, reason)

    # -- decisions -----------------------------------------------------------------------

    def _may_request(
        self, request_id: str, run: RunSettings, schedules: Sequence[FlexSchedule], now: datetime
    ) -> tuple[Enforcement, list[AuditItem]]:
        resource = {
            "type": "flexibility_request",
            "service": "flexibility-market",
            "market": run.market,
            "variables": [s.variable for s in schedules],
            "nodes": sorted({n for s in schedules for n in s.nodes}),
            "horizon": max(s.horizon for s in schedules),
            "max_abs_kw": max((abs(v) for s in schedules for r in s.values for v in r), default=0),
        }
        enforcement, _ = self._decide(run.requester, "request_flexibility", resource, now)
        entry = self._entry(
            "request", "flex_request", request_id, enforcement, run, request_id,
            requester=run.requester,
        )  # fmt: skip
        return enforcement, [entry]

    def _decide(
        self, subject_id: str, action: str, resource: Mapping[str, Any], now: datetime
    ) -> tuple[Enforcement, dict[str, float]]:
        caps: dict[str, float] = {}

        def limit_energy(obligation: Obligation, _request: Request) -> None:
            value = obligation.attributes.get("max_abs_per_slice")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError("`limit-energy` needs `max_abs_per_slice` >= 0")
            caps["per_slice"] = min(float(value), caps.get("per_slice", float(value)))

        def audit(_obligation: Obligation, _request: Request) -> None:
            """Every decision goes to the decision log (`events.market.*`) anyway."""

        group = self.settings.policy_group
        handlers = {"limit-energy": limit_energy, "audit": audit}
        pep = PolicyEnforcementPoint(self.policies.decider(group), handlers)
        subject = {"id": subject_id, "groups": list(self.policies.groups_of(subject_id))}
        request = Request(subject, resource, {"id": action}, {"current_time": now})
        enforcement = pep.check(request, now=now)
        log.info(
            "market decision: %s %s %s -> %s%s",
            subject_id,
            action,
            resource.get("asset_id", resource.get("market")),
            enforcement.response.decision.value,
            "" if enforcement.allowed else f" ({enforcement.reason})",
        )
        return enforcement, caps

    def _entry(
        self, what: str, kind: str, object_id: str, enforcement: Enforcement,
        run: RunSettings, request_id: str, **more: Any,
    ) -> AuditItem:  # fmt: skip
        details = {
            **more,
            "request_id": request_id,
            "market": run.market,
            "decision": enforcement.response.decision.value,
            "allowed": enforcement.allowed,
            "policy_ids": list(enforcement.response.policy_ids),
            "reason": enforcement.reason or "permitted",
        }
        return AuditItem(
            self.settings.service_id, f"events.market.{what}", kind, object_id, details
        )

    # -- offers --------------------------------------------------------------------------

    def _offers(
        self, request_id: str, run: RunSettings, schedules: Sequence[FlexSchedule],
        now: datetime, entries: list[AuditItem],
    ) -> list[Offer]:  # fmt: skip
        offers = []
        for schedule in schedules:
            for column, node in enumerate(schedule.nodes):
                values = [row[column] for row in schedule.values]
                if any(v != 0 for v in values):  # else nothing is asked of this node
                    offer = self._offer_for(request_id, run, schedule, node, values, now, entries)
                    offers.append(offer)
        return offers

    def _offer_for(
        self, request_id: str, run: RunSettings, schedule: FlexSchedule, node: int,
        values: Sequence[float], now: datetime, entries: list[AuditItem],
    ) -> Offer:  # fmt: skip
        """The offer of the first asset at `node` that can carry it and that the PDP lets
        carry it; else the last refusal (`no_asset` when there is no asset there)."""
        variable = schedule.variable
        refused = Offer(_NO_ASSET, node, variable, reason="no_asset")
        for asset in self._assets_by_node().get(node, ()):
            offer = Offer(asset, node, variable)
            try:
                offer.form = shape(asset.template, variable, run.timing.step_s)
            except NotOfferable as error:
                refused = Offer(asset, node, variable, reason=error.code)
                continue
            bounds = slice_bounds(values, asset.template, offer.form, None)
            resource = _offer_resource(asset, node, variable, run, bounds)
            enforcement, caps = self._decide(self.settings.service_id, "offer", resource, now)
            entries.append(
                self._entry("offer", "asset", asset.asset_id, enforcement, run, request_id)
            )
            if not enforcement.allowed:
                refused = Offer(asset, node, variable, "denied", enforcement.reason)
                continue
            if caps:
                bounds = slice_bounds(values, asset.template, offer.form, caps["per_slice"])
            offer.offer = build_offer(
                f"pbgm-{request_id}-{asset.asset_id}-{variable}",
                template=asset.template,
                form=offer.form,
                bounds=bounds,
                offered_by=self.settings.offered_by,
                node=node,
                timing=run.timing,
                now=now,
            )
            violations = validate_offer(offer.offer, asset.template, now=now)
            offer.state = "ready"
            if violations:
                offer.state, offer.reason = "invalid", "offer_invalid"
                offer.violations = [v.as_dict() for v in violations]
            return offer
        return refused

    def _assets_by_node(self) -> Mapping[int, tuple[Asset, ...]]:
        """The assets of the policy group's `flexoffer` policies by `grid_node`,
        re-read when the store revision moves."""
        revision = self.policies.revision
        with self._lock:
            if revision is not None and self._assets[0] == revision:
                return self._assets[1]
        found: dict[int, list[Asset]] = {}
        for record in iter_published(self.store, policy_group=self.settings.policy_group):
            document = record.published_document or record.document
            if record.type != "flexoffer":
                continue
            try:
                template = parse_template(document.get("content") or {})
            except PbgmError:
                log.warning("flexoffer policy `%s` has an unusable template", record.id)
                continue
            if template.grid_node is not None:
                asset = Asset(record.id, template.asset_id, template)
                found.setdefault(template.grid_node, []).append(asset)
        index = {node: tuple(assets) for node, assets in found.items()}
        with self._lock:
            self._assets = (revision, index)
        return index

    # -- the market ----------------------------------------------------------------------

    def _client(self, market: str) -> MarketClient:
        with self._lock:
            client = self._clients.get(market)
            if client is None:
                client = self._clients[market] = MarketClient(self.settings.markets[market])
            return client

    def _trade(self, run: RunSettings, offers: list[Offer]) -> str | None:
        """Submit and follow the ready offers; the fallback reason when the market could
        not be reached or did not answer in time, else None."""
        ready = [o for o in offers if o.state == "ready"]
        if not ready:
            return None
        try:
            client = self._client(run.market)
        except PbgmError as error:
            log.error("market `%s` cannot be used: %s", run.market, error.message)
            for offer in ready:
                offer.state, offer.reason = "unsubmitted", "market_unconfigured"
            return "market_error"
        deadline = self.monotonic() + self._budget(run, ready)
        unreachable = self._submit(client, ready)
        self._follow(client, run, ready, deadline)
        traded = any(o.state == "assigned" for o in offers)
        if traded:
            return None
        if unreachable is not None:
            return unreachable
        return "market_timeout" if any(o.state == "timeout" for o in ready) else None

    def _budget(self, run: RunSettings, ready: Sequence[Offer]) -> float:
        """Seconds to wait: the run's timeout, at most until the first assignment
        deadline."""
        now = self.clock()
        deadlines = [o.offer.assignment_before_time for o in ready if o.offer is not None]
        until = min((d - now).total_seconds() for d in deadlines)
        return max(0.0, min(run.response_timeout_s, until))

    def _submit(self, client: MarketClient, ready: Sequence[Offer]) -> str | None:
        """Submit each offer; stop at the first sign the market is down or busy (the
        reason is returned) and leave the rest unsubmitted."""
        for index, offer in enumerate(ready):
            assert offer.offer is not None
            try:
                self._apply(client, offer, self._submit_one(client, offer.offer))
            except RestError as error:
                reason = _UNREACHABLE.get(error.code)
                if error.code == "peer_bad_response":  # taken or not: polling will tell
                    offer.state = "offered"
                    continue
                if reason is None:  # this offer's fault (a 4xx)
                    offer.state, offer.reason = "unsubmitted", error.code
                    continue
                log.warning("market `%s` cannot take offers: %s", client.name, error.message)
                for rest in ready[index:]:
                    rest.state, rest.reason = "unsubmitted", reason
                return reason
            _OFFERS.labels(state="submitted").inc()
        return None

    @staticmethod
    def _submit_one(client: MarketClient, offer: FlexOffer) -> MarketState:
        """Submit; an answer that cannot be read is followed by the same submit once
        more (the offer id is the idempotency key: the market answers a repeat as the
        first time, and takes the offer if the first never reached it)."""
        document = dump_flexoffer(offer)
        try:
            return client.submit(document)
        except RestError as error:
            if error.code != "peer_bad_response":
                raise
            return client.submit(document)

    def _follow(
        self, client: MarketClient, run: RunSettings, ready: Sequence[Offer], deadline: float
    ) -> None:
        open_offers = [o for o in ready if o.state in ("offered", "accepted")]
        while open_offers:
            remaining = deadline - self.monotonic()
            if remaining <= 0:
                break
            self.sleep(min(run.poll_interval_s, remaining))
            for offer in open_offers:
                assert offer.offer is not None
                try:
                    self._apply(client, offer, client.status(offer.offer.id))
                except RestError as error:
                    log.info("offer `%s`: %s", offer.offer.id, error.code)
            open_offers = [o for o in open_offers if o.state in ("offered", "accepted")]
        for offer in open_offers:
            self._withdraw(client, offer)

    def _withdraw(self, client: MarketClient, offer: Offer) -> None:
        assert offer.offer is not None
        offer.state, offer.reason = "timeout", "no assignment before the deadline"
        try:
            answer = client.cancel(offer.offer.id)
        except RestError as error:
            log.info("cannot withdraw offer `%s`: %s", offer.offer.id, error.code)
            return
        if answer.state in ("assigned", "executed"):
            self._apply(client, offer, answer)  # assigned in the meantime: take it after all

    def _apply(self, client: MarketClient, offer: Offer, answer: MarketState) -> None:
        """The market's word on an offer; a schedule is checked before it is taken."""
        if answer.state in ("offered", "accepted"):
            offer.state = answer.state
            return
        if answer.state in TERMINAL:
            offer.state, offer.reason = answer.state, answer.reason
            _OFFERS.labels(state=answer.state).inc()
            return
        assert offer.offer is not None and offer.form is not None
        schedule = answer.schedule or {}
        template = offer.asset.template
        violations = validate_schedule(schedule, offer.offer, template, now=self.clock())
        if violations:
            offer.state, offer.reason = "schedule_invalid", "the schedule breaks its offer"
            offer.violations = [v.as_dict() for v in violations]
            self._report(client, offer, "InvalidSchedule")
            _OFFERS.labels(state="schedule_invalid").inc()
            return
        parsed = parse_schedule(schedule, offer=offer.offer)
        interval = offer.offer.num_seconds_per_interval
        offer.traded_kw = tuple(
            offer.form.kw(s.energy_amount, interval, s.duration) for s in parsed.slices
        )
        offer.state, offer.reason = "assigned", None
        self._report(client, offer, "ValidAndPublished")
        _OFFERS.labels(state="assigned").inc()

    def _report(self, client: MarketClient, offer: Offer, status: str) -> None:
        assert offer.offer is not None
        try:
            client.report(offer.offer.id, status, offer.violations)
        except RestError as error:
            log.info("cannot report the schedule of `%s`: %s", offer.offer.id, error.code)

    # -- the result ----------------------------------------------------------------------

    def _result(
        self, request_id: str, run: RunSettings, payload: Mapping[str, Any],
        schedules: Sequence[FlexSchedule], offers: Sequence[Offer], fallback: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        traded = []
        for schedule in schedules:
            mine = [
                o for o in offers
                if o.variable == schedule.variable and o.state == "assigned" and o.traded_kw
            ]  # fmt: skip
            if not mine:
                continue
            nodes = tuple(o.node for o in mine)
            rows = tuple(
                tuple(o.traded_kw[k] for o in mine)  # type: ignore[index]
                for k in range(schedule.horizon)
            )
            traded.append(FlexSchedule(schedule.variable, nodes, rows))
        order = _active_nodes(payload, schedules)
        result = covee_result(traded, order, [s.variable for s in schedules])
        made = [o for o in offers if o.reason != "no_asset"]
        if fallback is not None:
            status = "fallback"
            result["fallback"] = {"setpoints": "zero", "ask_again": True}
            result["reason"] = fallback
        elif traded and all(o.state == "assigned" for o in offers):
            status = "assigned"
        elif traded:
            status = "partial"
        else:
            status = "rejected"
            result["reason"] = "no_offer_assigned" if made else "no_asset"
        result.update(
            status=status,
            request_id=request_id,
            market=run.market,
            offers=[o.summary() for o in offers],
        )
        return result

    def _finish(self, request_id: str, result: dict[str, Any]) -> None:
        status = result["status"]
        action = "market.fallback" if status == "fallback" else "market.result"
        keys = ("status", "reason", "market", "offers")
        details: dict[str, Any] = {k: result[k] for k in keys if k in result}
        try:
            self.store.record_audit(
                actor=self.settings.service_id,
                action=action,
                object_type="flex_request",
                object_id=request_id,
                details=details,
            )
        except Exception:
            log.exception("cannot write the audit entry of flex request `%s`", request_id)
        if status == "fallback":
            log.warning("flex request `%s`: fallback (%s)", request_id, result.get("reason"))
        self.bus.publish(
            self.settings.topic, _ENCODER.encode(result).encode(), qos=self.settings.qos
        )
        _RESULTS.labels(status=status).inc()


def _offer_resource(
    asset: Asset, node: int, variable: str, run: RunSettings, bounds: Sequence[Any]
) -> dict[str, Any]:
    return {
        "type": "flexoffer",
        "asset_id": asset.asset_id,
        "policy_id": asset.policy_id,
        "node": node,
        "variable": variable,
        "market": run.market,
        "requester": run.requester,
        "unit": asset.template.unit,
        "slices": len(bounds),
        "energy_min": min(b.lower for b in bounds),
        "energy_max": max(b.upper for b in bounds),
    }


def _active_nodes(payload: Mapping[str, Any], schedules: Sequence[FlexSchedule]) -> list[int]:
    given = payload.get("active_nodes") or payload.get("nodes")
    order: list[int] = []
    if isinstance(given, list):
        order = [n for n in given if isinstance(n, int) and not isinstance(n, bool)]
    for schedule in schedules:
        order.extend(n for n in schedule.nodes if n not in order)
    return order


def _failed(request_id: str, status: str, reason: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variable": [],
        "active_nodes": [],
        "status": status,
        "reason": reason,
        "message": message,
        "request_id": request_id,
        "offers": [],
    }
    if status == "fallback":
        out["fallback"] = {"setpoints": "zero", "ask_again": True}
    return out
