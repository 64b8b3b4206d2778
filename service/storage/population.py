"""What a queue's estimates read: its traffic with verdicts and how each output was picked, its
selection runs' reviewed picks and progress, and reviews per day. The session comes first,
keyword-only arguments after, and nothing commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from core import estimate
from service.domain import ESTIMATED as COUNTED
from service.storage.repository import latest_verdicts
from service.storage.tables import Output, Pick, Review, Skip


class PopulationRow(NamedTuple):
    """One scored, non-junk output of a queue as its estimates see it."""

    verdict: str | None
    stratum: str | None  # its pick's; None: never picked
    received_at: datetime
    reviewed_at: datetime | None  # its pick's first review
    app: str
    model: str | None
    routed: bool  # an audit member that routing chose too
    passed: bool  # ... and that routing's score order has reached
    inclusion_probability: float | None  # its pick's
    output_id: str
    skipped: bool  # a reviewer skipped it
    score: float | None  # its score now: a sampled member's is blind (``workers.training``)


def estimate_population(session: Session, *, queue: str) -> list[PopulationRow]:
    """Every scored, non-junk output of a queue: the traffic its failure-rate estimate is about."""
    latest = latest_verdicts()
    rows = session.execute(
        select(
            latest.c.verdict,
            Pick.stratum,
            Output.received_at,
            Pick.reviewed_at,
            Output.app,
            Output.model,
            Pick.routed_at,
            Pick.passed_at,
            Pick.inclusion_probability,
            Output.id,
            exists().where(Skip.output_id == Output.id),
            Output.score,
        )
        .select_from(Output)
        .outerjoin(latest, latest.c.output_id == Output.id)
        .outerjoin(Pick, Pick.output_id == Output.id)
        .where(
            Output.queue == queue,
            Output.status.in_(COUNTED),
        )
    )
    return [
        PopulationRow(
            verdict,
            stratum,
            received,
            reviewed,
            app,
            model,
            routed is not None,
            passed is not None,
            p,
            oid,
            skipped,
            score,
        )
        for verdict, stratum, received, reviewed, app, model, routed, passed, p, oid, skipped, score in rows
    ]


def recent_embeddings(session: Session, *, queue: str, limit: int) -> list[tuple[str, bytes, str]]:
    """(id, embedding, prompt) of the queue's latest ``limit`` scored, non-junk outputs, newest first."""
    return [
        (oid, vector, prompt)
        for oid, vector, prompt in session.execute(
            select(Output.id, Output.embedding, Output.prompt)
            .where(Output.queue == queue, Output.status.in_(COUNTED), Output.embedding.is_not(None))
            .order_by(Output.received_at.desc(), Output.id)
            .limit(limit)
        )
        if vector is not None
    ]


def reviews_per_day(session: Session, *, queue: str, since: datetime) -> dict[str, int]:
    """ISO day -> verdicts given on it in this queue (second reviews and rulings included)."""
    days: dict[str, int] = {}
    for (at,) in session.execute(
        select(Review.created_at).where(Review.queue == queue, Review.created_at >= since)
    ):
        day = at.astimezone(UTC).date().isoformat()
        days[day] = days.get(day, 0) + 1
    return days


def review_history(session: Session, *, queue: str, limit: int) -> list[tuple[bool, bytes | None]]:
    """(failed?, embedding) of the queue's reviewed picks in the order of their first review, the
    latest ``limit`` of them, each with its current verdict."""
    latest = latest_verdicts()
    rows = session.execute(
        select(latest.c.verdict, Output.embedding)
        .select_from(Pick)
        .join(Output, Output.id == Pick.output_id)
        .join(latest, latest.c.output_id == Pick.output_id)
        .where(Pick.queue == queue, Pick.reviewed_at.is_not(None))
        .order_by(Pick.reviewed_at.desc(), Pick.id)
        .limit(limit)
    ).all()
    return [(verdict == "fail", vector) for verdict, vector in reversed(rows)]


def reviews_since(session: Session, *, queue: str, since: datetime) -> int:
    """Verdicts given in this queue since ``since``: its reviewers' pace."""
    return (
        session.scalar(
            select(func.count()).select_from(Review).where(Review.queue == queue, Review.created_at >= since)
        )
        or 0
    )


def as_output(row: PopulationRow) -> estimate.Output:
    """One output of a queue's traffic as the estimate sees it: its verdict and how it was picked."""
    return estimate.Output(
        failed=None if row.verdict is None else row.verdict == "fail",
        audit=row.stratum == "audit",
        routed=row.stratum is not None and (row.stratum != "audit" or row.routed),  # Pick.in_routing
        passed=row.passed,
        inclusion_probability=row.inclusion_probability or 1.0,
        skipped=bool(row.skipped),
        score=row.score,
    )


def traffic_estimate(session: Session, *, queue: str) -> estimate.Estimate | None:
    """The queue's failure rate, every review counted (None before its first review)."""
    population = [as_output(row) for row in estimate_population(session, queue=queue)]
    return estimate.every_review(population) if any(o.failed is not None for o in population) else None
