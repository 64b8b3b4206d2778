"""Counts for operators, the demo and replays: how much traffic is in each stage of the pipeline, and
how much work the workers still have."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from service import queueing, telemetry
from service.deps import PrincipalDep, SessionDep, SettingsDep, work_queue
from service.errors import ServiceError
from service.storage import repository as repo
from service.usecases import monitoring

router = APIRouter(prefix="/stats", tags=["stats"])
#: Served at the root, not under /v1: where Prometheus looks.
metrics_router = APIRouter(tags=["meta"])
log = logging.getLogger(__name__)


class WorkView(BaseModel):
    queued: int = Field(description="Jobs waiting for a worker (scoring, sampling, selection, training).")
    running: int = Field(description="Jobs a worker is running now.")


class Stats(BaseModel):
    outputs: dict[str, int]
    total: int
    work: WorkView | None = Field(default=None, description="Null when Redis cannot be reached.")


@router.get("", response_model=Stats)
def get_stats(_: PrincipalDep, session: SessionDep, request: Request) -> Stats:
    """Outputs per status (received, scored, queued, reviewed) and the workers' backlog; any
    signed-in caller or API key."""
    counts = repo.count_by_status(session)
    work = None
    try:
        queued, running = queueing.pending_work(work_queue(request))
        work = WorkView(queued=queued, running=running)
    except ServiceError as exc:
        log.warning("work counts unavailable: %s", exc)
    return Stats(outputs=counts, total=sum(counts.values()), work=work)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format."}},
)
def metrics(_: PrincipalDep, session: SessionDep, settings: SettingsDep, request: Request) -> Response:
    """Prometheus metrics, for any API key or account (give Prometheus a key as its bearer token).

    Summed over every API process and worker of this instance: outputs ingested, reviews, scoring
    latency and job failures as they happen; backlog, queue depth, job counts, the failure-rate
    estimate and the active scorer read at scrape time."""
    try:
        work = work_queue(request)
    except ServiceError as exc:
        log.warning("no job counts for /metrics: %s", exc)
        work = None
    body, media_type = telemetry.exposition(settings, lambda: monitoring.gauges(session, settings, work))
    return Response(content=body, media_type=media_type)
