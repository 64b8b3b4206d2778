"""Scoring, selection and the sweep, run by a real RQ worker on real Redis and a real database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from redis import Redis
from sqlalchemy import func, select, update

from core.scoring import SCORER_VERSION
from service import queueing
from service.demo import halueval_outputs
from service.domain import OutputIn
from service.settings import QueueConfig, Settings
from service.storage import population, reviewing
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output, Pick, Selection, utcnow
from service.usecases.queues import as_output
from tests.conftest import Database, add_account, credentials, review
from workers import jobs, picking
from workers.main import run_worker
from workers.runtime import runtime, use_runtime

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval" / "general_data.jsonl.gz"


@pytest.fixture(autouse=True)
def _reset_runtime():  # type: ignore[no-untyped-def]
    yield
    use_runtime(None)


def ingest(db: Database, n: int, *, app: str = "halueval-demo") -> list[str]:
    with transaction(db.engine) as session:
        rows = [
            repo.ingest_output(session, output_in=OutputIn.model_validate({**o, "app": app}))[0]
            for o in halueval_outputs(DATA, n)
        ]
        return [r.id for r in rows]


def enqueue(settings: Settings, ids: list[str]) -> None:
    queue = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
    queueing.enqueue_scoring(queue, settings, ids)


def outputs(db: Database) -> list[Output]:
    with transaction(db.engine) as session:
        return list(session.query(Output).order_by(Output.received_at))


def test_worker_scores_real_responses_and_fills_the_queue(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="support", budget_per_day=8)], score_batch_size=16
    )
    ids = ingest(fresh_db, 40)
    enqueue(settings, ids[:1])  # one job drains everything that is waiting, in batches
    run_worker(settings, burst=True)
    rows = outputs(fresh_db)
    assert {r.status for r in rows} == {"scored", "queued"}
    assert all(r.scorer_version == SCORER_VERSION and r.score is not None for r in rows)
    vectors = [np.frombuffer(r.embedding or b"", dtype=np.float32) for r in rows]
    assert all(v.shape == (384,) and abs(float(np.linalg.norm(v)) - 1) < 1e-3 for v in vectors)
    assert all(r.signals and r.signals["novelty"] is not None and r.signals["mean_nll"] is None for r in rows)
    best = max(rows, key=lambda r: r.score or 0)
    assert best.status == "queued"  # the most likely failure is always shown
    # every output was in the window once: the audit drew it then, at 10%, or never will
    assert all(r.audit_rate == pytest.approx(0.1) for r in rows)
    with transaction(fresh_db.engine) as session:
        total, items = queues_repo.waiting_items(session, queue="support", limit=50, offset=0)
        picks = list(session.scalars(select(Pick)))
        assert {p.stratum for p in picks} <= {"uncertain", "diverse", "novel", "audit"}
        routed = [p for p in picks if p.stratum != "audit" or p.routed_at is not None]
        assert (
            len(routed) == 7 == queues_repo.count_waiting(session, queue="support") == total
        )  # 8, less an audit turn
        assert {p.id for p, _ in items} == {p.id for p in routed}  # waiting members are not listed
        members = [p for p in picks if p.stratum == "audit"]
        assert queues_repo.count_audit_waiting(session, queue="support") == sum(
            p.routed_at is None for p in members
        )
        assert len([r for r in rows if r.status == "queued"]) == 7 + sum(p.routed_at is None for p in members)
        assert all(p.inclusion_probability == pytest.approx(0.1) for p in members)
        assert all("random audit" in p.reason for p in members)
        assert all(p.reason and p.selection_id for p in picks)
        run = session.get(Selection, picks[0].selection_id)
        assert run is not None and run.window_size == 40 - run.junk


def test_scoring_is_idempotent(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db)
    ids = ingest(fresh_db, 5)
    enqueue(settings, ids)
    enqueue(settings, ids)  # the same work twice, as a retry would
    run_worker(settings, burst=True)
    before = {r.id: (r.score, r.scored_at) for r in outputs(fresh_db)}
    assert jobs.score_outputs(ids) == 0
    assert {r.id: (r.score, r.scored_at) for r in outputs(fresh_db)} == before


def test_the_sweep_recovers_outputs_whose_job_was_lost(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db, sweep_grace_seconds=30)
    ids = ingest(fresh_db, 6)  # stored, but their scoring job never reached Redis
    with transaction(fresh_db.engine) as session:
        session.execute(update(Output).values(received_at=utcnow() - timedelta(minutes=5)))
    queueing.enqueue_sweep(queueing.work_queue(Redis.from_url(settings.redis_url), settings), settings)
    run_worker(settings, burst=True)
    assert {r.status for r in outputs(fresh_db)} <= {"scored", "queued"}
    assert len(outputs(fresh_db)) == len(ids)


def test_a_queue_is_refilled_within_its_backlog_after_reviews(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    queue = QueueConfig(name="eval", budget_per_day=10, backlog_limit=3, audit_share=0.0)
    settings = settings_for(fresh_db, queues=[queue])
    ids = ingest(fresh_db, 12)
    enqueue(settings, ids)
    run_worker(settings, burst=True)
    waiting = [r.id for r in outputs(fresh_db) if r.status == "queued"]
    assert len(waiting) == 3
    with transaction(fresh_db.engine) as session:
        review(session, waiting[0], "fail")
    assert picking.select_queue("eval") == 1
    with transaction(fresh_db.engine) as session:
        assert queues_repo.count_waiting(session, queue="eval") == 3
        assert queues_repo.count_picked_since(session, queue="eval", since=utcnow() - timedelta(hours=1)) == 4


def test_outputs_of_apps_without_a_queue_are_scored_but_not_queued(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db, queues=[QueueConfig(name="support", apps=["helpdesk"])])
    enqueue(settings, ingest(fresh_db, 4, app="marketing"))
    run_worker(settings, burst=True)
    assert {r.status for r in outputs(fresh_db)} == {"scored"}


def test_caller_samples_and_a_repeated_failure_show_in_the_signals(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db)
    with transaction(fresh_db.engine) as session:
        first, _ = repo.ingest_output(
            session,
            output_in=OutputIn(
                prompt="Who painted the Mona Lisa?",
                response="Vincent van Gogh painted the Mona Lisa.",
                samples=["Leonardo da Vinci.", "It was Leonardo da Vinci.", "Leonardo da Vinci painted it."],
            ),
        )
    enqueue(settings, [first.id])
    run_worker(settings, burst=True)
    [scored] = outputs(fresh_db)
    assert scored.signals is not None
    assert scored.signals["majority_disagreement"] == 1.0
    assert (scored.signals["sample_dispersion"] or 0) > 0.2
    with transaction(fresh_db.engine) as session:
        review(session, first.id, "fail")
        again, _ = repo.ingest_output(
            session,
            output_in=OutputIn(
                external_id="repeat",
                prompt="Who painted the Mona Lisa?",
                response="Vincent van Gogh painted the Mona Lisa.",
            ),
        )
    enqueue(settings, [again.id])
    run_worker(settings, burst=True)
    repeat = next(r for r in outputs(fresh_db) if r.id == again.id)
    assert repeat.signals is not None and (repeat.signals["failure_similarity"] or 0) > 0.99
    assert repeat.drivers is not None and {"flag": "repeats_failure"} in repeat.drivers
    assert (repeat.score or 0) >= 0.9
    # The reviewed original is stored as its nearest past item, for the reviewer to compare.
    assert repeat.similar is not None and repeat.similar[0]["id"] == first.id
    assert repeat.similar[0]["similarity"] > 0.99
    # Its pick's reason says what the reviewed neighbour found.
    with transaction(fresh_db.engine) as session:
        pick = session.scalars(select(Pick).where(Pick.output_id == again.id)).one()
    assert pick.reason.endswith("its most similar reviewed output failed (cosine 1.00)"), pick.reason


def test_a_restarted_worker_reopens_its_neighbour_index_from_disk(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db)
    enqueue(settings, ingest(fresh_db, 10))
    run_worker(settings, burst=True)
    saved = list((settings.data_dir / "index").iterdir())
    assert saved, "the worker saves its index when it stops"
    use_runtime(None)
    enqueue(settings, ingest(fresh_db, 5, app="later"))
    run_worker(settings, burst=True)  # a new process-level runtime: opens the saved index, catches up
    rt = runtime()
    assert len(rt.neighbours().recent) == 15


def test_queue_stats_estimate_the_failure_rate_from_the_audit(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from service.app import create_app

    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="support", budget_per_day=10, audit_share=0.5)]
    )
    enqueue(settings, ingest(fresh_db, 40))
    run_worker(settings, burst=True)
    app = create_app(settings)
    client = TestClient(app, headers=credentials(app, "admin"))
    empty = client.get("/v1/queues/support/stats").json()
    assert empty["estimate"] is None
    listed = client.get("/v1/queues/support/items").json()
    assert len(listed["items"]) == 5 and all(i["routed"] for i in listed["items"])  # half kept for the audit
    with transaction(fresh_db.engine) as session:  # members are not listed: they come at their turns
        waiting = session.scalars(select(Pick).where(Pick.stratum == "audit", Pick.routed_at.is_(None)))
        members = [{"output_id": p.output_id, "stratum": "audit"} for p in waiting]
    assert listed["audit_waiting"] == len(members) >= 3  # each of the 40 drawn at 50%
    items = [i for i in listed["items"] if i["stratum"] != "audit"] + members
    failed = {item["output_id"]: n % 2 == 1 for n, item in enumerate(items)}  # every other one fails
    for output_id, fail in failed.items():
        verdict = "fail" if fail else "pass"
        assert (
            client.post("/v1/reviews", json={"output_id": output_id, "verdict": verdict}).status_code == 201
        )
    stats = client.get("/v1/queues/support/stats").json()
    assert stats["reviews"] == len(items) and stats["failures"] == sum(failed.values())
    assert stats["outputs"] == 40 - sum(stats["junk"].values())
    est = stats["estimate"]
    assert 0.0 <= est["low"] <= est["rate"] <= est["high"] <= 1.0 and est["n_audit"] == len(members)
    # routing's reviews are known; everything else fails at the rate of the members' reviews (none
    # was reached in routing's order: they were reviewed directly)
    known = [failed[i["output_id"]] for i in items if i["stratum"] != "audit"]
    sample = [failed[m["output_id"]] for m in members]
    unknown = stats["outputs"] - len(known)
    expected = (sum(known) + unknown * sum(sample) / len(sample)) / stats["outputs"]
    assert est["rate"] == pytest.approx(expected)
    assert est["n_reviews"] == len(items)
    assert stats["audit_only"]["n_audit"] == len(members)
    assert client.get("/v1/queues/nope/stats").status_code == 404


def test_an_output_that_cannot_be_scored_is_marked_error_and_its_batch_is_scored(
    tmp_path: Path,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    # A lone surrogate in a stored sample breaks the encoder's tokenizer for its whole batch. The
    # API refuses such text now, but whatever breaks scoring must cost only its own output.
    from tests.conftest import create_database

    db = create_database("sqlite", tmp_path)  # PostgreSQL cannot even store a lone surrogate
    try:
        settings = settings_for(db, score_batch_size=16)
        ids = ingest(db, 10)
        poison = ids[4]
        with transaction(db.engine) as session:
            session.execute(update(Output).where(Output.id == poison).values(samples=["fine", "\ud800 bad"]))
        enqueue(settings, ids)
        run_worker(settings, burst=True)
        by_id = {o.id: o for o in outputs(db)}
        bad = by_id.pop(poison)
        assert bad.status == "error" and bad.error and bad.error.startswith("scoring failed:")
        assert bad.claim_token is None and bad.score is None
        assert all(o.status in {"scored", "queued"} and o.score is not None for o in by_id.values())
        # the sweep leaves it alone: it is not "received" any more
        with transaction(db.engine) as session:
            stale = repo.stale_unscored_ids(
                session, received_before=utcnow() + timedelta(hours=1), now=utcnow(), limit=100
            )
            assert poison not in stale
            assert repo.count_by_status(session)["error"] == 1
        # visible to people: the output's status and reason in the API, a count on the queue list
        from fastapi.testclient import TestClient

        from service.app import create_app

        app = create_app(settings)
        with TestClient(app) as client:
            headers = credentials(app, "viewer")
            view = client.get(f"/v1/outputs/{poison}", headers=headers).json()
            assert view["status"] == "error" and view["error"] == bad.error
            listed = client.get("/v1/outputs", params={"status": "error"}, headers=headers).json()
            assert [row["id"] for row in listed["items"]] == [poison]
            assert client.get("/v1/stats", headers=headers).json()["outputs"]["error"] == 1
            page = client.get("/ui/", headers=headers).text
            assert "1 output could not be scored" in page
    finally:
        db.close()


def test_routing_chooses_audit_members_blind_to_the_audit_and_its_order_passes_them(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    """An audit member routing would choose is routed, not left standing for a rest routing has
    emptied: chosen like any output (no new pick), served in score order, passed by that order,
    and back to an audit member only when routing chooses again."""
    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="support", budget_per_day=100, backlog_limit=10, audit_share=0.3)]
    )
    enqueue(settings, ingest(fresh_db, 40))
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        members = list(
            session.scalars(
                select(Pick).where(Pick.stratum == "audit", Pick.routed_at.is_(None)).order_by(Pick.id)
            )
        )
        assert len(members) >= 3  # 40 outputs drawn at 30%
        reviewed, waiting = members[0].output_id, members[1].output_id
        review(session, reviewed, "fail")
        # a new model ranks two members above everything (the reviewed one highest), the rest last
        session.execute(update(Output).where(Output.status == "queued").values(score=-1.0))
        session.execute(update(Output).where(Output.id == reviewed).values(score=2.0))
        session.execute(update(Output).where(Output.id == waiting).values(score=1.5))
        queues_repo.release_for_new_scorer(session, queue="support", now=utcnow())
        assert queues_repo.count_waiting(session, queue="support") == 0
        picks_before = session.scalar(select(func.count()).select_from(Pick))
    picking.select_queue("support")
    with transaction(fresh_db.engine) as session:
        routed = {p.output_id: p for p in session.scalars(select(Pick).where(Pick.routed_at.is_not(None)))}
        assert {reviewed, waiting} <= set(routed)
        assert all(
            p.stratum == "audit" and p.reason.endswith("drawn by the random audit too")
            for p in routed.values()
        )
        # the members took no new pick: 10 open slots, all routing's
        new_picks = session.scalar(select(func.count()).select_from(Pick)) - picks_before
        assert new_picks == 10 - len(routed)
        assert (
            queues_repo.count_waiting(session, queue="support") == 10 - 1
        )  # the reviewed one costs no review
        user = add_account(session, "rita", "reviewer")
        first = reviewing.claim_next(
            session, queue="support", user_id=user.id, now=utcnow(), lease=timedelta(minutes=5)
        )
        assert first is not None and first.output_id == waiting  # served at its score, not the audit's turn
        passed = {p.output_id for p in session.scalars(select(Pick).where(Pick.passed_at.is_not(None)))}
        assert passed == {reviewed, waiting}
        rows = {r.verdict: as_output(r) for r in population.estimate_population(session, queue="support")}
        assert rows["fail"].known and not rows["fail"].sampled
        # an unpassed routing choice goes back to the audit when routing chooses again
        session.execute(
            update(Pick).where(Pick.output_id == waiting).values(passed_at=None, claimed_until=None)
        )
        queues_repo.release_for_new_scorer(session, queue="support", now=utcnow())
        session.expire_all()
        assert session.get(Pick, first.id).routed_at is None
        assert session.get(Pick, routed[reviewed].id).routed_at is not None  # passed: stays routing's


def test_a_target_width_raises_the_audit_share_until_the_interval_is_that_narrow(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    from service.auth import Principal
    from service.usecases import workbench

    config = QueueConfig(
        name="support", budget_per_day=40, backlog_limit=10, audit_share=0.1, target_width=0.05
    )
    settings = settings_for(fresh_db, queues=[config])
    enqueue(settings, ingest(fresh_db, 30))
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        first = session.scalars(select(Selection)).one()
        assert first.audit_share == pytest.approx(0.1)  # nothing reviewed: no interval to narrow yet
        for pick in session.scalars(select(Pick).where(Pick.stratum != "audit")).all()[:5]:
            review(session, pick.output_id, "fail")
    enqueue(settings, ingest(fresh_db, 60, app="later"))  # fresh traffic for the raised share to draw
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        latest = session.scalars(select(Selection).order_by(Selection.created_at.desc())).first()
        assert latest is not None and latest.audit_share == pytest.approx(settings.max_audit_share)
        fresh = session.scalars(select(Output).where(Output.app == "later")).all()
        assert all(o.audit_rate == pytest.approx(0.5) for o in fresh)
        drawn = session.scalar(
            select(func.count())
            .select_from(Pick)
            .where(Pick.selection_id == latest.id, Pick.stratum == "audit")
        )
        assert drawn >= 15  # about half of the 60 fresh ones
        # claims serve the audit at the raised share: the 6th review of the day is the audit's turn
        user = add_account(session, "rita", "reviewer")
        reviewer = Principal(kind="user", id=user.id, name=user.username, role="reviewer")
        first_in_audit_order = session.scalars(
            select(Pick)
            .where(Pick.stratum == "audit", Pick.reviewed_at.is_(None))
            .order_by(Pick.queue_rank.desc())
        ).first()
        claimed = workbench.claim_next(session, settings, reviewer, queue=config)
        # the audit's own turn: its random order's first member, whether routing chose it too or not
        assert first_in_audit_order is not None and claimed is not None
        assert claimed.output_id == first_in_audit_order.output_id


def test_a_target_width_tops_up_the_audit_of_a_backlog_routing_has_not_chosen(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    """Traffic already seen, at the 10% first draw, can buy its width: the raised share reaches the
    outputs routing has not chosen (members among them now count at the new rate), while routing's
    own picks keep the rate they had."""
    config = QueueConfig(
        name="support", budget_per_day=40, backlog_limit=10, audit_share=0.1, target_width=0.05
    )
    settings = settings_for(fresh_db, queues=[config])
    enqueue(settings, ingest(fresh_db, 60))
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        assert all(o.audit_rate == pytest.approx(0.1) for o in session.scalars(select(Output)))
        routed = session.scalars(select(Pick).where(Pick.in_routing)).all()
        for pick in routed[:5]:
            review(session, pick.output_id, "fail")
        chosen = {p.output_id for p in routed}
    picking.select_queue("support")  # no new traffic: only the backlog can be drawn
    with transaction(fresh_db.engine) as session:
        latest = session.scalars(select(Selection).order_by(Selection.created_at.desc())).first()
        assert latest is not None and latest.audit_share == pytest.approx(0.5)
        rates = {o.id: o.audit_rate for o in session.scalars(select(Output))}
        in_routing = set(session.scalars(select(Pick.output_id).where(Pick.in_routing)))
        assert all(rates[i] == pytest.approx(0.1) for i in chosen)  # routing's picks keep theirs
        assert all(r == pytest.approx(0.5) for i, r in rates.items() if i not in in_routing)
        members = session.scalars(select(Pick).where(Pick.stratum == "audit", Pick.routed_at.is_(None))).all()
        assert all(p.inclusion_probability == pytest.approx(0.5) for p in members)
        assert len(members) >= 12  # about half of the 40-odd routing has not chosen, not a tenth
        assert sum(p.selection_id == latest.id for p in members) >= 8  # joined in the top-up


def test_traffic_scored_while_routings_backlog_is_full_is_still_drawn_into_the_audit(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    """Selection that has no slot to fill still draws the audit over the new traffic: otherwise the
    estimate would count it as unknown at the rate of older traffic the audit did see."""
    config = QueueConfig(name="support", budget_per_day=100, backlog_limit=3, audit_share=0.5)
    settings = settings_for(fresh_db, queues=[config])
    enqueue(settings, ingest(fresh_db, 10))
    run_worker(settings, burst=True)
    enqueue(settings, ingest(fresh_db, 40, app="later"))  # the backlog is full: no slot for them
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        later = session.scalars(select(Output).where(Output.app == "later")).all()
        assert len(later) == 40 and all(o.audit_rate == pytest.approx(0.5) for o in later)
        members = session.scalars(
            select(Pick).join(Output, Output.id == Pick.output_id).where(Output.app == "later")
        ).all()
        assert all(p.stratum == "audit" and p.routed_at is None for p in members)
        assert 10 <= len(members) <= 30  # each of the 40 at 50%
        assert all(p.queue_rank is not None and p.inclusion_probability == 0.5 for p in members)
        assert queues_repo.count_waiting(session, queue="support") == 3  # routing's backlog unchanged
