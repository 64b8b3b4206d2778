"""Repository functions for review queues: windows, selection runs, picks and the junk bucket.

The session comes first, keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, load_only

from core import drift
from service.domain import OutputStatus
from service.settings import Settings
from service.storage import filters
from service.storage.filters import ItemFilter
from service.storage.tables import Output, Pick, Review, Selection


def queue_window(session: Session, *, queue: str, limit: int) -> list[Output]:
    """The queue's selection window: its most recent scored outputs not yet picked or reviewed."""
    columns = (Output.id, Output.score, Output.drivers, Output.embedding, Output.prompt, Output.response)
    return list(
        session.scalars(
            select(Output)
            .options(
                load_only(*columns, Output.finish_reason, Output.signals, Output.similar, Output.audit_rate)
            )
            .where(Output.queue == queue, Output.status == OutputStatus.scored.value)
            .order_by(Output.scored_at.desc())
            .limit(limit)
        )
    )


def release_stale_picks(
    session: Session, *, queue: str, picked_before: datetime, now: datetime | None = None
) -> int:
    """Return unreviewed picks older than this to the pool, so better new candidates can replace them.

    A pick a reviewer holds right now (a live claim) stays, and so does an audit member waiting for
    the audit's turn (the audit draws once). Routing's stale choices of audit members are undone.
    """
    now = now or datetime.now(UTC)
    stale = list(
        session.scalars(
            select(Pick.output_id).where(
                Pick.queue == queue,
                Pick.reviewed_at.is_(None),
                Pick.picked_at < picked_before,
                or_(Pick.claimed_until.is_(None), Pick.claimed_until < now),
                Pick.stratum != "audit",
            )
        )
    )
    _unroute(session, queue=queue, routed_before=picked_before, now=now)
    return _back_to_pool(session, stale)


def release_for_new_scorer(session: Session, *, queue: str, now: datetime) -> int:
    """A new scorer version re-chooses the queue's waiting picks: unclaimed picks that the old scores
    chose go back to the pool, so the next selection spends those slots on what the new model ranks
    highest. Audit picks stay audit members (they were drawn at random, not by a score), and so does
    anything a reviewer holds or a blind second review waits on."""
    chosen = list(
        session.scalars(
            select(Pick.output_id).where(
                Pick.queue == queue,
                Pick.reviewed_at.is_(None),
                Pick.stratum != "audit",
                or_(Pick.claimed_until.is_(None), Pick.claimed_until < now),
            )
        )
    )
    _unroute(session, queue=queue, routed_before=now, now=now)
    return _back_to_pool(session, chosen)


def _unroute(session: Session, *, queue: str, routed_before: datetime, now: datetime) -> None:
    """Audit members routing chose before ``routed_before`` and has not reached go back to being
    audit members only, as its other unreviewed choices go back to the pool (unless a reviewer
    holds one): routing chooses again, blind to the audit as before."""
    session.execute(
        update(Pick)
        .where(
            Pick.queue == queue,
            Pick.routed_at < routed_before,
            Pick.passed_at.is_(None),
            or_(Pick.claimed_until.is_(None), Pick.claimed_until < now),
        )
        .values(routed_at=None)
        .execution_options(synchronize_session=False)
    )


def _back_to_pool(session: Session, output_ids: Sequence[str]) -> int:
    if not output_ids:
        return 0
    session.execute(
        delete(Pick).where(Pick.output_id.in_(output_ids)).execution_options(synchronize_session=False)
    )
    session.execute(
        update(Output)
        .where(Output.id.in_(output_ids), Output.status == OutputStatus.queued.value)
        .values(status=OutputStatus.scored.value)
        .execution_options(synchronize_session=False)
    )
    return len(output_ids)


def mark_junk(session: Session, *, output_ids: Sequence[str], reason: str) -> None:
    """Put outputs in the junk bucket: counted, never shown to reviewers."""
    session.execute(
        update(Output)
        .where(Output.id.in_(output_ids), Output.status == OutputStatus.scored.value)
        .values(status=OutputStatus.junk.value, junk_reason=reason)
        .execution_options(synchronize_session=False)
    )


