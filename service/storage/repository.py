"""Repository functions: the session first, keyword-only arguments after, and no commits.

The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only

from service.domain import NormalizedOutput, OutputIn, OutputStatus, normalize
from service.errors import Conflict, NotFound
from service.storage.tables import Output, Pick, Review, new_id, utcnow


def find_output(session: Session, *, app: str, external_id: str) -> Output | None:
    """The output an application already posted under this external id, if any."""
    return session.scalars(
        select(Output).where(Output.app == app, Output.external_id == external_id)
    ).one_or_none()


def get_output(session: Session, *, output_id: str) -> Output:
    """The output with this id, or NotFound."""
    output = session.get(Output, output_id)
    if output is None:
        raise NotFound(f"no output with id {output_id!r}", details={"id": output_id})
    return output


def _new_output(normalized: NormalizedOutput, payload_hash: str) -> Output:
    return Output(
        id=new_id(),
        external_id=normalized.external_id,
        app=normalized.app,
        model=normalized.model,
        payload_hash=payload_hash,
        prompt=normalized.prompt,
        messages=normalized.messages,
        response=normalized.response,
        finish_reason=normalized.finish_reason,
        token_logprobs=[t.model_dump() for t in normalized.token_logprobs]
        if normalized.token_logprobs is not None
        else None,
        samples=normalized.samples,
        meta=normalized.metadata,
        status=OutputStatus.received.value,
        received_at=utcnow(),
        attempts=0,
    )


def ingest_output(session: Session, *, output_in: OutputIn) -> tuple[Output, bool]:
    """Store a posted output; a repeat of the same external id returns the stored row instead.

    Returns the row and whether it was a duplicate. A repeat whose content differs is a Conflict,
    so a caller reusing an id by mistake learns of it instead of silently losing data.
    """
    digest = output_in.payload_hash()
    if output_in.external_id is not None:
        existing = find_output(session, app=output_in.app, external_id=output_in.external_id)
        if existing is not None:
            return _check_repeat(existing, digest), True
    row = _new_output(normalize(output_in), digest)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request stored the same external id between our lookup and insert.
        assert output_in.external_id is not None
        existing = find_output(session, app=output_in.app, external_id=output_in.external_id)
        if existing is None:
            raise
        return _check_repeat(existing, digest), True
    return row, False


def _check_repeat(existing: Output, digest: str) -> Output:
    if existing.payload_hash != digest:
        raise Conflict(
            f"external_id {existing.external_id!r} of app {existing.app!r} was already posted "
            "with different content",
            details={"id": existing.id, "external_id": existing.external_id, "app": existing.app},
        )
    return existing


def claim_for_scoring(
    session: Session, *, output_ids: Sequence[str], limit: int, token: str, now: datetime, lease: timedelta
) -> list[Output]:
    """Claim up to ``limit`` unscored outputs, the given ids first, then the oldest others waiting.

    A claim is a lease: a worker that dies leaves it to expire and another worker takes over.
    Conditions are repeated in the UPDATE so concurrent workers on PostgreSQL never share a row.
    """
    claimable = (Output.status == OutputStatus.received.value) & or_(
        Output.claimed_until.is_(None), Output.claimed_until < now
    )
    wanted = list(session.scalars(select(Output.id).where(claimable, Output.id.in_(output_ids)).limit(limit)))
    if len(wanted) < limit:
        others = select(Output.id).where(claimable).order_by(Output.received_at).limit(limit - len(wanted))
        if wanted:
            others = others.where(Output.id.not_in(wanted))
        wanted += session.scalars(others)
    if not wanted:
        return []
    session.execute(
        update(Output)
        .where(Output.id.in_(wanted), claimable)
        .values(claim_token=token, claimed_until=now + lease, attempts=Output.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(select(Output).where(Output.claim_token == token, Output.id.in_(wanted))))


def recent_signals(session: Session, *, limit: int) -> list[tuple[dict[str, Any], float | None]]:
    """Signals and scores of the most recently scored outputs: what 'recent traffic' means."""
    rows = session.execute(
        select(Output.signals, Output.score)
        .where(Output.scored_at.is_not(None))
        .order_by(Output.scored_at.desc())
        .limit(limit)
    )
    return [(signals or {}, score) for signals, score in rows]


def top_share(session: Session, *, score: float, window: int) -> float | None:
    """The share of the last ``window`` scored outputs that score at least this much (None: none yet)."""
    recent = (
        select(Output.score)
        .where(Output.scored_at.is_not(None), Output.score.is_not(None))
        .order_by(Output.scored_at.desc())
        .limit(window)
        .subquery()
    )
    total, above = session.execute(
        select(func.count(), func.count().filter(recent.c.score >= score)).select_from(recent)
    ).one()
    return above / total if total else None


def latest_verdicts() -> Any:
    """A subquery: each reviewed output with its verdict (``output_id``, ``at``, ``verdict``): the
    latest first review or adjudication."""
    counted = Review.counts_as_verdict
    latest = (
        select(Review.output_id, func.max(Review.created_at).label("at"))
        .where(counted)
        .group_by(Review.output_id)
        .subquery()
    )
    return (
        select(latest.c.output_id, latest.c.at, Review.verdict)
        .join(Review, (Review.output_id == latest.c.output_id) & (Review.created_at == latest.c.at))
        .where(counted)
        .subquery()
    )


def store_score(
    session: Session,
    *,
    output_id: str,
    token: str,
    signals: dict[str, float | None],
    score: float | None,
    scorer_version: str,
    drivers: list[dict[str, Any]],
    embedding: bytes | None,
    now: datetime,
    sampling: str | None = None,
    queue: str | None = None,
    similar: list[dict[str, Any]] | None = None,
) -> bool:
    """Record an output's signals and score if this worker still holds its claim; False otherwise."""
    return _finish_claim(
        session,
        output_id=output_id,
        token=token,
        signals=signals,
        score=score,
        scorer_version=scorer_version,
        drivers=drivers,
        embedding=embedding,
        scored_at=now,
        sampling=sampling,
        queue=queue,
        similar=similar,
        status=OutputStatus.scored.value,
    )


