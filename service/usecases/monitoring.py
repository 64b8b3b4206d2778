"""What ``/metrics`` reads from the database and Redis at scrape time: the backlog by stage, each
queue's depth, failure-rate estimate and active scorer, and the workers' job counts.

The failure-rate estimate reads a queue's whole traffic, so each process keeps it for up to
``ESTIMATE_TTL`` seconds while the queue gains no verdict; the counts are read on every scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from rq import Queue
from sqlalchemy.orm import Session

from service import queueing
from service.errors import ServiceError
from service.settings import Settings
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage import scorers
from service.storage.population import traffic_estimate
from service.telemetry import Gauge

log = logging.getLogger(__name__)
ESTIMATE_TTL = 60.0
_estimates: dict[tuple[str, str], tuple[float, int, list[tuple[dict[str, str], float]]]] = {}


def _failure_rate(session: Session, queue: str) -> list[tuple[dict[str, str], float]]:
    key = (str(session.get_bind().engine.url), queue)
    reviewed = scorers.count_reviewed(session, queue=queue)
    cached = _estimates.get(key)
    if cached is not None and cached[1] == reviewed and time.monotonic() - cached[0] < ESTIMATE_TTL:
        return cached[2]
    rate = traffic_estimate(session, queue=queue)
    samples = (
        []
        if rate is None
        else [
            ({"queue": queue, "bound": b}, v)
            for b, v in (("estimate", rate.rate), ("low", rate.low), ("high", rate.high))
        ]
    )
    _estimates[key] = (time.monotonic(), reviewed, samples)
    return samples


def gauges(session: Session, settings: Settings, work: Queue | None) -> Iterator[Gauge]:
    """The state gauges of one scrape."""
    counts = repo.count_by_status(session)
    yield Gauge(
        "review_router_outputs",
        "Outputs in each stage (received is the scoring backlog).",
        [({"status": status}, float(n)) for status, n in counts.items()],
    )
    names = [q.name for q in settings.queues]
    yield Gauge(
        "review_router_queue_depth",
        "Picks waiting for a reviewer, per review queue.",
        [({"queue": q}, float(queues_repo.count_waiting(session, queue=q))) for q in names],
    )
    yield Gauge(
        "review_router_failure_rate",
        "Each queue's estimated failure rate with its 95% interval (bound: estimate, low, high).",
        [sample for q in names for sample in _failure_rate(session, q)],
    )
    active = [(q, scorers.active_model_info(session, queue=q)) for q in names]
    yield Gauge(
        "review_router_active_scorer",
        "1 for each queue's active learned scorer version (none on cold start).",
        [({"queue": q, "version": row.version}, 1.0) for q, row in active if row is not None],
    )
    if work is None:
        return
    try:
        queued, running = queueing.pending_work(work)
        failed = queueing.failed_jobs(work)
    except ServiceError as exc:
        log.warning("job counts unavailable for /metrics: %s", exc)
        return
    yield Gauge(
        "review_router_jobs",
        "Worker jobs by state (failed: retries spent, kept a week).",
        [
            ({"state": "queued"}, float(queued)),
            ({"state": "running"}, float(running)),
            ({"state": "failed"}, float(failed)),
        ],
    )
