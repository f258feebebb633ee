"""FlexOffers: the recorded offers and their states, and an uploaded offer checked
against a template policy with every violation listed (nothing is recorded)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from pbgm.errors import PbgmError, Problem, ValidationError
from pbgm.flexoffer import validate_offer
from pbgm.policy import load_document
from pbgm.store.base import PolicyQuery
from pbgm_admin._gui import Gui
from pbgm_admin._views_policies import page_number

PAGE_SIZE = 50
MAX_OFFER_BYTES = 1024 * 1024
STATES = ("accepted", "rejected", "assigned")


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    def templates() -> list[str]:
        seen = gui.visibility()
        query = PolicyQuery(
            visible_groups=seen.groups, visible_ids=seen.ids, policy_type="flexoffer"
        )
        return [r.id for r in gui.store.page_policies(query, limit=1000).records]

    @blueprint.get("/flexoffers", endpoint="flexoffers")
    def flexoffers() -> str:
        readable = templates()
        state = request.args.get("state") or None
        number = page_number(request.args.get("page"))
        offers = gui.store.list_flexoffers(
            policy_ids=None if gui.is_global_admin() else set(readable),
            state=state if state in STATES else None,
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        return render_template(
            "flexoffers.html",
            offers=offers,
            state=state or "",
            states=STATES,
            number=number,
            more=len(offers) == PAGE_SIZE,
        )

    @blueprint.get("/flexoffers/validate", endpoint="validate_offer_form")
    def validate_offer_form() -> str:
        return render_template("validate_offer.html", templates=templates(), chosen="", text="")

    @blueprint.post("/flexoffers/validate", endpoint="validate_offer")
    def validate_offer_view() -> tuple[str, int]:
        policy_id = request.form.get("policy_id", "")
        upload = request.files.get("offer")
        raw = (
            upload.read(MAX_OFFER_BYTES + 1)
            if upload is not None and upload.filename
            else request.form.get("offer_text", "").encode()
        )
        text = raw.decode("utf-8", errors="replace")
        values = {"templates": templates(), "chosen": policy_id, "text": text}
        try:
            record = gui.store.get_policy(policy_id)
            if record.type != "flexoffer" or record.published_document is None:
                raise ValidationError(
                    [
                        Problem(
                            "$.policy_id",
                            "not_a_template",
                            f"`{policy_id}` is not a published flexoffer policy",
                        )
                    ]
                )
            offer = load_document(raw, source="offer", max_bytes=MAX_OFFER_BYTES)
            violations = validate_offer(
                offer, record.published_document.get("content") or {}, now=gui.now()
            )
        except ValidationError as error:
            return render_template(
                "validate_offer.html", violations=list(error.problems), checked=True, **values
            ), 422
        except PbgmError as error:
            return render_template(
                "validate_offer.html",
                violations=[Problem("$", error.code, error.message)],
                checked=True,
                **values,
            ), 422
        status = 200 if not violations else 422
        return render_template(
            "validate_offer.html", violations=violations, checked=True, **values
        ), status