def mark_error(session: Session, *, output_id: str, token: str, reason: str) -> bool:
    """Give up on an output that scoring cannot handle: status "error" with the reason, claim
    released, never claimed again. False if this worker no longer holds its claim."""
    return _finish_claim(
        session, output_id=output_id, token=token, status=OutputStatus.error.value, error=reason[:500]
    )


def _finish_claim(session: Session, *, output_id: str, token: str, **values: Any) -> bool:
    """Set ``values`` and release the claim, only if this worker still holds the output's scoring
    claim (so a worker whose lease ran out never overwrites the one that took over)."""
    result = session.execute(
        update(Output)
        .where(
            Output.id == output_id,
            Output.claim_token == token,
            Output.status == OutputStatus.received.value,
        )
        .values(**values, claim_token=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def store_samples(
    session: Session,
    *,
    output_id: str,
    samples: list[str],
    signals: dict[str, float | None],
    score: float | None,
    scorer_version: str,
    drivers: list[dict[str, Any]],
    sampling: str,
) -> None:
    """Record samples drawn for an output and the score they led to (its waiting pick follows)."""
    session.execute(
        update(Output)
        .where(Output.id == output_id)
        .values(
            samples=samples,
            signals=signals,
            score=score,
            scorer_version=scorer_version,
            drivers=drivers,
            sampling=sampling,
        )
        .execution_options(synchronize_session=False)
    )
    follow_pick_score(session, output_id=output_id, score=score)


def follow_pick_score(session: Session, *, output_id: str, score: float | None) -> None:
    """A waiting pick shows its output's latest score (after resampling or a new scorer version)."""
    session.execute(
        update(Pick)
        .where(Pick.output_id == output_id, Pick.reviewed_at.is_(None))
        .values(score=score)
        .execution_options(synchronize_session=False)
    )


def set_sampling(session: Session, *, output_ids: Sequence[str], sampling: str) -> None:
    session.execute(
        update(Output)
        .where(Output.id.in_(output_ids))
        .values(sampling=sampling)
        .execution_options(synchronize_session=False)
    )


def stale_unscored_ids(
    session: Session, *, received_before: datetime, now: datetime, limit: int
) -> list[str]:
    """Outputs still unscored long after arrival and not under a live claim: their job was lost."""
    return list(
        session.scalars(
            select(Output.id)
            .where(
                Output.status == OutputStatus.received.value,
                Output.received_at < received_before,
                or_(Output.claimed_until.is_(None), Output.claimed_until < now),
            )
            .order_by(Output.received_at)
            .limit(limit)
        )
    )


def reviews_for(session: Session, *, output_id: str) -> list[Review]:
    return list(
        session.scalars(select(Review).where(Review.output_id == output_id).order_by(Review.created_at))
    )


def list_outputs(
    session: Session,
    *,
    app: str | None,
    queue: str | None,
    status: str | None,
    after: str,
    limit: int,
    with_signals: bool,
) -> list[Output]:
    """Outputs in id order after ``after``, optionally of one app, queue or status (a page)."""
    columns: list[Any] = [Output.id, Output.external_id, Output.app, Output.queue, Output.status]
    columns += [Output.score, Output.scorer_version] + ([Output.signals] if with_signals else [])
    query = select(Output).options(load_only(*columns)).where(Output.id > after)
    if app is not None:
        query = query.where(Output.app == app)
    if queue is not None:
        query = query.where(Output.queue == queue)
    if status is not None:
        query = query.where(Output.status == status)
    return list(session.scalars(query.order_by(Output.id).limit(limit)))


def count_by_status(session: Session) -> dict[str, int]:
    """How many outputs are in each status."""
    counts = dict.fromkeys((s.value for s in OutputStatus), 0)
    for status, n in session.execute(select(Output.status, func.count()).group_by(Output.status)):
        counts[status] = n
    return counts


def count_in_status(session: Session, *, status: str) -> int:
    """How many outputs are in this one status (an index range, where ``count_by_status`` scans)."""
    return session.scalar(select(func.count()).select_from(Output).where(Output.status == status)) or 0


def verdicts_of(session: Session, *, output_ids: list[str]) -> dict[str, str]:
    """The verdict (latest first review or adjudication) of each of these outputs that has one."""
    if not output_ids:
        return {}
    rows = session.execute(
        select(Review.output_id, Review.verdict)
        .where(Review.output_id.in_(output_ids), Review.counts_as_verdict)
        .order_by(Review.created_at)
    )
    return {output_id: verdict for output_id, verdict in rows}


def responses_of(session: Session, *, output_ids: list[str]) -> dict[str, str]:
    """The response of each of these outputs that still exists."""
    if not output_ids:
        return {}
    rows = session.execute(select(Output.id, Output.response).where(Output.id.in_(output_ids)))
    return {i: text for i, text in rows}


def verdict_review(session: Session, *, output_id: str) -> Review | None:
    """The review that is an output's verdict: its latest first review or adjudication."""
    return session.scalars(
        select(Review)
        .where(Review.output_id == output_id, Review.counts_as_verdict)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
    ).first()
