"""Neighbour indexes that follow the database, on real SQLite and PostgreSQL, and survive restarts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete

from service.storage import vectors as repo
from service.storage.db import transaction
from service.storage.tables import Output, Review, new_id, utcnow
from tests.conftest import Database
from workers.neighbours import FILES, Neighbours

DIM = 16
START = utcnow() - timedelta(hours=1)


def units(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def store_outputs(db: Database, vectors: np.ndarray, times: Sequence[datetime]) -> list[str]:
    """Scored outputs with these embeddings and scored_at times; returns their ids."""
    ids = [new_id() for _ in range(len(vectors))]
    with transaction(db.engine) as session:
        session.add_all(
            Output(
                id=output_id,
                app="app",
                payload_hash="h" * 64,
                prompt="a question",
                response="an answer",
                status="scored",
                received_at=at,
                samples=[],
                meta={},
                attempts=0,
                embedding=vector.tobytes(),
                scored_at=at,
            )
            for output_id, vector, at in zip(ids, vectors, times, strict=True)
        )
    return ids


def review(db: Database, output_id: str, verdict: str, at: datetime) -> None:
    with transaction(db.engine) as session:
        session.add(
            Review(output_id=output_id, verdict=verdict, reviewer="ann", categories=[], created_at=at)
        )


def minutes(*offsets: float) -> list[datetime]:
    return [START + timedelta(minutes=m) for m in offsets]


def mean_distance(query: np.ndarray, reference: np.ndarray, k: int) -> float:
    sims = np.sort(reference @ query)[::-1][:k]
    return float(1.0 - sims.mean())


def test_a_restarted_worker_resumes_from_its_saved_indexes_and_catches_up(
    fresh_db: Database, tmp_path: Path
) -> None:
    first = units(6, seed=1)
    ids = store_outputs(fresh_db, first, minutes(0, 1, 2, 3, 4, 5))
    review(fresh_db, ids[0], "fail", START + timedelta(minutes=10))
    review(fresh_db, ids[1], "pass", START + timedelta(minutes=11))

    worker = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine)
    assert set(worker.recent.ids) == set(ids) and set(worker.reviewed.ids) == {ids[0], ids[1]}
    assert worker.failed_ids == {ids[0]}
    query = units(2, seed=2)
    assert worker.recent_distance(query, 3) == pytest.approx(
        [mean_distance(q, first, 3) for q in query], abs=1e-5
    )
    assert worker.reviewed_distance(query, 5) == pytest.approx(
        [mean_distance(q, first[:2], 2) for q in query], abs=1e-5
    )
    assert worker.failure_similarity(query) == pytest.approx([float(first[0] @ q) for q in query], abs=1e-5)
    own = worker.recent_distance(first[:1], 1, exclude_ids=[ids[0]])
    assert own[0] == pytest.approx(mean_distance(first[0], first[1:], 1), abs=1e-5)
    worker.save(tmp_path)

    # While the worker is down: more traffic, a new failure, a reversed verdict, and an output is deleted.
    second = units(3, seed=3)
    new_ids = store_outputs(fresh_db, second, minutes(20, 21, 22))
    review(fresh_db, new_ids[0], "fail", START + timedelta(minutes=30))
    review(fresh_db, ids[0], "pass", START + timedelta(minutes=31))
    with transaction(fresh_db.engine) as session:
        session.execute(delete(Output).where(Output.id == ids[5]))

    restarted = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine)
    # The deleted output is still held: the index came from the file, not from a rebuild.
    assert set(restarted.recent.ids) == set(ids) | set(new_ids)
    assert set(restarted.reviewed.ids) == {ids[0], ids[1], new_ids[0]}
    assert restarted.failed_ids == {new_ids[0]}
    assert restarted.failure_similarity(second[:1]) == pytest.approx([1.0], abs=1e-5)
    assert restarted.recent.watermark == (START + timedelta(minutes=22), new_ids[2])


def test_a_running_worker_sees_new_outputs_and_reviews_after_a_sync(
    fresh_db: Database, tmp_path: Path
) -> None:
    worker = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine)
    assert len(worker.recent) == 0 and worker.failure_similarity(units(1, seed=0)) == [None]
    assert worker.recent_distance(units(1, seed=0), 5) == [None]

    ids = store_outputs(fresh_db, units(4, seed=4), minutes(0, 1, 2, 3))
    review(fresh_db, ids[2], "fail", START + timedelta(minutes=5))
    synced = worker.sync(fresh_db.engine)
    assert (synced.recent, synced.reviewed) == (4, 1)
    assert worker.recent.ids == ids and worker.failed_ids == {ids[2]}


def test_a_fresh_worker_reads_only_the_newest_window_of_traffic(fresh_db: Database, tmp_path: Path) -> None:
    ids = store_outputs(fresh_db, units(7, seed=5), minutes(0, 1, 2, 3, 4, 5, 6))
    worker = Neighbours.open(tmp_path, DIM, 3, fresh_db.engine, page_size=2)
    assert worker.recent.ids == ids[-3:]


def test_outputs_scored_at_the_same_instant_are_all_read_across_pages(
    fresh_db: Database, tmp_path: Path
) -> None:
    ids = store_outputs(fresh_db, units(5, seed=6), minutes(0, 0, 0, 0, 0))
    worker = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine, page_size=2)
    assert sorted(worker.recent.ids) == sorted(ids)


def test_an_output_committed_late_within_the_overlap_is_still_picked_up(
    fresh_db: Database, tmp_path: Path
) -> None:
    now = utcnow()
    store_outputs(fresh_db, units(1, seed=7), [now])
    worker = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine, overlap=timedelta(seconds=30))
    late = store_outputs(fresh_db, units(1, seed=8), [now - timedelta(seconds=5)])
    worker.sync(fresh_db.engine)
    assert late[0] in worker.recent


def test_a_damaged_index_file_is_rebuilt_from_the_database(fresh_db: Database, tmp_path: Path) -> None:
    ids = store_outputs(fresh_db, units(3, seed=9), minutes(0, 1, 2))
    Neighbours.open(tmp_path, DIM, 100, fresh_db.engine).save(tmp_path)
    (tmp_path / FILES["recent"]).write_bytes(b"garbage")
    worker = Neighbours.open(tmp_path, DIM, 100, fresh_db.engine)
    assert worker.recent.ids == ids
    other_dim = Neighbours.open(tmp_path, DIM * 2, 100, fresh_db.engine)
    assert len(other_dim.recent) == 0  # stored embeddings of another dimension are skipped


def test_reviewed_since_lists_each_output_once_with_its_latest_verdict(fresh_db: Database) -> None:
    ids = store_outputs(fresh_db, units(3, seed=10), minutes(0, 1, 2))
    review(fresh_db, ids[0], "fail", START + timedelta(minutes=10))
    review(fresh_db, ids[0], "pass", START + timedelta(minutes=12))
    review(fresh_db, ids[1], "fail", START + timedelta(minutes=11))
    with transaction(fresh_db.engine) as session:
        rows = repo.reviewed_since(session, after=None, limit=10)
        assert [(r[0], r[1], r[3]) for r in rows] == [
            (ids[1], START + timedelta(minutes=11), True),
            (ids[0], START + timedelta(minutes=12), False),
        ]
        later = repo.reviewed_since(session, after=START + timedelta(minutes=11), after_id=ids[1], limit=10)
        assert [r[0] for r in later] == [ids[0]]
        assert [r[0] for r in repo.scored_since(session, after=START + timedelta(minutes=1), limit=10)] == [
            ids[2]
        ]


def test_a_worker_restarted_with_another_window_resizes_it(fresh_db: Database, tmp_path: Path) -> None:
    ids = store_outputs(fresh_db, units(5, seed=11), minutes(0, 1, 2, 3, 4))
    Neighbours.open(tmp_path, DIM, 2, fresh_db.engine).save(tmp_path)
    assert Neighbours.open(tmp_path, DIM, 4, fresh_db.engine).recent.ids == ids[-4:]
    assert Neighbours.open(tmp_path, DIM, 1, fresh_db.engine).recent.ids == ids[-1:]
