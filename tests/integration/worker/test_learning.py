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
from service.storage.tables import Output, Pick
from service.usecases.queues import queue_stats
from tests.conftest import Database, review
from workers import training
from workers.main import run_worker
from workers.runtime import use_runtime

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval" / "general_data.jsonl.gz"


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
    use_runtime(None)


def test_a_queues_first_reviews_train_its_scorer_which_rescores_and_rechooses_the_waiting_picks(
    fresh_db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(fresh_db, score_batch_size=64)
    assert (settings.min_reviews_for_model, settings.retrain_every) == (20, 10)
    work = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
    first = labelled(160)
    with transaction(fresh_db.engine) as session:
        ids = [repo.ingest_output(session, output_in=o)[0].id for o, _ in first]
    queueing.enqueue_scoring(work, settings, ids)
    run_worker(settings, burst=True)
    assert training.train_scorer("default") is None  # no reviews yet: cold start stays
    with transaction(fresh_db.engine) as session:
        old_picks = {p.output_id: p.stratum for p in session.scalars(select(Pick))}
    assert old_picks and "audit" in old_picks.values()

    labels = dict(zip(ids, (failed for _, failed in first), strict=True))
    # Reviewers work the picks the scores chose; the audit picks are still waiting.
    reviewed = [i for i in ids if old_picks.get(i, "audit") != "audit"][:30]
    assert len(reviewed) == 30
    with transaction(fresh_db.engine) as session:
        for output_id in reviewed:
            review(session, output_id, "fail" if labels[output_id] else "pass")
    version = training.train_scorer("default")
    assert version is not None and version.startswith("default-") and version.endswith("-30")
    with transaction(fresh_db.engine) as session:
        model = scorers.active_model(session, queue="default")
        assert model is not None and model.queue == "default" and model.n_labels == 30
        assert "weights" in model.metrics and "prior_strength" in model.metrics
        assert scorers.active_model(session, queue="elsewhere") is None
        waiting = list(session.scalars(select(Output).where(Output.status.in_(["scored", "queued"]))))
        left = {
            p.output_id: p.stratum for p in session.scalars(select(Pick).where(Pick.reviewed_at.is_(None)))
        }
    assert waiting and all(o.scorer_version == version for o in waiting)
    assert all(0.0 <= (o.score or -1) <= 1.0 for o in waiting)
    assert any(d.get("contribution") for o in waiting for d in (o.drivers or []))
    # The old scores' picks went back to the pool; the random audit stayed.
    assert set(left.values()) == {"audit"}
    assert training.train_scorer("default") is None  # not due: 10 new reviews needed

    run_worker(settings, burst=True)  # the selection the new model asked for
    with transaction(fresh_db.engine) as session:
        rechosen = list(
            session.scalars(select(Pick).where(Pick.reviewed_at.is_(None), Pick.stratum != "audit"))
        )
    assert rechosen and all(p.reason.startswith("p_fail") for p in rechosen)

    more = [i for i in ids if i not in set(reviewed)][:10]
    with transaction(fresh_db.engine) as session:
        for output_id in more:
            review(session, output_id, "fail" if labels[output_id] else "pass")
    newer = training.train_scorer("default")
    assert newer is not None and newer.endswith("-40")

    later = labelled(5, skip=200)
    with transaction(fresh_db.engine) as session:
        new_ids = [repo.ingest_output(session, output_in=o)[0].id for o, _ in later]
    queueing.enqueue_scoring(work, settings, new_ids)
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        fresh = [session.get(Output, i) for i in new_ids]
    assert all(o is not None and o.scorer_version == newer for o in fresh)

    with transaction(fresh_db.engine) as session:
        stats = queue_stats(session, queue="default")
        stored = scorers.active_model(session, queue="default")
    assert stats.model is not None and stored is not None
    assert (stats.model.version, stats.model.reviews) == (newer, 40)
    assert (stats.model.brier is None) == ("held_out" not in stored.metrics)
    assert stats.estimate is not None and stats.estimate.n_reviews == 40


def test_retraining_is_due_from_the_first_reviews_then_as_they_grow_by_a_share() -> None:
    from service.settings import Settings

    settings = Settings(min_reviews_for_model=20, retrain_every=10, retrain_growth=0.1)
    assert not training.due(settings, reviewed=19, trained_on=None)
    assert training.due(settings, reviewed=20, trained_on=None)
    assert not training.due(settings, reviewed=29, trained_on=20)
    assert training.due(settings, reviewed=30, trained_on=20)
    assert not training.due(settings, reviewed=439, trained_on=400)  # 10% of 400 = 40 > 10
    assert training.due(settings, reviewed=440, trained_on=400)