def junk_counts(session: Session, *, queue: str) -> dict[str, int]:
    """How many of a queue's outputs went to the junk bucket, by reason."""
    rows = session.execute(
        select(Output.junk_reason, func.count())
        .where(Output.queue == queue, Output.status == OutputStatus.junk.value)
        .group_by(Output.junk_reason)
    )
    return {str(reason): n for reason, n in rows}


def add_selection(
    session: Session,
    *,
    queue: str,
    window_size: int,
    junk: int,
    clusters: int,
    noise: int,
    audit_share: float | None = None,
) -> Selection:
    """Record one selection run; its picks' inclusion probabilities refer to its window."""
    row = Selection(
        queue=queue,
        window_size=window_size,
        junk=junk,
        clusters=clusters,
        noise=noise,
        audit_share=audit_share,
    )
    session.add(row)
    session.flush()
    return row


def count_waiting(session: Session, *, queue: str) -> int:
    """Items routing picked into a queue and not reviewed yet (the backlog)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Pick)
            .where(Pick.queue == queue, Pick.reviewed_at.is_(None), Pick.in_routing)
        )
        or 0
    )


def count_picked_since(session: Session, *, queue: str, since: datetime) -> int:
    """Routing's picks since ``since`` (what the day's budget counts)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Pick)
            .where(Pick.queue == queue, Pick.picked_at >= since, Pick.in_routing)
        )
        or 0
    )


def count_reviewed_since(session: Session, *, queue: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Review).where(Review.queue == queue, Review.created_at >= since)
        )
        or 0
    )


