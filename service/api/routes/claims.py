"""Claims: an item handed to one reviewer under a lease, so two people never judge it at once."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service.api.routes.queues import queue_config
from service.deps import ItemFilterDep, ReviewerDep, SessionDep, SettingsDep
from service.domain_workbench import ClaimView
from service.errors import Conflict
from service.storage import reviewing
from service.storage.repository import get_output
from service.storage.tables import utcnow
from service.usecases import workbench
from service.views import queue_item

router = APIRouter(tags=["claims"])


@router.post(
    "/queues/{name}/claims",
    response_model=ClaimView,
    responses={204: {"description": "Nothing is waiting for this reviewer."}},
)
def claim_next(
    name: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep, item_filter: ItemFilterDep
) -> ClaimView | Response:
    """Claim the next item for you: blind second reviews first, then the most likely failures (only
    among the items the filter keeps, when one is given)."""
    config = queue_config(settings, name)
    with session.begin():
        pick = workbench.claim_next(session, settings, principal, queue=config, item_filter=item_filter)
        if pick is None or pick.claimed_until is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        output = get_output(session, output_id=pick.output_id)
        return ClaimView(
            item=queue_item(pick, output),
            mode="review" if pick.reviewed_at is None else "second_review",
            claimed_until=pick.claimed_until,
        )


@router.post("/outputs/{output_id}/claim", response_model=ClaimView)
def claim_item(
    output_id: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> ClaimView:
    """Claim one item; 409 when another reviewer holds it or it needs no verdict."""
    with session.begin():
        claim = reviewing.open_item(
            session, output_id=output_id, user_id=principal.id, now=utcnow(), lease=workbench.lease(settings)
        )
        if claim.pick is None or claim.mode not in ("review", "second_review"):
            raise Conflict(f"this item needs no verdict ({claim.mode})", details={"mode": claim.mode})
        if not claim.held or claim.until is None:
            raise Conflict(
                f"{claim.holder} is reviewing this item",
                details={
                    "holder": claim.holder,
                    "claimed_until": claim.until.isoformat() if claim.until else None,
                },
            )
        output = get_output(session, output_id=output_id)
        return ClaimView(item=queue_item(claim.pick, output), mode=claim.mode, claimed_until=claim.until)


@router.delete("/outputs/{output_id}/claim", status_code=status.HTTP_204_NO_CONTENT)
def release_item(output_id: str, principal: ReviewerDep, session: SessionDep) -> Response:
    """Give the item back to the queue without a verdict."""
    with session.begin():
        get_output(session, output_id=output_id)
        reviewing.release(session, output_id=output_id, user_id=principal.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/outputs/{output_id}/skip", status_code=status.HTTP_204_NO_CONTENT)
def skip_item(output_id: str, principal: ReviewerDep, session: SessionDep) -> Response:
    """Pass on an item: it goes back to the queue and you are not shown it again."""
    with session.begin():
        reviewing.skip(session, output_id=output_id, user_id=principal.id, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
