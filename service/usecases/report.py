"""What a queue's reviews bought, for the dashboard, `GET /v1/queues/{name}/report` and
`review-router report`: the failure rate over time with its interval, what routing found against the
audit (lift), the learned scorer's calibration, and reviewer throughput."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core import estimate, evidence, topics
from service.domain_queues import (
    DriftView,
    GroupRate,
    LearningPoint,
    LiftView,
    MarginalView,
    PeriodRate,
    QueueReport,
    RecommendationView,
    Throughput,
    TopicRate,
)
from service.settings import Settings
from service.storage import population as population_repo
from service.storage import queues as queues_repo
from service.storage import scorers
from service.storage.population import as_output
from service.storage.tables import utcnow
from service.usecases.queues import queue_stats
from service.views import rate_view

#: Days of reviewer throughput shown.
THROUGHPUT_DAYS = 14


def period_start(at: datetime, period: str) -> datetime:
    """The start of ``at``'s day or ISO week (Monday), UTC."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if period == "week" else day


def lift(routed: tuple[int, int], audit: tuple[int, int], z: float = estimate.Z95) -> LiftView:
    """Failures per 100 routed reviews against the audit's rate, and their ratio with a 95% interval
    (Katz's log interval for a ratio of two proportions, half a failure added to each side)."""
    (n_r, f_r), (n_a, f_a) = routed, audit
    view = LiftView(
        routed_reviews=n_r,
        routed_failures=f_r,
        audit_reviews=n_a,
        audit_failures=f_a,
        failures_per_100_routed=100 * f_r / n_r if n_r else None,
        audit_rate=f_a / n_a if n_a else None,
    )
    if not n_r or not n_a:
        return view
    p_r, p_a = (f_r + 0.5) / (n_r + 1), (f_a + 0.5) / (n_a + 1)
    spread = z * math.sqrt((1 - p_r) / (p_r * (n_r + 1)) + (1 - p_a) / (p_a * (n_a + 1)))
    ratio = p_r / p_a
    return view.model_copy(
        update={
            "lift": (f_r / n_r) / (f_a / n_a) if f_a else None,
            "low": ratio * math.exp(-spread),
            "high": ratio * math.exp(spread),
        }
    )


def group_rates(groups: dict[tuple[str, str], list[estimate.Output]]) -> list[GroupRate]:
    """Each app's and model's failure rate, every review counted (the audit is a uniform draw, so
    the audit picks that fall in a group are a uniform draw of that group's unrouted outputs)."""
    rates = [GroupRate(by=by, name=name, **part_rate(outputs)) for (by, name), outputs in groups.items()]
    return sorted(rates, key=lambda g: (g.by, -g.outputs, g.name))


def part_rate(outputs: list[estimate.Output]) -> dict[str, Any]:
    """A part of the traffic's counts and its estimate, every review counted (``PartRate``)."""
    reviewed = [o for o in outputs if o.failed is not None]
    return {
        "outputs": len(outputs),
        "reviews": len(reviewed),
        "failures": sum(bool(o.failed) for o in reviewed),
        "estimate": rate_view(estimate.every_review(outputs)) if reviewed else None,
    }


#: The latest outputs a report's topics partition (``core/topics.py``).
TOPIC_WINDOW = 5000


def topic_rates(
    session: Session, population: list[population_repo.PopulationRow], *, queue: str
) -> list[TopicRate]:
    """The failure rate per topic of the queue's latest outputs, every review counted (topics come
    from the embeddings alone, so the audit members of a topic are a uniform draw of it), and the
    stop-or-keep advice per topic: its latest routed reviews against its audit members."""
    recent = population_repo.recent_embeddings(session, queue=queue, limit=TOPIC_WINDOW)
    found = (
        topics.topics_of(np.stack([np.frombuffer(v, dtype=np.float32) for _, v, _ in recent]))
        if recent
        else None
    )
    if found is None:
        return []
    topic_of = {oid: t for (oid, _, _), t in zip(recent, found.labels.tolist(), strict=True)}
    rows_of: dict[int, list[population_repo.PopulationRow]] = defaultdict(list)
    for row in population:
        if (t := topic_of.get(row.output_id)) is not None:
            rows_of[t].append(row)
    views = []
    for t, centre in enumerate(found.centre):
        rows = rows_of[t]
        part = part_rate([as_output(r) for r in rows])
        rate = part["estimate"]
        judged = [r for r in rows if r.verdict is not None and r.stratum is not None]
        routed = sorted(
            ((r.reviewed_at, r.verdict == "fail") for r in judged if r.stratum != "audit" and r.reviewed_at),
            reverse=True,
        )[: evidence.RECENT]
        audit = [r.verdict == "fail" for r in judged if r.stratum == "audit"]
        advice = evidence.recommend(
            (len(routed), sum(f for _, f in routed)),
            (len(audit), sum(audit)),
            interval_width=rate.high - rate.low if rate else None,
            drifted=False,
        )
        views.append(
            TopicRate(
                topic=t,
                example=" ".join(recent[centre][2].split())[:120],
                recommendation=RecommendationView(**asdict(advice)),
                **part,
            )
        )
    return views


