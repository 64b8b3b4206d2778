"""A queue's honest failure rate: the selection runs' designs (certainty picks plus a random audit)
turned into an estimate with a 95% interval by ``workers.estimate`` (pure)."""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from service.storage import queues as queues_repo
from workers import estimate


class RateView(BaseModel):
    rate: float
    low: float
    high: float
    method: str
    n_audit: int
    n_reviews: int


class QueueStats(BaseModel):
    queue: str
    reviews: int
    failures: int
    estimate: RateView | None = Field(
        description="Failure rate of the queue's traffic (Horvitz-Thompson over completed selection runs)."
    )
    audit_only: RateView | None = Field(description="The plain audit failure rate, for comparison.")
    runs_used: int
    runs_pending: int = Field(description="Selection runs with picks still unreviewed (not yet usable).")
    junk: dict[str, int]


def _view(e: estimate.Estimate) -> RateView:
    return RateView(
        rate=e.rate, low=e.low, high=e.high, method=e.method, n_audit=e.n_audit, n_reviews=e.n_reviews
    )


def queue_stats(session: Session, *, queue: str) -> QueueStats:
    """Estimate a queue's failure rate from its reviewed picks and the runs that picked them.

    A run counts once all its picks are reviewed: an unreviewed certainty pick is an unknown, and
    guessing it would bias the estimate.
    """
    reviewed = queues_repo.reviewed_picks(session, queue=queue)
    progress = queues_repo.selection_progress(session, queue=queue)
    by_run: dict[str, list[estimate.ReviewedPick]] = defaultdict(list)
    runs = {}
    for pick, verdict, run in reviewed:
        by_run[run.id].append(
            estimate.ReviewedPick(
                failed=verdict == "fail",
                inclusion_probability=pick.inclusion_probability or 1.0,
                stratum=pick.stratum,
            )
        )
        runs[run.id] = run
    complete = [rid for rid, (total, done) in progress.items() if total == done and rid in by_run]
    parts = [
        estimate.failure_rate(by_run[rid], runs[rid].window_size) for rid in complete if runs[rid].window_size
    ]
    everything = [r for picks in by_run.values() for r in picks]
    audit = estimate.audit_only(everything) if any(r.inclusion_probability < 1 for r in everything) else None
    return QueueStats(
        queue=queue,
        reviews=len(everything),
        failures=sum(r.failed for r in everything),
        estimate=_view(estimate.combine(parts)) if parts else None,
        audit_only=_view(audit) if audit else None,
        runs_used=len(parts),
        runs_pending=sum(1 for total, done in progress.values() if done < total),
        junk=queues_repo.junk_counts(session, queue=queue),
    )
