"""The report's topics: real embeddings of real traffic, partitioned, each with its own estimate and
its own advice."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from core import estimate
from core.topics import topics_of
from service.cli.main import main
from service.settings import QueueConfig, get_settings
from service.storage import population
from service.storage.db import transaction
from service.storage.tables import Output, Pick
from service.usecases.report import queue_report
from tests.conftest import Database, review
from tests.integration.worker.test_jobs import enqueue, ingest
from workers.main import run_worker
from workers.runtime import use_runtime


@pytest.fixture(autouse=True)
def _reset_runtime():  # type: ignore[no-untyped-def]
    yield
    use_runtime(None)


def test_each_topic_of_the_traffic_has_its_rate_and_its_advice(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="support", budget_per_day=60, backlog_limit=60, audit_share=0.3)]
    )
    enqueue(settings, ingest(fresh_db, 120))
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        picks = session.scalars(select(Pick).order_by(Pick.score.desc())).all()
        for n, pick in enumerate(picks):
            review(session, pick.output_id, "fail" if n % 3 == 0 else "pass")
        report = queue_report(session, settings, queue="support")
        rows = population.estimate_population(session, queue="support")
        prompts = set(session.scalars(select(Output.prompt)))
        recent = population.recent_embeddings(session, queue="support", limit=5000)
    topics = report.topics
    assert len(topics) == 2  # 120 outputs: sqrt(120 / 40) rounds to 2
    assert [t.topic for t in topics] == [0, 1] and topics[0].outputs >= topics[1].outputs
    assert sum(t.outputs for t in topics) == report.stats.outputs == len(rows)
    assert sum(t.reviews for t in topics) == report.stats.reviews
    assert sum(t.failures for t in topics) == report.stats.failures
    assert all(any(" ".join(p.split()).startswith(t.example) for p in prompts) for t in topics)
    for t in topics:
        rate = t.estimate
        assert rate is not None and 0.0 <= rate.low <= rate.rate <= rate.high <= 1.0
        assert rate.n_reviews == t.reviews
        assert t.recommendation.action == "not enough evidence"  # fewer than 50 routed reviews each
    # each topic's estimate is the queue's estimate over that topic's outputs alone
    found = topics_of(np.stack([np.frombuffer(v, dtype=np.float32) for _, v, _ in recent]))
    assert found is not None
    topic_of = dict(zip([oid for oid, _, _ in recent], found.labels.tolist(), strict=True))
    for t in topics:
        own = [population.as_output(r) for r in rows if topic_of[r.output_id] == t.topic]
        assert t.estimate is not None and t.estimate.rate == pytest.approx(estimate.every_review(own).rate)
        assert t.estimate.high == pytest.approx(estimate.every_review(own).high)


def test_the_report_says_what_the_latest_reviews_bought(
    fresh_db: Database, settings_for, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="support", budget_per_day=70, backlog_limit=70)]
    )
    enqueue(settings, ingest(fresh_db, 80))
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        assert queue_report(session, settings, queue="support").marginal is None
        picks = session.scalars(select(Pick).where(Pick.in_routing).order_by(Pick.score.desc())).all()
        verdicts = ["fail" if n % 4 == 0 else "pass" for n in range(len(picks))]
        for pick, verdict in zip(picks, verdicts, strict=True):
            review(session, pick.output_id, verdict)
        found = queue_report(session, settings, queue="support").marginal
    assert len(picks) > 50
    # the same in a terminal: `review-router report QUEUE`
    monkeypatch.setenv("RR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RR_QUEUES", '[{"name": "support"}]')
    get_settings.cache_clear()
    try:
        assert main(["report", "support"]) == 0
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().out
    assert f"failures in the last 50 reviews, {found.new_modes} unlike any failure before" in printed
    assert "topic 0 " in printed and "topic 1 " in printed
    assert found is not None and found.reviews == 50 and found.floor == settings.similar_floor
    assert found.failures == verdicts[-50:].count("fail")
    assert 1 <= found.new_modes <= found.failures  # real answers to unrelated questions: some are new
