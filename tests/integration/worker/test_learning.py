"""Reviews teach the scorer: a calibrated model is trained, swapped in, and scores what comes next."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from core import scoring
from core.reviews import ReviewKind
from core.scoring import SCORER_VERSION
from service import queueing
from service.domain import OutputIn
from service.storage import repository as repo
from service.storage import scorers
from service.storage.db import transaction
from service.storage.tables import Output, Pick, Review, ScorerModel, new_id, utcnow
from service.usecases.queues import queue_stats
from service.usecases.report import queue_report
from tests.conftest import Database, review
from workers import training
from workers.main import run_worker
from workers.pipeline import scoring_params
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


def test_a_queues_reviews_train_its_scorer_used_only_while_it_beats_cold_start(
    fresh_db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(fresh_db, score_batch_size=64)
    assert (settings.min_reviews_for_model, settings.retrain_every) == (10, 10)
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

    # This queue's failures are its long answers: a context signal cold start does not rank by, so
    # the model that learns it beats cold start on the reviews, out of fold, and is used.
    with transaction(fresh_db.engine) as session:
        lengths = {o.id: (o.signals or {})["length"] for o in session.scalars(select(Output))}
    # Reviewers work the picks the scores chose; the audit picks are still waiting.
    reviewed = [i for i in ids if old_picks.get(i, "audit") != "audit"][:30]
    assert len(reviewed) == 30
    long_answer = sorted(lengths[i] for i in reviewed)[15]
    labels = {i: lengths[i] >= long_answer for i in ids}
    with transaction(fresh_db.engine) as session:
        for output_id in reviewed:
            review(session, output_id, "fail" if labels[output_id] else "pass")
    version = training.train_scorer("default")
    assert version is not None and version.startswith("default-") and version.endswith("-30")
    with transaction(fresh_db.engine) as session:
        model = scorers.active_model(session, queue="default")
        assert model is not None and model.queue == "default" and model.n_labels == 30
        assert "weights" in model.metrics and "prior_strength" in model.metrics
        assert model.metrics["used"] and model.metrics["cv_auroc"] > model.metrics["baseline_auroc"]
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

    # The queue turns out to fail where cold start already looks: every verdict so far is ruled
    # again (an admin's adjudication is the latest verdict) and ten more come in. The next model
    # cannot beat cold start on these reviews, so it is kept back and the queue goes back to cold
    # start, rescoring what waits and re-choosing its picks.
    with transaction(fresh_db.engine) as session:
        rows = list(session.scalars(select(Output).where(Output.id.in_(ids))))
        recent = [s for s, _ in repo.recent_signals(session, limit=settings.reference_window)]
    cold = dict(
        zip(
            [o.id for o in rows],
            [
                c.score
                for c in scoring.coldstart_all(
                    [o.signals or {} for o in rows], recent, scoring_params(settings)
                )
            ],
            strict=True,
        )
    )
    last = [i for i in ids if i not in set(reviewed) | set(more)][:10]
    cut = sorted(cold[i] for i in [*reviewed, *more, *last])[25]
    later_now = utcnow() + timedelta(seconds=1)
    with transaction(fresh_db.engine) as session:
        for output_id in [*reviewed, *more]:
            session.add(
                Review(
                    id=new_id(),
                    output_id=output_id,
                    queue="default",
                    verdict="fail" if cold[output_id] >= cut else "pass",
                    reviewer="admin",
                    kind=ReviewKind.ADJUDICATION.value,
                    created_at=later_now,
                )
            )
        for output_id in last:
            review(session, output_id, "fail" if cold[output_id] >= cut else "pass", now=later_now)
    kept_back = training.train_scorer("default")
    assert kept_back is not None and kept_back.endswith("-50")
    with transaction(fresh_db.engine) as session:
        assert scorers.active_model(session, queue="default") is None
        stored_back = session.scalars(select(ScorerModel).where(ScorerModel.version == kept_back)).one()
        waiting = list(session.scalars(select(Output).where(Output.status.in_(["scored", "queued"]))))
        left = {
            p.output_id: p.stratum for p in session.scalars(select(Pick).where(Pick.reviewed_at.is_(None)))
        }
    assert stored_back.active is False and stored_back.metrics["used"] is False
    assert stored_back.metrics["baseline_auroc"] == 1.0 >= stored_back.metrics["cv_auroc"]
    assert waiting and all(o.scorer_version == SCORER_VERSION for o in waiting)
    assert all(0.0 <= (o.score or -1) <= 1.0 for o in waiting)
    assert any("percentile" in d for o in waiting for d in (o.drivers or []))
    assert set(left.values()) <= {"audit"}
    assert training.train_scorer("default") is None  # kept back still counts: not due again yet

    # The learning curve the dashboard draws: every version, used or kept back, with its AUROC.
    with transaction(fresh_db.engine) as session:
        report = queue_report(session, settings, queue="default")
    assert [(p.labels, p.used) for p in report.learning] == [(30, True), (40, True), (50, False)]
    assert all(p.cv_auroc is not None for p in report.learning)
    assert report.auroc_gain_per_100_labels is not None


def test_retraining_is_due_from_the_first_reviews_then_as_they_grow_by_a_share() -> None:
    from service.settings import Settings

    settings = Settings(min_reviews_for_model=20, retrain_every=10, retrain_growth=0.1)
    assert not training.due(settings, reviewed=19, trained_on=None)
    assert training.due(settings, reviewed=20, trained_on=None)
    assert not training.due(settings, reviewed=29, trained_on=20)
    assert training.due(settings, reviewed=30, trained_on=20)
    assert not training.due(settings, reviewed=439, trained_on=400)  # 10% of 400 = 40 > 10
    assert training.due(settings, reviewed=440, trained_on=400)