def marginal(session: Session, settings: Settings, *, queue: str) -> MarginalView | None:
    """The latest reviews' failures, and the new failure modes among them (None before a review).
    Only the failures before them are compared, so the history loaded is bounded."""
    history = population_repo.review_history(session, queue=queue, limit=MODE_HISTORY)
    if not history:
        return None
    found = evidence.marginal_value(
        [(failed, _unit(v)) for failed, v in history], last=evidence.RECENT, floor=settings.similar_floor
    )
    return MarginalView(**asdict(found))


#: Reviews a report compares the latest ones' failures with (the latest included).
MODE_HISTORY = 5000


def _unit(vector: bytes | None) -> np.ndarray | None:
    if vector is None:
        return None
    v = np.frombuffer(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else None


def queue_report(session: Session, settings: Settings, *, queue: str, period: str = "day") -> QueueReport:
    """A queue's evidence: everything the dashboard shows, as data."""
    population = population_repo.estimate_population(session, queue=queue)
    by_period: dict[datetime, list[estimate.Output]] = defaultdict(list)
    routed, audit = [0, 0], [0, 0]
    routed_reviews: list[tuple[datetime, bool]] = []
    groups: dict[tuple[str, str], list[estimate.Output]] = defaultdict(list)
    for row in population:
        verdict, stratum, received_at, reviewed_at, app, model = row[:6]
        failed = None if verdict is None else verdict == "fail"
        output = as_output(row)
        by_period[period_start(received_at, period)].append(output)
        groups["app", app].append(output)
        groups["model", model or "unknown"].append(output)
        if failed is not None and stratum is not None:
            side = audit if stratum == "audit" else routed
            side[0] += 1
            side[1] += failed
            if stratum != "audit" and reviewed_at is not None:
                routed_reviews.append((reviewed_at, failed))
    over_time = [
        PeriodRate(
            start=start,
            outputs=len(outputs),
            reviews=sum(o.failed is not None for o in outputs),
            estimate=rate_view(estimate.every_review(outputs))
            if any(o.failed is not None for o in outputs)
            else None,
        )
        for start, outputs in sorted(by_period.items())
    ]
    since = period_start(utcnow(), "day") - timedelta(days=THROUGHPUT_DAYS - 1)
    per_day = population_repo.reviews_per_day(session, queue=queue, since=since)
    days = [(since + timedelta(days=i)).date().isoformat() for i in range(THROUGHPUT_DAYS)]
    shift = queues_repo.traffic_drift(session, settings, queue=queue)
    config = settings.queue(queue)
    share = config.audit_share if config is not None else 0.0
    stats = queue_stats(session, queue=queue, rows=population)
    found = lift((routed[0], routed[1]), (audit[0], audit[1]))
    if found.audit_rate:
        found.random_reviews_needed = stats.failures / found.audit_rate
    if stats.estimate is not None and stats.estimate.rate > 0:
        traffic = stats.outputs
        found.recall = min(1.0, stats.failures / (stats.estimate.rate * traffic))
        found.recall_low = min(1.0, stats.failures / (stats.estimate.high * traffic))
        found.recall_high = min(1.0, stats.failures / (max(stats.estimate.low, 1e-12) * traffic))
    latest = [
        failed for _, failed in sorted(routed_reviews, key=lambda r: r[0], reverse=True)[: evidence.RECENT]
    ]
    advice = evidence.recommend(
        (len(latest), sum(latest)),
        (audit[0], audit[1]),
        interval_width=stats.estimate.high - stats.estimate.low if stats.estimate else None,
        drifted=shift is not None and shift.drifted,
    )
    curve = scorers.learning_curve(session, queue=queue)
    return QueueReport(
        recommendation=RecommendationView(**asdict(advice)),
        stats=stats,
        drift=None
        if shift is None
        else DriftView(
            **asdict(shift),
            audit_share=max(share, settings.drift_audit_share) if shift.drifted else share,
        ),
        period=period,
        over_time=over_time,
        groups=group_rates(groups),
        topics=topic_rates(session, population, queue=queue),
        marginal=marginal(session, settings, queue=queue),
        learning=[LearningPoint(labels=n, cv_auroc=a, used=u) for n, a, u in curve],
        auroc_gain_per_100_labels=evidence.gain_per_100_labels(
            [(n, a) for n, a, _ in curve if a is not None]
        ),
        lift=found,
        throughput=[Throughput(day=d, reviews=per_day.get(d, 0)) for d in days],
    )
