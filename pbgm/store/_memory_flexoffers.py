"""The memory store's FlexOffers and their schedules.

A mixin of `pbgm.store.memory.MemoryStore` (through `MemoryPrincipals`), kept
apart so that each module holds one concept. FlexOffers are audited but do not
move the revision: they are not part of what a PDP evaluates.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.model import Clock
from pbgm.store import _common as common
from pbgm.store import _flexoffer_rules as flexoffer_rules
from pbgm.store import _query_rules as query_rules
from pbgm.store._memory_state import State
from pbgm.store.base import AuditEntry, FlexOfferRecord, ScheduleRecord


def _out(offer: FlexOfferRecord) -> FlexOfferRecord:
    return replace(offer, document=copy.deepcopy(offer.document))


def _out_schedule(schedule: ScheduleRecord) -> ScheduleRecord:
    return replace(schedule, document=copy.deepcopy(schedule.document))


class MemoryFlexOffers:
    """FlexOffer operations of the memory store."""

    _clock: Clock
    _lock: threading.RLock

    def _live(self) -> State:
        raise NotImplementedError

    def _audit_only(
        self, at: datetime, actor: str, action: str, kind: str, object_id: str, details: Any
    ) -> AuditEntry:
        raise NotImplementedError

    def _offer(self, offer_id: str) -> FlexOfferRecord:
        offer = self._live().flexoffers.get(offer_id)
        if offer is None:
            raise common.not_found("flexoffer", offer_id)
        return offer

    def list_flexoffers(
        self,
        *,
        policy_ids: Collection[str] | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[FlexOfferRecord]:
        offset, limit = query_rules.check_page(offset, limit)
        with self._lock:
            found = [
                o
                for o in self._live().flexoffers.values()
                if query_rules.matches_offer(o, policy_ids, state)
            ]
        found.sort(key=lambda o: o.id)
        found.sort(key=lambda o: o.created_at or common.EPOCH, reverse=True)
        return [_out(o) for o in found[offset : offset + limit]]

    def add_flexoffer(self, offer: FlexOfferRecord, *, actor: str) -> FlexOfferRecord:
        with self._lock:
            at = common.now(self._clock)
            offer = flexoffer_rules.check_flexoffer(offer, actor, at)
            state = self._live()
            if offer.id in state.flexoffers:
                raise common.already_exists("flexoffer", offer.id)
            state.flexoffers[offer.id] = offer
            state.schedules[offer.id] = []
            details = flexoffer_rules.flexoffer_details(offer)
            self._audit_only(at, actor, "flexoffer.add", "flexoffer", offer.id, details)
            return _out(offer)

    def get_flexoffer(self, offer_id: str) -> FlexOfferRecord:
        with self._lock:
            return _out(self._offer(offer_id))

    def add_flexoffer_schedule(
        self,
        offer_id: str,
        document: Mapping[str, Any],
        *,
        state: str,
        reasons: Sequence[Mapping[str, str]] = (),
        actor: str,
    ) -> ScheduleRecord:
        doc, checked = flexoffer_rules.check_schedule(document, state, reasons, actor)
        with self._lock:
            at = common.now(self._clock)
            offer = self._offer(offer_id)
            live = self._live()
            number = len(live.schedules[offer_id]) + 1
            schedule = ScheduleRecord(offer_id, number, state, doc, checked, actor, at)
            live.schedules[offer_id].append(schedule)
            if state == "accepted":
                live.flexoffers[offer_id] = replace(offer, state="assigned", updated_at=at)
            details = flexoffer_rules.schedule_details(number, state, checked)
            self._audit_only(at, actor, "flexoffer.schedule", "flexoffer", offer_id, details)
            return _out_schedule(schedule)

    def list_flexoffer_schedules(self, offer_id: str) -> list[ScheduleRecord]:
        with self._lock:
            self._offer(offer_id)
            return [_out_schedule(s) for s in self._live().schedules[offer_id]]
