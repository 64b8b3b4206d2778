"""Repository functions for learned scorer versions and the data they are trained on. No commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.domain import OutputStatus
from service.storage.repository import follow_pick_score, latest_verdicts
from service.storage.tables import Output, Pick, ScorerModel


def active_version(session: Session) -> str | None:
    """The version of the active learned scorer, if any (cheap: asked once per scoring batch)."""
    return session.scalar(select(ScorerModel.version).where(ScorerModel.active.is_(True)))


def active_model(session: Session) -> ScorerModel | None:
    return session.scalars(select(ScorerModel).where(ScorerModel.active.is_(True))).one_or_none()


def activate_model(
    session: Session,
    *,
    version: str,
    blob: bytes,
    n_labels: int,
    n_failures: int,
    calibration: str,
    metrics: dict[str, Any],
) -> ScorerModel:
    """Store a new version and make it the only active one, in the caller's transaction (an atomic swap)."""
    session.execute(update(ScorerModel).where(ScorerModel.active.is_(True)).values(active=False))
    row = ScorerModel(
        version=version,
        blob=blob,
        n_labels=n_labels,
        n_failures=n_failures,
        calibration=calibration,
        metrics=metrics,
        active=True,
    )
    session.add(row)
    session.flush()
    return row


def training_rows(
    session: Session, *, limit: int
) -> list[tuple[dict[str, float | None], bytes | None, bool, float | None]]:
    """Reviewed outputs, newest first: signals, embedding, whether the latest verdict was fail, and the
    inclusion probability of the pick that brought it to a reviewer (None when unknown)."""
    latest = latest_verdicts()
    rows = session.execute(
        select(Output.signals, Output.embedding, latest.c.verdict, Pick.inclusion_probability)
        .join(latest, latest.c.output_id == Output.id)
        .outerjoin(Pick, Pick.output_id == Output.id)
        .where(Output.signals.is_not(None))
        .order_by(latest.c.at.desc())
        .limit(limit)
    )
    return [(signals or {}, embedding, verdict == "fail", p) for signals, embedding, verdict, p in rows]


def unreviewed_scored(session: Session, *, after: str, limit: int) -> list[Output]:
    """Scored or queued outputs not reviewed yet, in id order after ``after`` (for paging rescoring)."""
    return list(
        session.scalars(
            select(Output)
            .where(
                Output.status.in_([OutputStatus.scored.value, OutputStatus.queued.value]),
                Output.signals.is_not(None),
                Output.id > after,
            )
            .order_by(Output.id)
            .limit(limit)
        )
    )


def rescore(
    session: Session, *, output_id: str, score: float, scorer_version: str, drivers: list[dict[str, Any]]
) -> None:
    """Replace an output's score (and its waiting pick's) with a newer scorer's."""
    session.execute(
        update(Output)
        .where(Output.id == output_id)
        .values(score=score, scorer_version=scorer_version, drivers=drivers)
        .execution_options(synchronize_session=False)
    )
    follow_pick_score(session, output_id=output_id, score=score)
