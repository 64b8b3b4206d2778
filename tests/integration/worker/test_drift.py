"""Drift through the real pipeline: HaluEval's general chat traffic, then its QA questions. The
switch is found in the embeddings, the queue's audit share goes up while it lasts, and the report
(and so the dashboard) says so."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select

from service import queueing
from service.demo import halueval_outputs
from service.domain import OutputIn
from service.settings import QueueConfig, Settings
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output, Pick, Selection
from service.usecases.report import queue_report
from tests.conftest import Database
from workers.main import run_worker
from workers.runtime import use_runtime

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval"


@pytest.fixture(autouse=True)
def fresh_runtime() -> None:
    use_runtime(None)


def post_and_score(db: Database, settings: Settings, outputs: list[dict[str, object]]) -> None:
    with transaction(db.engine) as session:
        ids = [repo.ingest_output(session, output_in=OutputIn.model_validate(o))[0].id for o in outputs]
    queueing.enqueue_scoring(queueing.work_queue(Redis.from_url(settings.redis_url), settings), settings, ids)
    run_worker(settings, burst=True)


def qa(n: int) -> list[dict[str, object]]:
    with gzip.open(DATA / "qa_one_turn.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
    return [{"prompt": r["question"], "response": r["right_answer"], "app": "qa"} for r in rows]


def last_run_audit_share(db: Database) -> float:
    with transaction(db.engine) as session:
        run = session.scalars(select(Selection).order_by(Selection.created_at.desc()).limit(1)).one()
        picks = session.scalar(select(func.count()).select_from(Pick).where(Pick.selection_id == run.id)) or 0
        audits = session.scalar(
            select(func.count()).select_from(Pick).where(Pick.selection_id == run.id, Pick.stratum == "audit")
        )
    return (audits or 0) / max(picks, 1)


def calm_queue(db: Database, settings_for) -> Settings:  # type: ignore[no-untyped-def]
    """A queue with a 40-pick backlog and a 50% drift share, after 320 outputs of chat traffic."""
    settings = settings_for(
        db,
        queues=[QueueConfig(name="default", budget_per_day=2000, backlog_limit=40, audit_share=0.1)],
        drift_window=80,
        drift_reference=240,
        drift_audit_share=0.5,
        score_batch_size=80,
    )
    post_and_score(
        db, settings, [{**o, "app": "chat"} for o in halueval_outputs(DATA / "general_data.jsonl.gz", 320)]
    )
    return settings


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_switch_of_traffic_raises_the_audit_until_the_report_says_why(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    settings = calm_queue(fresh_db, settings_for)
    with transaction(fresh_db.engine) as session:
        calm = queue_report(session, settings, queue="default")
    assert calm.drift is not None and not calm.drift.drifted and calm.drift.audit_share == 0.1

    with transaction(fresh_db.engine) as session:  # make room: the backlog is full of chat picks
        session.execute(Pick.__table__.delete())
    post_and_score(fresh_db, settings, qa(80))
    with transaction(fresh_db.engine) as session:
        switched = queue_report(session, settings, queue="default")
    assert switched.drift is not None and switched.drift.drifted and switched.drift.p_value < 1e-4
    assert switched.drift.audit_share == 0.5
    assert last_run_audit_share(fresh_db) >= 0.4  # the selection after the switch audited half


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_switch_of_traffic_while_the_backlog_is_full_is_audited_at_the_drift_share(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    """No selection runs while routing's backlog is full, but the new traffic is still drawn into the
    audit: at the drift share once it drifts, not at the share of the last selection before it."""
    settings = calm_queue(fresh_db, settings_for)
    with transaction(fresh_db.engine) as session:
        shares = set(session.scalars(select(Selection.audit_share)))
    assert shares == {0.1}  # calm traffic: every selection drew at the queue's own share
    post_and_score(fresh_db, settings, qa(80))  # the backlog is still full of chat picks
    with transaction(fresh_db.engine) as session:
        rates = set(session.scalars(select(Output.audit_rate).where(Output.app == "qa")))
        members = session.scalar(
            select(func.count())
            .select_from(Pick)
            .join(Output, Output.id == Pick.output_id)
            .where(Output.app == "qa", Pick.stratum == "audit", Pick.selection_id.is_(None))
        )
    assert rates == {0.5}
    assert (members or 0) >= 20  # about half of the 80, not a tenth
