"""Running the whole system in one process tree: embedded Redis plus worker subprocesses."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from service import telemetry
from service.settings import Settings

log = logging.getLogger("review_router")


@contextmanager
def embedded_stack(settings: Settings) -> Iterator[Settings]:
    """With no REDIS_URL: start a private Redis and the embedded workers; yields the settings to use.

    The workers are child processes pointed at the same database and Redis; they are stopped (RQ
    warm shutdown, then kill) when the block exits.
    """
    from service.queueing import EmbeddedRedis
    from service.storage.db import engine_for, upgrade

    upgrade(engine_for(settings))
    if settings.redis_url:
        telemetry.configure(settings)
        yield settings
        return
    telemetry.configure(settings, fresh=True)  # our workers are about to start: old counts go
    redis = EmbeddedRedis(settings)
    redis.start()
    settings = settings.model_copy(update={"redis_url": redis.url})
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.resolved_database_url,
        "RR_DATA_DIR": str(settings.data_dir.resolve()),
        "HF_HUB_OFFLINE": "1",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--name", f"embedded-{i}-{os.getpid()}"], env=env
        )
        for i in range(settings.embedded_workers)
    ]
    log.info("embedded Redis on %s, %d worker(s) started", redis.socket, len(workers))
    try:
        yield settings
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        redis.stop()
        log.info("embedded workers and Redis stopped")
