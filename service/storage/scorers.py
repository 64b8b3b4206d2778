"""Repository functions for learned scorer versions and the data they are trained on. No commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, defer, load_only

from service.domain import OutputStatus
from service.storage.repository import latest_verdicts
from service.storage.tables import Output, Pick, ScorerModel


def active_versions(session: Session) -> dict[str, str]:
    """Queue -> the version of its active learned scorer (cheap: asked once per scoring batch)."""
    rows = session.execute(select(ScorerModel.queue, ScorerModel.version).where(ScorerModel.active.is_(True)))
    return {queue: version for queue, version in rows}


def active_model(session: Session, *, queue: str) -> ScorerModel | None:
    return session.scalars(
        select(ScorerModel).where(ScorerModel.queue == queue, ScorerModel.active.is_(True))
    ).one_or_none()


def active_model_info(session: Session, *, queue: str) -> ScorerModel | None:
    """The active version's row without its (megabytes of) model: for reports."""
    return session.scalars(
        select(ScorerModel)
        .options(defer(ScorerModel.blob))
        .where(ScorerModel.queue == queue, ScorerModel.active.is_(True))
    ).one_or_none()


def learning_curve(session: Session, *, queue: str) -> list[tuple[int, float | None, bool]]:
    """(labels, cross-validated AUROC or None, whether it was used) of every version of a queue's
    scorer, oldest first: what each batch of reviews bought the ranking."""
    rows = session.execute(
        select(ScorerModel.n_labels, ScorerModel.metrics)
        .where(ScorerModel.queue == queue)
        .order_by(ScorerModel.created_at, ScorerModel.id)
    )
    out = []
    for labels, metrics in rows:
        m = metrics or {}
        auroc = m.get("cv_auroc")
        out.append((int(labels), float(auroc) if auroc is not None else None, bool(m.get("used", True))))
    return out


def latest_trained_on(session: Session, *, queue: str) -> int | None:
    """How many reviews the queue's newest version was trained on, used or not (None: none yet)."""
    return session.scalar(
        select(ScorerModel.n_labels)
        .where(ScorerModel.queue == queue)
        .order_by(ScorerModel.created_at.desc(), ScorerModel.id.desc())
        .limit(1)
    )


def activate_model(
    session: Session,
    *,
    queue: str,
    version: str,
    blob: bytes,
    n_labels: int,
    n_failures: int,
    calibration: str,
    metrics: dict[str, Any],
    active: bool = True,
) -> ScorerModel:
    """Store a new version and make it the queue's only active one, in the caller's transaction
    (an atomic swap). With ``active`` False it is stored as not used, and the queue goes back to
    cold start: no version is active."""
    session.execute(
        update(ScorerModel)
        .where(ScorerModel.queue == queue, ScorerModel.active.is_(True))
        .values(active=False)
    )
    row = ScorerModel(
        queue=queue,
        version=version,
        blob=blob,
        n_labels=n_labels,
        n_failures=n_failures,
        calibration=calibration,
        metrics=metrics,
        active=active,
    )
    session.add(row)
    session.flush()
    return row


def training_rows(
    session: Session, *, queue: str, limit: int
) -> list[tuple[dict[str, float | None], bytes | None, bool, float | None, bool, str]]:
    """A queue's reviewed outputs, newest first: signals, embedding, whether the latest verdict was
    fail, the inclusion probability of the pick that brought it to a reviewer (None if unknown),
    whether it is a *sampled* audit member (reviewed, routing has not passed it: its verdict
    stands for the part of the traffic routing has not reached), and its id."""
    latest = latest_verdicts()
    rows = session.execute(
        select(
            Output.signals,
            Output.embedding,
            latest.c.verdict,
            Pick.inclusion_probability,
            Pick.stratum,
            Pick.passed_at,
            Output.id,
        )
        .join(latest, latest.c.output_id == Output.id)
        .outerjoin(Pick, Pick.output_id == Output.id)
        .where(Output.signals.is_not(None), Output.queue == queue)
        .order_by(latest.c.at.desc())
        .limit(limit)
    )
    return [
        (signals or {}, embedding, verdict == "fail", p, stratum == "audit" and passed is None, oid)
        for signals, embedding, verdict, p, stratum, passed, oid in rows
    ]


