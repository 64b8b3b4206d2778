"""Turning stored rows into the API's models (shared by the REST routes and the review pages)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.domain import (
    OutputStatus,
    OutputSummary,
    OutputView,
    PickView,
    QueueItem,
    ReviewView,
    Verdict,
)
from service.hygiene import printable
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.tables import Output, Pick, Review


def pick_view(pick: Pick) -> PickView:
    return PickView(
        queue=pick.queue,
        reason=pick.reason,
        stratum=pick.stratum,
        score=pick.score,
        inclusion_probability=pick.inclusion_probability,
        cluster=pick.cluster,
        duplicates=pick.duplicates or [],
        picked_at=pick.picked_at,
        reviewed=pick.reviewed_at is not None,
    )


def review_view(review: Review) -> ReviewView:
    return ReviewView(
        id=review.id,
        output_id=review.output_id,
        verdict=Verdict(review.verdict),
        categories=review.categories or [],
        correction=review.correction,
        note=review.note,
        reviewer=review.reviewer,
        kind=review.kind,  # type: ignore[arg-type]
        queue=review.queue,
        created_at=review.created_at,
    )


def output_summary(output: Output, *, with_signals: bool) -> OutputSummary:
    """An output in a listing; its signals only when asked for (they were loaded only then)."""
    return OutputSummary(
        id=output.id,
        external_id=output.external_id,
        app=output.app,
        queue=output.queue,
        status=OutputStatus(output.status),
        score=output.score,
        scorer_version=output.scorer_version,
        signals=(output.signals or {}) if with_signals else None,
    )


def output_view(session: Session, output: Output, *, hide_reviews: bool = False) -> OutputView:
    """An output as the API shows it; ``hide_reviews`` for a reviewer who owes it a blind verdict."""
    pick = queues_repo.pick_for(session, output_id=output.id)
    return OutputView(
        id=output.id,
        external_id=output.external_id,
        app=output.app,
        model=output.model,
        status=OutputStatus(output.status),
        received_at=output.received_at,
        scored_at=output.scored_at,
        prompt=printable(output.prompt),
        messages=printable(output.messages),
        response=printable(output.response),
        finish_reason=output.finish_reason,
        samples=printable(output.samples or []),
        sampling=output.sampling,
        error=printable(output.error),
        metadata=printable(output.meta or {}),
        signals=output.signals or {},
        score=output.score,
        scorer_version=output.scorer_version,
        drivers=output.drivers or [],
        pick=pick_view(pick) if pick is not None else None,
        reviews=[]
        if hide_reviews
        else [review_view(r) for r in repo.reviews_for(session, output_id=output.id)],
        reviews_hidden=hide_reviews,
    )


def queue_item(pick: Pick, output: Output) -> QueueItem:
    return QueueItem(
        output_id=output.id,
        external_id=output.external_id,
        app=output.app,
        model=output.model,
        prompt=output.prompt,
        response=output.response,
        score=pick.score,
        reason=pick.reason,
        stratum=pick.stratum,
        inclusion_probability=pick.inclusion_probability,
        cluster=pick.cluster,
        duplicates=len(pick.duplicates or []),
        picked_at=pick.picked_at,
    )
