"""FlexOffers over REST: validate against their template policy, record the outcome.

- `POST /api/v1/flexoffers?policy_id=<base64>`: the body is a FlexOffer (any
  spelling `pbgm.flexoffer` reads). It is checked against the `flexoffer`
  policy named (or the only one the caller may read) at the server's time, and
  recorded as `accepted`, or `rejected` with every violation as a reason
  (`{path, code, message}`, codes from `pbgm.flexoffer`). `201` either way: the
  offer was received and has a state; an offer without an `id` cannot be
  recorded and is `422`.
- `GET /api/v1/flexoffers/<base64 id>`: the offer, its state and its schedules.
- `POST /api/v1/flexoffers/<base64 id>/schedule`: a schedule (assignment) for a
  recorded offer, checked against the offer and its template, recorded as
  `accepted` (the offer becomes `assigned`) or `rejected` with the reasons.

An offer is visible to callers who may read its template policy (Access Point
grants); to anyone else it does not exist. Offer ids are global, like policy ids:
submitting an offer whose id is taken is `409 already_exists` whoever holds it,
and the answer says nothing about that offer or its template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, url_for

from pbgm.access import AccessPoint, ServedPolicy, decode_id, encode_id
from pbgm.api._http import actor, json_object, json_response, path_id, principal, query
from pbgm.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    Problem,
    ValidationError,
)
from pbgm.flexoffer import SCHEDULABLE_STATES, validate_offer, validate_schedule
from pbgm.model import Clock
from pbgm.store.base import FlexOfferRecord, ScheduleRecord, Store

MAX_ID = 255


def _reasons(violations: Sequence[Problem]) -> tuple[dict[str, str], ...]:
    return tuple(v.as_dict() for v in violations)


def offer_data(record: FlexOfferRecord, schedules: Sequence[ScheduleRecord] = ()) -> dict[str, Any]:
    return {
        "id": record.id,
        "policy_id": record.policy_id,
        "state": record.state,
        "reasons": list(record.reasons),
        "offered_by": record.offered_by,
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "schedules": [schedule_data(s) for s in schedules],
    }


def schedule_data(schedule: ScheduleRecord) -> dict[str, Any]:
    return {
        "offer_id": schedule.offer_id,
        "number": schedule.number,
        "state": schedule.state,
        "reasons": list(schedule.reasons),
        "created_by": schedule.created_by,
        "created_at": schedule.created_at.isoformat(),
        "schedule": schedule.document,
    }


class FlexOfferDesk:
    """Finds templates and offers the caller may see, validates, records."""

    def __init__(self, store: Store, access: AccessPoint, clock: Clock) -> None:
        self.store, self.access, self.clock = store, access, clock

    def template(self, policy_id: str | None) -> ServedPolicy:
        readable = self.access.readable_policies(principal(), policy_type="flexoffer")
        if policy_id is not None:
            found = [s for s in readable if s.id == policy_id]
            if not found:
                raise NotFoundError(f"flexoffer policy `{policy_id}` not found")
            return found[0]
        if len(readable) != 1:
            raise InvalidInputError(
                "name the template policy with `policy_id` (base64)", code="policy_required"
            )
        return readable[0]

    def offer(self, encoded: str) -> tuple[FlexOfferRecord, ServedPolicy]:
        offer_id = path_id(encoded, "offer_id")
        try:
            record = self.store.get_flexoffer(offer_id)
            return record, self.template(record.policy_id)
        except NotFoundError:
            raise NotFoundError(f"flexoffer `{offer_id}` not found") from None

    def submit(self, document: dict[str, Any], template: ServedPolicy) -> FlexOfferRecord:
        offer_id = document.get("id")
        if not isinstance(offer_id, str) or not 0 < len(offer_id) <= MAX_ID:
            raise ValidationError([Problem("$.id", "missing_field", "an offer needs an `id`")])
        content = template.document.get("content") or {}
        violations = validate_offer(document, content, now=self.clock())
        state = "rejected" if violations else "accepted"
        record = FlexOfferRecord(offer_id, template.id, state, document, _reasons(violations))
        try:
            return self.store.add_flexoffer(record, actor=actor())
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"offer id `{offer_id}` is taken: offer ids are unique across every policy group"
            ) from None

    def schedule(
        self, record: FlexOfferRecord, template: ServedPolicy, document: dict[str, Any]
    ) -> ScheduleRecord:
        if record.state not in SCHEDULABLE_STATES:
            message = f"the offer is `{record.state}`: only an accepted offer can be scheduled"
            violations = [Problem("$", "state_not_schedulable", message)]
        else:
            offer = {**record.document, "state": record.state}
            content = template.document.get("content") or {}
            violations = validate_schedule(document, offer, content, now=self.clock())
        state = "rejected" if violations else "accepted"
        return self.store.add_flexoffer_schedule(
            record.id, document, state=state, reasons=_reasons(violations), actor=actor()
        )


def flexoffers_blueprint(store: Store, access: AccessPoint, clock: Clock) -> Blueprint:
    blueprint = Blueprint("flexoffers", __name__, url_prefix="/api/v1")
    desk = FlexOfferDesk(store, access, clock)

    @blueprint.post("/flexoffers", endpoint="submit")
    def submit() -> Response:
        encoded = query(["policy_id"]).get("policy_id")
        policy_id = None if encoded is None else decode_id(encoded, what="policy_id")
        document = json_object()
        record = desk.submit(document, desk.template(policy_id))
        location = url_for("flexoffers.get", offer_id=encode_id(record.id))
        return json_response(offer_data(record), 201, headers={"Location": location})

    @blueprint.get("/flexoffers/<offer_id>", endpoint="get")
    def get(offer_id: str) -> Response:
        query(())
        record, _ = desk.offer(offer_id)
        return json_response(offer_data(record, store.list_flexoffer_schedules(record.id)))

    @blueprint.post("/flexoffers/<offer_id>/schedule", endpoint="schedule")
    def schedule(offer_id: str) -> Response:
        query(())
        record, template = desk.offer(offer_id)
        made = desk.schedule(record, template, json_object())
        return json_response(schedule_data(made), 201)

    return blueprint
