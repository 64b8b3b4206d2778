"""Reviews: a human's verdict on an output."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from service.api.deps import SessionDep
from service.api.enqueue import after_commit_review
from service.api.views import review_view
from service.domain import ReviewIn, ReviewView
from service.storage import repository as repo
from service.storage.tables import utcnow

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReviewView)
def post_review(review_in: ReviewIn, session: SessionDep, request: Request) -> ReviewView:
    """Record a verdict (pass or fail) with optional failure tags, a corrected response and a note."""
    with session.begin():
        review = repo.add_review(session, review_in=review_in, now=utcnow())
        view = review_view(review)
    after_commit_review(request, view.queue)
    return view
