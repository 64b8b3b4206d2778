"""Reviews: a person's verdict on an output, taking back the last one, revising a past one, and a
reviewer's own work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from service.deps import ReviewerDep, SessionDep, SettingsDep
from service.domain import ReviewIn, ReviewView, Verdict
from service.domain_workbench import MyWork, VerdictIn
from service.followups import after_commit_review
from service.storage.tables import Review
from service.usecases import my_work, workbench
from service.views import review_view

router = APIRouter(prefix="/reviews", tags=["reviews"])


def submitted(review_in: ReviewIn) -> VerdictIn:
    """The verdict part of a review as submitted, for the use cases to check."""
    return VerdictIn(
        verdict=review_in.verdict.value,
        categories=review_in.categories,
        correction=review_in.correction,
        note=review_in.note,
    )


def stored(session: Session, request: Request, write: Callable[[], Review]) -> ReviewView:
    """Store a verdict with ``write`` in one transaction, then run what follows a committed review."""
    with session.begin():
        view = review_view(write())
    after_commit_review(request, view.queue, view.verdict.value)
    return view


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReviewView)
def post_review(
    review_in: ReviewIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep, request: Request
) -> ReviewView:
    """Record a verdict (pass or fail) with failure categories from the taxonomy, a corrected
    response and a note. Refused (409) while another reviewer holds the item's claim."""
    return stored(
        session,
        request,
        lambda: workbench.record(
            session, settings, principal, output_id=review_in.output_id, submitted=submitted(review_in)
        ),
    )


@router.post("/undo", response_model=ReviewView)
def undo_review(principal: ReviewerDep, session: SessionDep, settings: SettingsDep) -> ReviewView:
    """Take back your latest verdict (within RR_UNDO_MINUTES); the item is claimed for you again.
    Answers with the verdict that was removed."""
    with session.begin():
        return review_view(workbench.undo(session, settings, principal))


@router.post("/revisions", status_code=status.HTTP_201_CREATED, response_model=ReviewView)
def revise_review(
    review_in: ReviewIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep, request: Request
) -> ReviewView:
    """Revise an output's verdict: a new review of kind `revision` that is the verdict from now on;
    the one it replaces stays in the output's history. Only a reviewer who gave one of the output's
    verdicts, or an admin, may revise it (403); an output with no verdict yet is refused (409)."""
    return stored(
        session,
        request,
        lambda: my_work.revise(
            session, settings, principal, output_id=review_in.output_id, submitted=submitted(review_in)
        ),
    )


@router.get("/mine", response_model=MyWork)
def my_reviews(
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    verdict: Verdict | None = None,
    queue: str | None = None,
    period: my_work.Period = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MyWork:
    """Your own reviews, newest first (filter by verdict, queue and period: today, this week from
    Monday UTC, or all), how many you gave today and this week, and what is left of each queue's
    day. `current` says whether a review is still its output's verdict."""
    with session.begin():
        return my_work.my_work(
            session,
            settings,
            principal,
            verdict=verdict.value if verdict is not None else None,
            queue=queue,
            period=period,
            limit=limit,
        )
