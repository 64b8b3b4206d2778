"""Counts for operators, the demo and replays: how much traffic is in each stage of the pipeline, and
how much work the workers still have."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service import queueing
from service.deps import PrincipalDep, SessionDep, work_queue
from service.errors import ServiceError
from service.storage import repository as repo

router = APIRouter(prefix="/stats", tags=["stats"])
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