def count_reviewed(session: Session, *, queue: str) -> int:
    """How many of a queue's outputs have a verdict (what retraining is scheduled on)."""
    latest = latest_verdicts()
    return (
        session.scalar(
            select(func.count())
            .select_from(Output)
            .join(latest, latest.c.output_id == Output.id)
            .where(Output.queue == queue)
        )
        or 0
    )


def recent_traffic(
    session: Session, *, queue: str, limit: int
) -> list[tuple[dict[str, float | None], bytes]]:
    """Signals and embeddings of a queue's most recently scored outputs: the traffic the model's PCA
    and its features' scales are fitted on."""
    rows = session.execute(
        select(Output.signals, Output.embedding)
        .where(Output.queue == queue, Output.embedding.is_not(None), Output.signals.is_not(None))
        .order_by(Output.scored_at.desc())
        .limit(limit)
    )
    return [(signals or {}, embedding) for signals, embedding in rows if embedding is not None]


def unreviewed_scored(session: Session, *, queue: str, after: str, limit: int) -> list[Output]:
    """A queue's scored, queued or junk outputs not reviewed yet, and its reviewed audit members
    routing has not passed, chosen by it or not, in id order after ``after`` (for paging rescoring).

    Junk is never routed, but its score is still read (the API, exports, a replay's AUROC): left at
    cold start's rank while the rest of the queue moves to a model's probabilities, a junk output
    read as the traffic's most likely failure (a stock "I have no comment." at 0.9 beside 0.3s).

    Routing chooses and passes those members on today's scores, as it does the outputs it has not
    reviewed (``core.estimate``). A member's score frozen when routing chose it would stay where an
    older model put it while the same output unreviewed would rise with each model: a failure
    routing chose would stay below routing's claims, never passed, and the sample would keep the
    failures the rest of the traffic gives up to routing."""
    routable = select(Pick.output_id).where(
        Pick.queue == queue, Pick.stratum == "audit", Pick.passed_at.is_(None)
    )
    return list(
        session.scalars(
            select(Output)
            .options(load_only(Output.id, Output.signals, Output.embedding, Output.drivers))
            .where(
                Output.queue == queue,
                or_(
                    Output.status.in_(
                        [OutputStatus.scored.value, OutputStatus.queued.value, OutputStatus.junk.value]
                    ),
                    Output.id.in_(routable),
                ),
                Output.signals.is_not(None),
                Output.id > after,
            )
            .order_by(Output.id)
            .limit(limit)
        )
    )


def rescore_many(
    session: Session, *, scored: Sequence[tuple[str, float, list[dict[str, Any]]]], version: str
) -> None:
    """Replace outputs' scores (and those of their picks still waiting, or audit members routing has
    not passed: see ``unreviewed_scored``) with a newer scorer's, in two statements.

    ``scored`` holds (output id, score, drivers)."""
    if not scored:
        return
    session.execute(
        update(Output),
        [
            {"id": oid, "score": score, "scorer_version": version, "drivers": drivers}
            for oid, score, drivers in scored
        ],
    )
    picks = Pick.__table__
    assert isinstance(picks, Table)
    session.execute(
        update(picks)
        .where(
            picks.c.output_id == bindparam("oid"),
            or_(
                picks.c.reviewed_at.is_(None),
                and_(picks.c.stratum == "audit", picks.c.passed_at.is_(None)),
            ),
        )
        .values(score=bindparam("new_score")),
        [{"oid": oid, "new_score": score} for oid, score, _ in scored],
    )
