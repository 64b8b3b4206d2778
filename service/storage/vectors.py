"""Repository functions that feed the nearest-neighbour indexes: embeddings in sync order.

Each reads one page after a keyset cursor (a timestamp, and an id that breaks ties between equal
timestamps), so a caller can page through any backlog and resume where it stopped. The session
comes first, arguments are keyword-only, and nothing commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from service.storage.tables import Output, Review


def _after(at: Any, key: Any, after: datetime | None, after_id: str | None) -> ColumnElement[bool] | None:
    # `at >= after` first, so the database can range-scan the timestamp index.
    if after is None:
        return None
    if after_id is None:
        return at > after
    return and_(at >= after, or_(at > after, key > after_id))


def scored_since(
    session: Session, *, after: datetime | None, after_id: str | None = None, limit: int
) -> list[tuple[str, datetime, bytes]]:
    """(id, scored_at, embedding) of outputs scored after the cursor, oldest first, with embeddings.

    Without ``after_id`` the cursor is strictly after ``after``; with it, rows at ``after`` whose
    id sorts after ``after_id`` also count.
    """
    stmt = select(Output.id, Output.scored_at, Output.embedding).where(
        Output.scored_at.is_not(None), Output.embedding.is_not(None)
    )
    cursor = _after(Output.scored_at, Output.id, after, after_id)
    if cursor is not None:
        stmt = stmt.where(cursor)
    rows = session.execute(stmt.order_by(Output.scored_at, Output.id).limit(limit))
    return [(i, at, e) for i, at, e in rows if at is not None and e is not None]  # narrows the types


def scored_window_start(session: Session, *, size: int) -> tuple[datetime, str] | None:
    """The cursor just before the ``size`` most recently scored outputs; None if there are no more."""
    row = session.execute(
        select(Output.scored_at, Output.id)
        .where(Output.scored_at.is_not(None), Output.embedding.is_not(None))
        .order_by(Output.scored_at.desc(), Output.id.desc())
        .offset(size)
        .limit(1)
    ).one_or_none()
    return None if row is None or row[0] is None else (row[0], row[1])


def reviewed_since(
    session: Session, *, after: datetime | None, after_id: str | None = None, limit: int
) -> list[tuple[str, datetime, bytes, bool]]:
    """(output id, created_at, embedding, failed) per output whose latest review is after the cursor.

    One row per output, for its latest review: ``failed`` is whether that verdict is "fail". Rows
    are ordered by that review's created_at, then output id (which ``after_id`` refers to).
    Outputs without an embedding are left out.
    """
    ranked = select(
        Review.output_id,
        Review.created_at,
        Review.verdict,
        func.row_number()
        .over(partition_by=Review.output_id, order_by=(Review.created_at.desc(), Review.id.desc()))
        .label("rank"),
    ).where(Review.counts_as_verdict)
    if after is not None:
        # Only outputs reviewed since the cursor can have their latest review after it.
        ranked = ranked.where(
            Review.output_id.in_(select(Review.output_id).where(Review.created_at >= after))
        )
    latest = ranked.subquery()
    stmt = (
        select(latest.c.output_id, latest.c.created_at, Output.embedding, latest.c.verdict)
        .join(Output, Output.id == latest.c.output_id)
        .where(latest.c.rank == 1, Output.embedding.is_not(None))
    )
    cursor = _after(latest.c.created_at, latest.c.output_id, after, after_id)
    if cursor is not None:
        stmt = stmt.where(cursor)
    rows = session.execute(stmt.order_by(latest.c.created_at, latest.c.output_id).limit(limit))
    return [(i, at, e, verdict == "fail") for i, at, e, verdict in rows if e is not None]
