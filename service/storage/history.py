"""Storing reviews, a reviewer's own verdicts, and revising a verdict later: always a new review of
kind ``revision`` that becomes the verdict, never an overwrite, so what it replaced stays in the
history. The session comes first, keyword-only arguments after, and nothing commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.reviews import ReviewKind
from service.domain_workbench import VerdictIn
from service.errors import Conflict, Forbidden
from service.storage.repository import verdict_review
from service.storage.tables import Output, Review, new_id


def add_review(
    session: Session,
    *,
    output_id: str,
    queue: str | None,
    verdict: VerdictIn,
    reviewer: str,
    user_id: str | None,
    kind: ReviewKind,
    at: datetime,
) -> Review:
    """Store one review of any kind (in the caller's transaction)."""
    review = Review(
        id=new_id(),
        output_id=output_id,
        queue=queue,
        verdict=verdict.verdict,
        categories=verdict.categories,
        correction=verdict.correction,
        note=verdict.note,
        reviewer=reviewer,
        reviewer_id=user_id,
        kind=kind.value,
        created_at=at,
    )
    session.add(review)
    session.flush()
    return review


def verdict_authors(session: Session, *, output_id: str) -> set[str | None]:
    """Who gave one of the output's verdicts (first reviews, rulings, revisions; None: no account)."""
    return set(
        session.scalars(
            select(Review.reviewer_id).where(Review.output_id == output_id, Review.counts_as_verdict)
        )
    )


def revise_verdict(
    session: Session,
    *,
    output_id: str,
    user_id: str | None,
    reviewer: str,
    verdict: VerdictIn,
    now: datetime,
    may_revise_any: bool,
) -> tuple[Review, Review]:
    """Record a revised verdict on an output that has one; returns (the revision, what it replaced).

    Only someone who gave one of the output's verdicts may revise it, or anyone ``may_revise_any``
    (an admin). The revision is dated after the verdict it replaces, so it is the latest."""
    current = verdict_review(session, output_id=output_id)
    if current is None:
        raise Conflict("this output has no verdict to revise; review it first", details={"id": output_id})
    if not may_revise_any and (
        user_id is None or user_id not in verdict_authors(session, output_id=output_id)
    ):
        raise Forbidden(
            "only a reviewer who gave this output's verdict, or an admin, may revise it",
            details={"id": output_id},
        )
    review = add_review(
        session,
        output_id=output_id,
        queue=current.queue,
        verdict=verdict,
        reviewer=reviewer,
        user_id=user_id,
        kind=ReviewKind.REVISION,
        at=max(now, current.created_at + timedelta(microseconds=1)),
    )
    return review, current


def reviews_by(
    session: Session,
    *,
    user_id: str,
    verdict: str | None = None,
    queue: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[tuple[Review, Output]]:
    """This person's reviews (every kind), newest first, with their outputs."""
    query = (
        select(Review, Output)
        .join(Output, Output.id == Review.output_id)
        .where(Review.reviewer_id == user_id)
    )
    if verdict is not None:
        query = query.where(Review.verdict == verdict)
    if queue is not None:
        query = query.where(Review.queue == queue)
    if since is not None:
        query = query.where(Review.created_at >= since)
    rows = session.execute(query.order_by(Review.created_at.desc(), Review.id.desc()).limit(limit))
    return [(review, output) for review, output in rows]


def current_verdicts(session: Session, *, output_ids: Sequence[str]) -> dict[str, str]:
    """Output id -> the id of the review that is its verdict now (the latest that counts)."""
    if not output_ids:
        return {}
    rows = session.execute(
        select(Review.output_id, Review.id)
        .where(Review.output_id.in_(list(output_ids)), Review.counts_as_verdict)
        .order_by(Review.created_at, Review.id)
    )
    return {output_id: review_id for output_id, review_id in rows}


def count_by(session: Session, *, user_id: str, since: datetime) -> int:
    """How many reviews this person gave since a moment."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Review)
            .where(Review.reviewer_id == user_id, Review.created_at >= since)
        )
        or 0
    )
