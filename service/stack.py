"""Running the whole system in one process tree: embedded Redis plus worker subprocesses."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from service import telemetry
from service.settings import Settings

log = logging.getLogger("review_router")


def exit_on_sigterm() -> Any:
    """Make SIGTERM raise SystemExit in this process; returns the handler it replaced.

    uvicorn shuts down on SIGTERM and then raises the signal again with the handler it found at
    start. The default handler kills the process there, before ``embedded_stack``'s cleanup runs, so
    the workers and the private Redis were left running as orphans (found after ``kill`` of a
    replay's ``serve``: a dozen workers spinning on a dead Redis). As SystemExit, the cleanup runs.
    The benches use it too, so a bench stopped with ``kill`` stops the worker processes it started."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, stop)


@contextmanager
def embedded_stack(settings: Settings) -> Iterator[Settings]:
    """With no REDIS_URL: start a private Redis and the embedded workers; yields the settings to use.

    The workers are child processes pointed at the same database and Redis; they are stopped (RQ
    warm shutdown, then kill) when the block exits, on SIGTERM as well as Ctrl+C.
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
    previous = exit_on_sigterm()
    try:
        yield settings
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        redis.stop()
        log.info("embedded workers and Redis stopped")
