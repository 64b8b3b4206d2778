"""The random audit's draws beyond the first: raising the rate of outputs already seen, when a
queue's ``target_width`` raises its audit share. The session comes first, keyword-only arguments
after, and nothing commits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.orm import Session

from core import selection
from service.domain import OutputStatus
from service.storage import queues as queues_repo
from service.storage.tables import Output, Pick

#: Rates closer than this are the same rate (float round-off of a share).
SAME_RATE = 1e-9
_CHUNK = 500


def top_up(
    session: Session,
    *,
    queue: str,
    share: float,
    selection_id: str,
    rng: np.random.Generator,
) -> int:
    """Raise to ``share`` the audit's rate of the queue's outputs that routing has not chosen (see
    ``selection.top_up_audit``): members waiting or reviewed at the audit's turns count at the new
    rate, and each output the audit passed over and routing has not picked joins with the chance that
    makes its rate ``share``. Outputs routing has chosen keep their rate: they were not eligible,
    whether members or not. Returns how many joined; they wait for the audit's turns like any member."""
    below = and_(Output.audit_rate.is_not(None), Output.audit_rate < share - SAME_RATE)
    members = session.execute(
        select(Pick.id, Pick.output_id)
        .join(Output, Output.id == Pick.output_id)
        .where(Pick.queue == queue, Pick.stratum == "audit", Pick.routed_at.is_(None), below)
    ).all()
    others = session.execute(
        select(Output.id, Output.audit_rate, Output.score).where(
            Output.queue == queue,
            Output.status == OutputStatus.scored.value,
            below,
            ~exists(select(Pick.id).where(Pick.output_id == Output.id)),
        )
    ).all()
    _set(session, Pick, [pid for pid, _ in members], inclusion_probability=share)
    _set(session, Output, [oid for _, oid in members] + [oid for oid, _, _ in others], audit_rate=share)
    joins = selection.top_up_audit([rate or 0.0 for _, rate, _ in others], share, rng)
    joined = [(oid, score) for (oid, _, score), j in zip(others, joins, strict=True) if j]
    reason = (
        f"random audit (1 in {1 / share:.0f}), drawn again when the audit's share rose "
        "for the queue's target width"
    )
    return _add_members(
        session, queue=queue, joined=joined, share=share, reason=reason, rng=rng, run=selection_id
    )


def expose(session: Session, *, queue: str, share: float, rng: np.random.Generator, limit: int) -> int:
    """Draw the audit over the queue's outputs that no selection window has held yet, when selection
    has no slot to fill: each joins with probability ``share`` at first sight, as in a window
    (``selection.draw_audit``), and waits for the audit's turns. Without it, traffic scored while
    routing's backlog was full or its budget spent stayed out of the audit for hours, while the
    estimate counted it as unknown at the sampled rate of the traffic seen before it (a replay read
    30.6% [20.0, 44.3] against a true 18.1% while the first rows, which fail more, were all the audit
    had drawn from). Returns how many joined."""
    fresh = session.execute(
        select(Output.id, Output.score)
        .where(*_unexposed(queue))
        .order_by(Output.scored_at.desc())
        .limit(limit)
    ).all()
    if not fresh:
        return 0
    joins = (rng.uniform(size=len(fresh)) < share).tolist()  # the first draw (``selection.draw_audit``)
    queues_repo.mark_exposed(session, output_ids=[oid for oid, _ in fresh], audit_rate=share)
    reason = f"random audit (1 in {1 / share:.0f})" if share > 0 else "random audit"
    joined = [(oid, score) for (oid, score), j in zip(fresh, joins, strict=True) if j]
    return _add_members(session, queue=queue, joined=joined, share=share, reason=reason, rng=rng, run=None)


def has_unexposed(session: Session, *, queue: str) -> bool:
    """Whether the queue has scored outputs no selection window or exposure has held yet."""
    return session.scalar(select(Output.id).where(*_unexposed(queue)).limit(1)) is not None


def _unexposed(queue: str) -> tuple[ColumnElement[bool], ...]:
    """A queue's scored outputs the audit has not drawn over yet (``Output.audit_rate`` unset)."""
    return (Output.queue == queue, Output.status == OutputStatus.scored.value, Output.audit_rate.is_(None))


def _add_members(
    session: Session,
    *,
    queue: str,
    joined: Sequence[tuple[str, float | None]],
    share: float,
    reason: str,
    rng: np.random.Generator,
    run: str | None,
) -> int:
    """New audit members (id, score), waiting for the audit's turns in a random order of their own."""
    ranks = rng.uniform(size=len(joined)).tolist()
    return sum(
        queues_repo.add_pick(
            session,
            queue=queue,
            output_id=oid,
            stratum="audit",
            reason=reason,
            score=score,
            inclusion_probability=share,
            selection_id=run,
            queue_rank=rank,
        )
        for (oid, score), rank in zip(joined, ranks, strict=True)
    )


def _set(session: Session, table: type[Pick] | type[Output], ids: Sequence[str], **values: float) -> None:
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            update(table)
            .where(table.id.in_(ids[start : start + _CHUNK]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
