"""FlexOffers and their schedules in the SQL store.

Audited in the same transaction, but the revision is not bumped: FlexOffers are
not part of what a PDP evaluates. A schedule locks its offer's row first (on
SQLite the write transaction already serialises writers), so two schedules for
one offer get consecutive numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pbgm.store import _common as common
from pbgm.store import _flexoffer_rules as flexoffer_rules
from pbgm.store import _query_rules as query_rules
from pbgm.store.base import FlexOfferRecord, ScheduleRecord
from pbgm.store.sql._base import SqlBase
from pbgm.store.sql.tables import FlexOfferRow, FlexOfferScheduleRow


def _to_offer(row: FlexOfferRow) -> FlexOfferRecord:
    return FlexOfferRecord(
        id=row.id,
        policy_id=row.policy_id,
        state=row.state,
        document=row.document,
        reasons=tuple(dict(r) for r in row.reasons),
        offered_by=row.offered_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _to_schedule(row: FlexOfferScheduleRow) -> ScheduleRecord:
    return ScheduleRecord(
        offer_id=row.offer_id,
        number=row.number,
        state=row.state,
        document=row.document,
        reasons=tuple(dict(r) for r in row.reasons),
        created_by=row.created_by,
        created_at=row.created_at,
    )


class SqlFlexOffers(SqlBase):
    """FlexOffer operations of `SqlStore`."""

    @staticmethod
    def _offer_row(session: Session, offer_id: str, *, lock: bool = False) -> FlexOfferRow:
        query = select(FlexOfferRow).where(FlexOfferRow.id == offer_id)
        row = session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            raise common.not_found("flexoffer", offer_id)
        return row

    def add_flexoffer(self, offer: FlexOfferRecord, *, actor: str) -> FlexOfferRecord:
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            offer = flexoffer_rules.check_flexoffer(offer, actor, at)
            if session.get(FlexOfferRow, offer.id) is not None:
                raise common.already_exists("flexoffer", offer.id)
            session.add(
                FlexOfferRow(
                    id=offer.id,
                    policy_id=offer.policy_id,
                    state=offer.state,
                    document=offer.document,
                    reasons=list(offer.reasons),
                    offered_by=offer.offered_by,
                    created_at=at,
                    updated_at=at,
                )
            )
            details = flexoffer_rules.flexoffer_details(offer)
            self._audit(session, at, actor, "flexoffer.add", "flexoffer", offer.id, details)
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
        query = select(FlexOfferRow)
        if policy_ids is not None:
            query = query.where(FlexOfferRow.policy_id.in_(sorted(policy_ids)))
        if state is not None:
            query = query.where(FlexOfferRow.state == state)
        by_id = FlexOfferRow.id
        with self._tx(write=False) as session:
            if session.get_bind().dialect.name == "postgresql":
                by_id = FlexOfferRow.id.collate("C")  # type: ignore[assignment]
            query = query.order_by(FlexOfferRow.created_at.desc(), by_id)
            rows = session.scalars(query.offset(offset).limit(limit))
            return [_to_offer(row) for row in rows]

    def get_flexoffer(self, offer_id: str) -> FlexOfferRecord:
        with self._tx(write=False) as session:
            return _to_offer(self._offer_row(session, offer_id))

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
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            offer = self._offer_row(session, offer_id, lock=True)
            last = session.scalar(
                select(func.max(FlexOfferScheduleRow.number)).where(
                    FlexOfferScheduleRow.offer_id == offer_id
                )
            )
            row = FlexOfferScheduleRow(
                offer_id=offer_id,
                number=(last or 0) + 1,
                state=state,
                document=doc,
                reasons=list(checked),
                created_by=actor,
                created_at=at,
            )
            session.add(row)
            if state == "accepted":
                offer.state, offer.updated_at = "assigned", at
            details = flexoffer_rules.schedule_details(row.number, state, checked)
            self._audit(session, at, actor, "flexoffer.schedule", "flexoffer", offer_id, details)
            session.flush()
            return _to_schedule(row)

    def list_flexoffer_schedules(self, offer_id: str) -> list[ScheduleRecord]:
        query = (
            select(FlexOfferScheduleRow)
            .where(FlexOfferScheduleRow.offer_id == offer_id)
            .order_by(FlexOfferScheduleRow.number)
        )
        with self._tx(write=False) as session:
            self._offer_row(session, offer_id)
            return [_to_schedule(row) for row in session.scalars(query)]
