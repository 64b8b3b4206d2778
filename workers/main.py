"""Worker start-up: connect, preload the encoder once, then run RQ until told to stop."""

from __future__ import annotations

import logging
import os

from rq import SimpleWorker
from rq.job import Job

from service import queueing, telemetry
from service.settings import Settings
from service.storage.db import engine_for, upgrade
from workers.runtime import Runtime, use_runtime

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Run one RQ worker on the review-router queue; with ``burst`` it stops once the queue is empty.

    SimpleWorker runs jobs in this process, so the encoder loaded here serves every job (a forking
    worker would pay for the model, or risk torch's thread pools, in each child).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    telemetry.configure(settings)
    engine = engine_for(settings)
    upgrade(engine)
    rt = Runtime(settings=settings, engine=engine)
    log.info("loading the encoder")
    _ = rt.embedder
    use_runtime(rt)
    connection = queueing.redis_connection(settings)
    worker = SimpleWorker(
        [queueing.work_queue(connection, settings)],
        connection=connection,
        name=name,
        exception_handlers=[_count_failure],
    )
    level = logging.getLevelName(logging.getLogger("rq.worker").getEffectiveLevel())
    try:
        return worker.work(burst=burst, logging_level=level)
    finally:
        rt.save_neighbours(every=1)  # a restarted worker then only catches up on what it missed
        telemetry.process_exited()


def _count_failure(job: Job, *_: object) -> bool:
    """Count a job that raised for /metrics; RQ's default handling (retry, failed registry) follows."""
    telemetry.job_failed(job.func_name or "unknown")
    return True
