"""Reviews teach the scorer: a calibrated model is trained, swapped in, and scores what comes next."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from service import queueing
from service.domain import OutputIn
from service.storage import repository as repo
from service.storage import scorers
from service.storage.db import transaction
from service.storage.tables import Output
from tests.conftest import Database, review
from workers import jobs, training
from workers.main import run_worker

DATA = Path(__file__).resolve().parents[2] / "data" / "halueval" / "general_data.jsonl.gz"


def labelled(n: int, skip: int = 0) -> list[tuple[OutputIn, bool]]:
    out = []
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < skip:
                continue
            if len(out) == n:
                break
            row = json.loads(line)
            out.append(
                (
                    OutputIn(
                        external_id=row["ID"], prompt=row["user_query"], response=row["chatgpt_response"]
                    ),
                    row["hallucination"] == "yes",
                )
            )
    return out


@pytest.fixture(autouse=True)
def _reset_runtime():  # type: ignore[no-untyped-def]
    yield
    jobs.use_runtime(None)


def test_reviews_train_a_scorer_that_rescores_waiting_and_scores_new_outputs(
    fresh_db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(fresh_db, min_reviews_for_model=100, score_batch_size=64)
    work = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
    first = labelled(160)
    with transaction(fresh_db.engine) as session:
        ids = [repo.ingest_output(session, output_in=o)[0].id for o, _ in first]
    queueing.enqueue_scoring(work, settings, ids)
    run_worker(settings, burst=True)
    assert training.train_scorer() is None  # no reviews yet: cold start stays

    with transaction(fresh_db.engine) as session:
        for output_id, (_, failed) in list(zip(ids, first, strict=True))[:130]:
            verdict = "fail" if failed else "pass"
            review(session, output_id, verdict)
    version = training.train_scorer()
    assert version is not None and version.startswith("learned-")
    with transaction(fresh_db.engine) as session:
        model = scorers.active_model(session)
        assert model is not None and model.calibration == "platt" and model.n_labels == 130
        assert 0.0 <= model.metrics["cv_auroc"] <= 1.0
        waiting = list(session.scalars(select(Output).where(Output.status.in_(["scored", "queued"]))))
    assert waiting and all(o.scorer_version == version for o in waiting)
    assert all(0.0 <= (o.score or -1) <= 1.0 for o in waiting)
    assert any(d.get("contribution") for o in waiting for d in (o.drivers or []))
    assert training.train_scorer() is None  # nothing new since

    later = labelled(5, skip=200)
    with transaction(fresh_db.engine) as session:
        new_ids = [repo.ingest_output(session, output_in=o)[0].id for o, _ in later]
    queueing.enqueue_scoring(work, settings, new_ids)
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        fresh = [session.get(Output, i) for i in new_ids]
    assert all(o is not None and o.scorer_version == version for o in fresh)
