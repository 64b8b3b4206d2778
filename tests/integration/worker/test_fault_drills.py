"""Fault drills with real processes on PostgreSQL and Redis: a worker killed with SIGKILL mid-batch,
and a Redis server of the drill's own killed with SIGKILL and started again with work pending. After
each, every output ends scored exactly once, none lost, none stuck; each drill prints its time to
recovery (`pytest -s` shows it).

Recovery is what production does: claims are leases (`RR_CLAIM_SECONDS`), and the API's periodic
sweep re-enqueues outputs left unscored past `RR_SWEEP_GRACE_SECONDS`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select

from benchmarks.throughput import process_env
from service import queueing
from service.demo import halueval_outputs
from service.domain import OutputIn
from service.settings import Settings
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output
from tests.conftest import Database, create_database
from tests.servers import PrivateRedis
from workers.main import run_worker
from workers.runtime import use_runtime

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "halueval" / "general_data.jsonl.gz"
PENDING = ("received",)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    database = create_database("postgres", tmp_path)
    yield database
    database.close()
    use_runtime(None)


def _settings(db: Database, settings_for, **overrides: object) -> Settings:  # type: ignore[no-untyped-def]
    return settings_for(db, score_batch_size=16, claim_seconds=5, sweep_grace_seconds=1, **overrides)  # type: ignore[no-any-return]


def _ingest(db: Database, n: int) -> list[str]:
    with transaction(db.engine) as session:
        return [
            repo.ingest_output(session, output_in=OutputIn.model_validate(o))[0].id
            for o in halueval_outputs(DATA, n)
        ]


def _counts(db: Database) -> dict[str, int]:
    with transaction(db.engine) as session:
        return dict(session.execute(select(Output.status, func.count()).group_by(Output.status)).all())  # type: ignore[arg-type]


def _scored(db: Database) -> int:
    return sum(n for status, n in _counts(db).items() if status not in PENDING)


def _recover(settings: Settings, db: Database, total: int, *, deadline_s: float = 240) -> float:
    """Run what production runs (the sweep, then a worker) until every output is scored; seconds."""
    started = time.monotonic()
    queue = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
    while _scored(db) < total:
        assert time.monotonic() - started < deadline_s, f"not recovered: {_counts(db)}"
        time.sleep(settings.claim_seconds)  # leases held by the dead worker run out
        queueing.enqueue_sweep(queue, settings)
        run_worker(settings, burst=True)
    return time.monotonic() - started


def _assert_each_scored_once(db: Database, ids: list[str]) -> None:
    with transaction(db.engine) as session:
        rows = list(session.scalars(select(Output).where(Output.id.in_(ids))))
    assert len(rows) == len(ids)
    assert all(
        r.status in {"scored", "queued"} and r.scored_at is not None and r.score is not None for r in rows
    )
    assert all(r.claim_token is None for r in rows)  # no claim left behind
    assert len({r.id for r in rows}) == len(ids)


def test_a_worker_killed_mid_batch_loses_nothing_and_scores_each_output_once(
    pg: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    settings = _settings(pg, settings_for)
    ids = _ingest(pg, 240)
    queueing.enqueue_scoring(queueing.work_queue(Redis.from_url(settings.redis_url), settings), settings, ids)
    env = process_env(settings, RR_SCORE_BATCH_SIZE="16", RR_CLAIM_SECONDS="5")
    worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while _scored(pg) < 32:  # some batches done, the job still claiming more
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    at_kill = _scored(pg)
    assert at_kill < len(ids), "the worker finished before it was killed: nothing was drilled"
    seconds = _recover(settings, pg, len(ids))
    _assert_each_scored_once(pg, ids)
    print(f"\nkill -9 drill: {at_kill} of {len(ids)} scored at the kill; recovered in {seconds:.1f} s")


def test_redis_killed_with_work_pending_is_recovered_from_the_database(
    pg: Database,
    settings_for,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    try:
        settings = _settings(pg, settings_for, redis_url=redis_server.url)
        ids = _ingest(pg, 60)
        queue = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
        queueing.enqueue_scoring(queue, settings, ids)
        assert len(queue) == 1
        # kill -9 and start again: it keeps nothing on disk, so every job, lock and count is gone
        redis_server.kill()
        redis_server.start()
        assert len(queue) == 0
        seconds = _recover(settings, pg, len(ids))
    finally:
        redis_server.close()
    _assert_each_scored_once(pg, ids)
    print(f"\nRedis restart drill: all {len(ids)} outputs scored {seconds:.1f} s after the restart")
