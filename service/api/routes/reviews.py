"""Reviews: a person's verdict on an output, and taking back the last one."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from service.deps import ReviewerDep, SessionDep, SettingsDep
from service.domain import ReviewIn, ReviewView
from service.domain_workbench import VerdictIn
from service.followups import after_commit_review
from service.usecases import workbench
from service.views import review_view

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReviewView)
def post_review(
    review_in: ReviewIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep, request: Request
) -> ReviewView:
    """Record a verdict (pass or fail) with failure categories from the taxonomy, a corrected
    response and a note. Refused (409) while another reviewer holds the item's claim."""
    with session.begin():
        review = workbench.record(
            session,
            settings,
            principal,
            output_id=review_in.output_id,
            submitted=VerdictIn(
                verdict=review_in.verdict.value,
                categories=review_in.categories,
                correction=review_in.correction,
                note=review_in.note,
            ),
        )
        view = review_view(review)
    after_commit_review(request, view.queue, view.verdict.value)
    return view


@router.post("/undo", response_model=ReviewView)
def undo_review(principal: ReviewerDep, session: SessionDep, settings: SettingsDep) -> ReviewView:
    """Take back your latest verdict (within RR_UNDO_MINUTES); the item is claimed for you again.
    Answers with the verdict that was removed."""
    with session.begin():
        return review_view(workbench.undo(session, settings, principal))
