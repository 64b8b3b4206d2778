"""`review-router bench throughput`: raw encoder rate, ingest rate over HTTP and scoring-worker rate,
measured on the same outputs in one run, so the worker's overhead over the encoder is visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import cycle, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from service.demo import halueval_outputs
from service.progress import Progress
from service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

BATCH = 100
REPO_ROOT = Path(__file__).resolve().parents[1]


def _outputs(data: Path, count: int) -> list[dict[str, Any]]:
    base = list(halueval_outputs(data, count))
    return [
        {**o, "external_id": f"bench-{i}", "app": "bench"} for i, o in enumerate(islice(cycle(base), count))
    ]


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app under real uvicorn in a thread; yields its base URL."""
    import uvicorn

    from service.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def bench_schema(database_url: str, *, prefix: str, keep: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL schema for a bench; yields a URL whose search_path is that schema."""
    from sqlalchemy import text

    from service.storage.db import make_engine

    base = Settings(database_url=database_url).resolved_database_url
    if not base.startswith("postgresql"):
        raise SystemExit(f"{prefix} needs PostgreSQL here: give a postgresql:// --database-url")
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        if keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def signed_in(session: Session, *, username: str, role: str, now: datetime) -> str:
    """A bench account (random password, never used) and a bearer token for it."""
    from service import auth
    from service.storage import accounts

    user = accounts.add_user(
        session, username=username, password_hash=auth.hash_password(uuid.uuid4().hex), role=role, now=now
    )
    token, _ = accounts.open_session(session, user=user, now=now, lifetime=timedelta(hours=2))
    return token


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a `review-router` subprocess use this instance's database, Redis,
    data directory and RQ queue (``extra``: more RR_* settings)."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "RR_DATA_DIR": str(settings.data_dir),
        "RR_RQ_QUEUE": settings.rq_queue,
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


@contextmanager
def processes(
    commands: list[list[str]], env: dict[str, str], *, quiet: bool = False
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start these commands in the repository; stop them (SIGINT, then SIGKILL) on the way out."""
    out = subprocess.DEVNULL if quiet else None
    procs = [subprocess.Popen(c, env=env, cwd=REPO_ROOT, stdout=out, stderr=out) for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def drop_work_queue(settings: Settings) -> None:
    """A bench's RQ queue, its registries and their jobs (follow-ups of the verdicts included)."""
    from redis.exceptions import RedisError
    from rq import Queue
    from rq.job import Job

    from service.queueing import redis_connection

    connection = redis_connection(settings)
    queue = Queue(settings.rq_queue, connection=connection)
    with contextlib.suppress(RedisError):  # never hide why the bench itself stopped
        for registry in (queue.finished_job_registry, queue.failed_job_registry, queue.started_job_registry):
            for job in Job.fetch_many(registry.get_job_ids(), connection=connection):
                if job is not None:
                    job.delete(remove_from_queue=False)
            connection.delete(registry.key)
        queue.delete(delete_jobs=True)
    connection.close()


def run_throughput(settings: Settings, *, data: Path, count: int, out: Path) -> int:
    """Run the throughput benchmark and print (and save as JSON) its figures."""
    from core import scoring
    from service.queueing import EmbeddedRedis
    from service.storage.db import engine_for, transaction, upgrade
    from service.storage.tables import utcnow
    from workers.clients import get_embedder
    from workers.main import run_worker

    outputs = _outputs(data, count)
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        overrides: dict[str, Any] = {"data_dir": Path(tmp), "rq_queue": f"rr-bench-{os.getpid()}"}
        if not os.environ.get("DATABASE_URL"):
            overrides["database_url"] = ""
        settings = settings.model_copy(update=overrides)
        embedded = None
        if not settings.redis_url:
            embedded = EmbeddedRedis(settings)
            embedded.start()
            settings = settings.model_copy(update={"redis_url": embedded.url})
        try:
            upgrade(engine_for(settings))
            embedder = get_embedder(settings.embedding_model_path, settings.embedding_batch_size)
            texts = [
                scoring.embedding_text(
                    o["messages"][0]["content"], o["response"], max_chars=settings.embedding_max_chars
                )
                for o in outputs
            ]
            embedder.encode(texts[:64])  # warm-up
            t0 = time.perf_counter()
            embedder.encode(texts)
            encode_s = time.perf_counter() - t0

            with transaction(engine_for(settings)) as session:
                token = signed_in(session, username="bench-admin", role="admin", now=utcnow())
            half = len(outputs) // 2
            with (
                serving(settings) as base,
                httpx.Client(
                    base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
                ) as client,
            ):
                t0 = time.perf_counter()
                with Progress(total=half, what="single posts") as progress:
                    for o in outputs[:half]:
                        client.post("/v1/outputs", json=o).raise_for_status()
                        progress.update(1)
                single_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                with Progress(total=len(outputs) - half, what="outputs in batches") as progress:
                    for start in range(half, len(outputs), BATCH):
                        chunk = outputs[start : start + BATCH]
                        client.post("/v1/outputs/batch", json={"outputs": chunk}).raise_for_status()
                        progress.update(len(chunk))
                batch_s = time.perf_counter() - t0

                t0 = time.perf_counter()
                run_worker(settings, burst=True)
                score_s = time.perf_counter() - t0
                stats = client.get("/v1/stats").json()["outputs"]
        finally:
            if embedded is not None:
                embedded.stop()

    scored = count - stats["received"]
    figures = {
        "outputs": count,
        "database": settings.resolved_database_url.split(":", 1)[0],
        "encoder_outputs_per_s": count / encode_s,
        "ingest_single_outputs_per_s": half / single_s,
        "ingest_batch_outputs_per_s": (count - half) / batch_s,
        "worker_outputs_per_s": scored / score_s,
        "worker_to_encoder_ratio": (scored / score_s) / (count / encode_s),
        "scored": scored,
        "cpu_threads": os.cpu_count(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(figures, indent=2))
    print(f"throughput on {count} HaluEval outputs ({figures['database']}, {os.cpu_count()} CPUs)")
    print(f"  raw encoder (all-MiniLM-L6-v2)   {figures['encoder_outputs_per_s']:8.1f} outputs/s")
    print(f"  ingest, one POST per output      {figures['ingest_single_outputs_per_s']:8.1f} outputs/s")
    print(f"  ingest, batches of {BATCH}           {figures['ingest_batch_outputs_per_s']:8.1f} outputs/s")
    print(
        f"  scoring worker (1, end to end)   {figures['worker_outputs_per_s']:8.1f} outputs/s "
        f"({scored} scored)"
    )
    print(f"  worker / raw encoder             {figures['worker_to_encoder_ratio']:8.2f}")
    print(f"written to {out / 'throughput.json'}")
    return 0
