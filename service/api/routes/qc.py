"""Quality control: agreement of blind double reviews, and the adjudication queue."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from service.api.routes.queues import queue_config
from service.deps import AdjudicatorDep, ReaderDep, SessionDep, SettingsDep
from service.domain import ReviewView
from service.domain_queues import QueueItem
from service.domain_workbench import AdjudicationIn, QcReport, VerdictIn
from service.followups import after_commit_review
from service.storage import quality
from service.storage import repository as repo
from service.usecases import workbench
from service.views import queue_item, review_view

router = APIRouter(tags=["quality control"])


@router.get("/qc", response_model=QcReport)
def qc(_: ReaderDep, session: SessionDep, settings: SettingsDep, queue: str | None = Query(None)) -> QcReport:
    """Percent agreement and Cohen's kappa of blind double reviews: overall, per reviewer pair and
    per failure category. An unknown queue is a 404, not an empty report."""
    if queue is not None:
        queue_config(settings, queue)
    return workbench.qc_report(session, settings, queue=queue)


class Dispute(QueueItem):
    reviews: list[ReviewView]


@router.get("/adjudications", response_model=list[Dispute])
def disputes(_: AdjudicatorDep, session: SessionDep) -> list[Dispute]:
    """Double reviews whose verdicts disagree, oldest first, with both verdicts."""
    return [
        Dispute(
            **queue_item(pick, output).model_dump(),
            reviews=[review_view(r) for r in repo.reviews_for(session, output_id=output.id)],
        )
        for pick, output in quality.disputed(session)
    ]


@router.post("/adjudications/{output_id}", response_model=ReviewView, status_code=201)
def adjudicate(
    output_id: str,
    ruling: AdjudicationIn,
    principal: AdjudicatorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ReviewView:
    """An admin's ruling on a disputed item; it becomes the item's verdict."""
    with session.begin():
        review = workbench.adjudicate(
            session,
            settings,
            principal,
            output_id=output_id,
            submitted=VerdictIn(
                verdict=ruling.verdict.value,
                categories=ruling.categories,
                correction=ruling.correction,
                note=ruling.note,
            ),
        )
        view = review_view(review)
    after_commit_review(request, view.queue, view.verdict.value)
    return view
