"""Rules for FlexOffer records and their schedules, shared by both stores.

A FlexOffer's state and reasons are what the audit log and its callers read back,
so both stores accept the same states and the same reason shape, and keep the
same private JSON copy of each document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.errors import InvalidInputError
from pbgm.flexoffer import STATES
from pbgm.store._common import check_id, check_text, to_json
from pbgm.store.base import FlexOfferRecord

FLEXOFFER_STATES = STATES
"""The states of the FlexOffer specification, as `pbgm.flexoffer` names them."""
SCHEDULE_STATES = ("accepted", "rejected")


def check_reasons(reasons: Any) -> tuple[dict[str, str], ...]:
    """Reasons of a state: each `{path, code, message}`, all strings."""
    checked = []
    for reason in reasons:
        if not isinstance(reason, Mapping) or set(reason) != {"path", "code", "message"}:
            raise InvalidInputError("a reason has exactly `path`, `code` and `message`")
        checked.append({key: check_text(reason[key], f"reason {key}") for key in reason})
    return tuple(checked)


def check_flexoffer(offer: FlexOfferRecord, actor: str, at: datetime) -> FlexOfferRecord:
    """Ids, state and reasons checked; the document a private JSON copy; times filled in."""
    check_id(actor, "actor")
    check_id(offer.id, "flexoffer id")
    check_id(offer.policy_id, "flexoffer policy id")
    if offer.state not in FLEXOFFER_STATES:
        raise InvalidInputError(f"unknown flexoffer state `{offer.state}`")
    document = to_json(offer.document)
    if not isinstance(document, dict):
        raise InvalidInputError("a flexoffer document must be a JSON object")
    return replace(
        offer,
        document=document,
        reasons=check_reasons(offer.reasons),
        offered_by=offer.offered_by or actor,
        created_at=at,
        updated_at=at,
    )


def check_schedule(
    document: Any, state: str, reasons: Any, actor: str
) -> tuple[dict[str, Any], tuple[dict[str, str], ...]]:
    """The schedule document as a private JSON copy, and its checked reasons."""
    check_id(actor, "actor")
    if state not in SCHEDULE_STATES:
        raise InvalidInputError(f"unknown schedule state `{state}`: accepted or rejected")
    copy = to_json(document)
    if not isinstance(copy, dict):
        raise InvalidInputError("a schedule document must be a JSON object")
    return copy, check_reasons(reasons)


def schedule_details(
    number: int, state: str, reasons: tuple[dict[str, str], ...]
) -> dict[str, Any]:
    """What the audit log says about a recorded schedule."""
    return {"schedule": number, "state": state, "reasons": [reason["code"] for reason in reasons]}


def flexoffer_details(offer: FlexOfferRecord) -> dict[str, Any]:
    """What the audit log says about a recorded FlexOffer."""
    return {
        "policy_id": offer.policy_id,
        "state": offer.state,
        "reasons": [reason["code"] for reason in offer.reasons],
    }