def add_pick(
    session: Session,
    *,
    queue: str,
    output_id: str,
    stratum: str,
    reason: str,
    score: float | None,
    inclusion_probability: float = 1.0,
    selection_id: str | None = None,
    cluster: int | None = None,
    duplicates: Sequence[str] = (),
    queue_rank: float | None = None,
    members: Sequence[str] = (),
    routed_at: datetime | None = None,
) -> bool:
    """Put an output into a queue unless it was picked or reviewed meanwhile; True if it was added."""
    moved = session.execute(
        update(Output)
        .where(Output.id == output_id, Output.status == OutputStatus.scored.value)
        .values(status=OutputStatus.queued.value)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return False
    session.add(
        Pick(
            output_id=output_id,
            queue=queue,
            stratum=stratum,
            reason=reason,
            score=score,
            queue_rank=queue_rank,
            inclusion_probability=inclusion_probability,
            selection_id=selection_id,
            cluster=cluster,
            duplicates=list(duplicates),
            members=list(members),
            routed_at=routed_at,
        )
    )
    return True


def mark_exposed(session: Session, *, output_ids: Sequence[str], audit_rate: float) -> None:
    """These outputs have been in a selection window: the audit drew them at ``audit_rate`` or not."""
    for start in range(0, len(output_ids), 500):
        session.execute(
            update(Output)
            .where(Output.id.in_(output_ids[start : start + 500]), Output.audit_rate.is_(None))
            .values(audit_rate=audit_rate)
            .execution_options(synchronize_session=False)
        )


def routable_audit(session: Session, *, queue: str, now: datetime, limit: int) -> list[Output]:
    """The queue's audit members routing has not chosen, waiting or reviewed (not one a reviewer
    holds): routing chooses among them as among new candidates, blind to the audit."""
    columns = (Output.id, Output.score, Output.drivers, Output.embedding, Output.prompt, Output.response)
    return list(
        session.scalars(
            select(Output)
            .join(Pick, Pick.output_id == Output.id)
            .options(load_only(*columns, Output.finish_reason, Output.signals, Output.similar))
            .where(
                Pick.queue == queue,
                Pick.stratum == "audit",
                Pick.routed_at.is_(None),
                or_(Pick.claimed_until.is_(None), Pick.claimed_until < now),
            )
            .order_by(Output.scored_at.desc())
            .limit(limit)
        )
    )


def route_audit_pick(
    session: Session,
    *,
    output_id: str,
    reason: str,
    score: float | None,
    cluster: int | None,
    members: Sequence[str],
    now: datetime,
) -> None:
    """Routing chose an audit member: it is served in score order from now on (if not reviewed
    yet), under routing's reason, and stays an audit member."""
    session.execute(
        update(Pick)
        .where(Pick.output_id == output_id, Pick.stratum == "audit", Pick.routed_at.is_(None))
        .values(
            routed_at=now,
            reason=reason,
            score=score,
            cluster=cluster,
            members=list(members),
        )
        .execution_options(synchronize_session=False)
    )


def current_audit_share(session: Session, *, queue: str) -> float | None:
    """The audit share the queue's latest selection run drew with (None before its first)."""
    return session.scalar(
        select(Selection.audit_share)
        .where(Selection.queue == queue)
        .order_by(Selection.created_at.desc())
        .limit(1)
    )


def pick_for(session: Session, *, output_id: str) -> Pick | None:
    return session.scalars(select(Pick).where(Pick.output_id == output_id)).one_or_none()


def waiting_items(
    session: Session, *, queue: str, limit: int, offset: int, item_filter: ItemFilter | None = None
) -> tuple[int, list[tuple[Pick, Output]]]:
    """The unreviewed items routing chose for a queue (that the filter keeps), highest score first,
    and how many there are in all. Audit members waiting for the audit's turns are not listed: a
    reviewer opening them from a list, by score or by filter, would make the reviewed members a
    chosen part of the audit instead of a random one (``count_audit_waiting`` says how many wait)."""
    waiting = and_(
        Pick.queue == queue,
        Pick.reviewed_at.is_(None),
        Pick.in_routing,
        *filters.conditions(session, item_filter),
    )
    total = session.scalar(select(func.count()).select_from(Pick).where(waiting)) or 0
    rows = session.execute(
        select(Pick, Output)
        .join(Output, Output.id == Pick.output_id)
        .options(
            load_only(Output.id, Output.external_id, Output.app, Output.model, Output.prompt, Output.response)
        )
        .where(waiting)
        .order_by(Pick.score.desc().nulls_last(), Pick.picked_at)
        .limit(limit)
        .offset(offset)
    )
    return total, [(p, o) for p, o in rows]


def count_audit_waiting(session: Session, *, queue: str) -> int:
    """The queue's audit members routing has not chosen that wait for the audit's turns."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Pick)
            .where(Pick.queue == queue, Pick.reviewed_at.is_(None), ~Pick.in_routing)
        )
        or 0
    )


def cluster_members(session: Session, *, pick: Pick, limit: int) -> list[tuple[str, str, float | None]]:
    """(id, response, score) of the other outputs the same selection run put in this pick's cluster,
    best first: those it recorded (picked or not), else the other picks of the cluster."""
    if pick.selection_id is None or pick.cluster is None or pick.cluster < 0:
        return []
    if pick.members:
        wanted = list(pick.members)[:limit]
        found = {
            i: (i, text, score)
            for i, text, score in session.execute(
                select(Output.id, Output.response, Output.score).where(Output.id.in_(wanted))
            )
        }
        return [found[i] for i in wanted if i in found]
    rows = session.execute(
        select(Output.id, Output.response, Pick.score)
        .join(Output, Output.id == Pick.output_id)
        .where(Pick.selection_id == pick.selection_id, Pick.cluster == pick.cluster, Pick.id != pick.id)
        .order_by(Pick.score.desc().nulls_last())
        .limit(limit)
    )
    return [(i, text, score) for i, text, score in rows]


def recent_embeddings(session: Session, *, queue: str, limit: int) -> list[bytes]:
    """The embeddings of a queue's latest scored outputs, newest first (for drift)."""
    return list(
        session.scalars(
            select(Output.embedding)
            .where(Output.queue == queue, Output.embedding.is_not(None))
            .order_by(Output.received_at.desc(), Output.id.desc())
            .limit(limit)
        )
    )


def traffic_drift(session: Session, settings: Settings, *, queue: str) -> drift.Drift | None:
    """The queue's latest outputs' embeddings against the ones before them (None: too few yet)."""
    limit = settings.drift_window + settings.drift_reference
    vectors = [
        np.frombuffer(b, dtype=np.float32) for b in recent_embeddings(session, queue=queue, limit=limit)
    ]
    return drift.of_recent(vectors, window=settings.drift_window, reference=settings.drift_reference)
