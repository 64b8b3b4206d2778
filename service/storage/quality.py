"""Repository functions for quality control: blind double reviews, their agreement data, and the
adjudication of disagreements. The session comes first, keyword-only arguments after, and nothing
commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.reviews import QCState, ReviewKind
from service.domain_workbench import VerdictIn
from service.errors import Conflict
from service.storage.history import add_review
from service.storage.tables import Output, Pick, Review


def adjudicate(
    session: Session, *, output_id: str, user_id: str, reviewer: str, verdict: VerdictIn, now: datetime
) -> Review:
    """An admin's ruling on a disputed double review; it becomes the item's verdict."""
    pick = session.scalars(select(Pick).where(Pick.output_id == output_id)).one_or_none()
    if pick is None or pick.qc_state != QCState.DISPUTED:
        raise Conflict("only disputed double reviews are adjudicated", details={"id": output_id})
    pick.qc_state = QCState.RESOLVED.value
    review = add_review(
        session,
        output_id=output_id,
        queue=pick.queue,
        verdict=verdict,
        reviewer=reviewer,
        user_id=user_id,
        kind=ReviewKind.ADJUDICATION,
        at=now,
    )
    return review


def disputed(session: Session, *, limit: int = 200) -> list[tuple[Pick, Output]]:
    """The adjudication queue: double reviews whose verdicts disagree, oldest first."""
    rows = session.execute(
        select(Pick, Output)
        .join(Output, Output.id == Pick.output_id)
        .where(Pick.qc_state == QCState.DISPUTED.value)
        .order_by(Pick.reviewed_at)
        .limit(limit)
    )
    return [(p, o) for p, o in rows]


def double_reviews(session: Session, *, queue: str | None = None) -> list[tuple[Review, Review]]:
    """Every (first, second) verdict pair from blind double review, for agreement statistics."""
    first = aliased(Review)
    query = (
        select(first, Review)
        .join(first, (first.output_id == Review.output_id) & (first.kind == ReviewKind.PRIMARY.value))
        .where(Review.kind == ReviewKind.QC.value)
    )
    if queue is not None:
        query = query.where(Review.queue == queue)
    return [(primary, second) for primary, second in session.execute(query)]


def count_qc_waiting(session: Session, *, queue: str | None = None) -> int:
    where = [Pick.qc_state == QCState.WAITING.value]
    if queue is not None:
        where.append(Pick.queue == queue)
    return session.scalar(select(func.count()).select_from(Pick).where(*where)) or 0


def count_disputed(session: Session) -> int:
    """How many double reviews wait for an admin's ruling."""
    return (
        session.scalar(select(func.count()).select_from(Pick).where(Pick.qc_state == QCState.DISPUTED.value))
        or 0
    )
