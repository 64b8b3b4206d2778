"""Repository functions on real SQLite and real PostgreSQL, rolled back after each test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from service.domain import OutputIn
from service.errors import Conflict, NotFound
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.tables import Output, utcnow
from tests.conftest import review


def post(session: Session, external_id: str | None = None, response: str = "an answer", app: str = "app"):
    out = OutputIn(external_id=external_id, app=app, prompt="a question", response=response)
    return repo.ingest_output(session, output_in=out)


def test_repeated_external_id_returns_the_stored_row(session: Session) -> None:
    first, dup1 = post(session, "ext-1")
    again, dup2 = post(session, "ext-1")
    assert (dup1, dup2) == (False, True)
    assert again.id == first.id
    other_app, dup3 = post(session, "ext-1", app="other")
    assert not dup3 and other_app.id != first.id


def test_repeated_external_id_with_other_content_is_a_conflict(session: Session) -> None:
    post(session, "ext-2")
    with pytest.raises(Conflict) as err:
        post(session, "ext-2", response="something else")
    assert err.value.details["external_id"] == "ext-2"


def test_claims_never_overlap_and_expire(session: Session) -> None:
    rows = [post(session)[0] for _ in range(5)]
    now = utcnow()
    lease = timedelta(seconds=60)
    a = repo.claim_for_scoring(
        session, output_ids=[rows[4].id], limit=3, token="a" * 32, now=now, lease=lease
    )
    assert rows[4].id in {o.id for o in a} and len(a) == 3
    b = repo.claim_for_scoring(
        session, output_ids=[rows[4].id], limit=5, token="b" * 32, now=now, lease=lease
    )
    assert {o.id for o in a}.isdisjoint({o.id for o in b}) and len(b) == 2
    later = now + timedelta(seconds=61)
    c = repo.claim_for_scoring(session, output_ids=[], limit=10, token="c" * 32, now=later, lease=lease)
    assert len(c) == 5


def test_only_the_claim_holder_stores_a_score(session: Session) -> None:
    row, _ = post(session)
    now = utcnow()
    repo.claim_for_scoring(
        session, output_ids=[row.id], limit=1, token="t" * 32, now=now, lease=timedelta(60)
    )
    kwargs = dict(
        signals={"novelty": 0.3}, score=0.7, scorer_version="v", drivers=[], embedding=b"\0" * 8, now=now
    )
    assert not repo.store_score(session, output_id=row.id, token="x" * 32, **kwargs)
    assert repo.store_score(session, output_id=row.id, token="t" * 32, **kwargs)
    assert not repo.store_score(session, output_id=row.id, token="t" * 32, **kwargs)  # already scored
    session.refresh(row)
    assert (row.status, row.score, row.signals) == ("scored", 0.7, {"novelty": 0.3})


def test_stale_unscored_outputs_are_found_for_the_sweep(session: Session) -> None:
    row, _ = post(session)
    now = utcnow()
    assert (
        repo.stale_unscored_ids(session, received_before=now - timedelta(seconds=60), now=now, limit=10) == []
    )
    found = repo.stale_unscored_ids(session, received_before=now + timedelta(seconds=1), now=now, limit=10)
    assert row.id in found


def _scored(session: Session, score: float) -> str:
    row, _ = post(session, response=f"answer {score}")
    now = utcnow()
    token = row.id
    repo.claim_for_scoring(session, output_ids=[row.id], limit=1, token=token, now=now, lease=timedelta(60))
    repo.store_score(
        session,
        output_id=row.id,
        token=token,
        signals={},
        score=score,
        scorer_version="v",
        drivers=[],
        embedding=None,
        now=now,
        queue="q",
    )
    return row.id


def test_pick_review_lifecycle(session: Session) -> None:
    low, high = _scored(session, 0.1), _scored(session, 0.9)
    window = queues_repo.queue_window(session, queue="q", limit=10)
    assert {c.id for c in window} >= {high, low}
    assert queues_repo.queue_window(session, queue="nope", limit=10) == []
    assert queues_repo.add_pick(
        session, queue="q", output_id=high, stratum="uncertain", reason="r", score=0.9
    )
    assert not queues_repo.add_pick(
        session, queue="q", output_id=high, stratum="uncertain", reason="r", score=0.9
    )
    session.flush()
    assert queues_repo.count_waiting(session, queue="q") == 1
    total, items = queues_repo.waiting_items(session, queue="q", limit=10, offset=0)
    assert total == 1 and items[0][1].id == high
    verdict = review(session, high, "fail", categories=["unsafe"])
    assert verdict.queue == "q" and verdict.categories == ["unsafe"] and verdict.kind == "primary"
    assert queues_repo.count_waiting(session, queue="q") == 0
    assert repo.count_by_status(session)["reviewed"] >= 1


def test_stale_picks_return_to_the_pool_and_junk_is_counted(session: Session) -> None:
    a, b = _scored(session, 0.5), _scored(session, 0.4)
    queues_repo.add_pick(session, queue="q", output_id=a, stratum="uncertain", reason="r", score=0.5)
    session.flush()
    assert (
        queues_repo.release_stale_picks(session, queue="q", picked_before=utcnow() - timedelta(hours=1)) == 0
    )
    assert (
        queues_repo.release_stale_picks(session, queue="q", picked_before=utcnow() + timedelta(seconds=1))
        == 1
    )
    assert a in {o.id for o in queues_repo.queue_window(session, queue="q", limit=10)}
    queues_repo.mark_junk(session, output_ids=[b], reason="empty")
    assert queues_repo.junk_counts(session, queue="q") == {"empty": 1}
    assert b not in {o.id for o in queues_repo.queue_window(session, queue="q", limit=10)}


def test_reviewing_unknown_or_unscored_outputs_fails_clearly(session: Session) -> None:
    with pytest.raises(NotFound):
        review(session, "missing", "pass")
    row, _ = post(session)
    with pytest.raises(Conflict, match="not scored yet"):
        review(session, row.id, "pass")


def test_the_audits_turn_takes_a_member_routing_chose_but_has_not_passed(session: Session) -> None:
    """A member routing chose waits in routing's backlog, in the part routing has not passed: the
    audit's turns must reach it in the audit's random order like any member, or the sample would
    never hold the unknown part's highest scorers (a replay of text-only QA, where routing's backlog
    was 40% of the pool, read 15% against a true 41%)."""
    from service.storage import reviewing
    from service.storage.tables import Pick
    from tests.conftest import add_account

    routed_member, member, routed = _scored(session, 0.9), _scored(session, 0.2), _scored(session, 0.8)
    now = utcnow()
    for oid, stratum, score, rank, routed_at in [
        (routed_member, "audit", 0.9, 0.7, now),
        (member, "audit", 0.2, 0.4, None),
        (routed, "uncertain", 0.8, None, None),
    ]:
        assert queues_repo.add_pick(
            session,
            queue="q",
            output_id=oid,
            stratum=stratum,
            reason="r",
            score=score,
            inclusion_probability=0.5 if stratum == "audit" else 1.0,
            queue_rank=rank,
            routed_at=routed_at,
        )
    session.flush()
    user = add_account(session, "turner", "reviewer")
    turn = reviewing.claim_next(
        session, queue="q", user_id=user.id, now=now, lease=timedelta(minutes=5), audit_share=1.0
    )
    assert turn is not None and turn.output_id == routed_member  # first in the audit's random order
    assert turn.passed_at is None  # a turn's review is the sample's, not routing's
    reviewing.release(session, output_id=routed_member, user_id=user.id)
    session.expire_all()
    review(session, routed_member, "fail")
    nxt = reviewing.claim_next(
        session, queue="q", user_id=user.id, now=now, lease=timedelta(minutes=5), audit_share=1.0
    )
    assert nxt is not None and nxt.output_id == member
    assert session.get(Pick, turn.id).passed_at is None


def test_an_audit_member_skipped_without_a_verdict_widens_the_estimate_until_someone_judges_it(
    session: Session,
) -> None:
    """Reviewers skip the hard ones, so a skipped member is not missing at random: the estimate
    reads it from the skips table and takes it at both extremes until someone gives it a verdict."""
    from service.storage import population, reviewing
    from tests.conftest import add_account

    ids = [_scored(session, 0.1 * i) for i in range(8)]
    for i, oid in enumerate(ids):
        assert queues_repo.add_pick(
            session,
            queue="q",
            output_id=oid,
            stratum="audit",
            reason="r",
            score=0.1 * i,
            inclusion_probability=0.5,
            queue_rank=i / 8,
        )
    session.flush()
    for i, oid in enumerate(ids[:5]):
        review(session, oid, "fail" if i < 2 else "pass")
    before = population.traffic_estimate(session, queue="q")
    user = add_account(session, "skipper", "reviewer")
    reviewing.skip(session, output_id=ids[5], user_id=user.id, now=utcnow())
    session.expire_all()
    skipped = population.traffic_estimate(session, queue="q")
    assert before is not None and skipped is not None
    assert (before.withheld, skipped.withheld, skipped.rate) == (0, 1, before.rate)
    assert skipped.low < before.low and skipped.high > before.high
    review(session, ids[5], "fail", reviewer="bea")  # someone else judges it
    session.expire_all()
    judged = population.traffic_estimate(session, queue="q")
    assert judged is not None and judged.withheld == 0 and judged.n_audit == 6


def test_rescoring_reaches_every_reviewed_audit_member_routing_has_not_passed(session: Session) -> None:
    """Routing passes a reviewed member it chose by comparing its score with the claims': a score
    frozen when routing chose it would keep a failure below claims made on newer models' scores, and
    the sample would hold the failures the rest of the traffic gives up to routing. Every member
    routing has not passed follows the queue's scorer; passed ones are routing's verdicts and keep
    their score."""
    from service.storage import scorers
    from service.storage.tables import Pick

    chosen, drawn, passed, routed, waiting = (_scored(session, s) for s in (0.8, 0.3, 0.9, 0.7, 0.5))
    now = utcnow()
    for oid, stratum, routed_at in [
        (chosen, "audit", now),
        (drawn, "audit", None),
        (passed, "audit", now),
        (routed, "uncertain", None),
    ]:
        assert queues_repo.add_pick(
            session, queue="q", output_id=oid, stratum=stratum, reason="r", score=0.5, routed_at=routed_at
        )
    session.flush()
    for oid in (chosen, drawn, passed, routed):
        review(session, oid, "fail")
    session.expire_all()
    pick_of = {p.output_id: p for p in session.query(Pick).filter(Pick.queue == "q")}
    pick_of[passed].passed_at = now
    session.flush()
    found = {o.id for o in scorers.unreviewed_scored(session, queue="q", after="", limit=100)}
    assert found == {chosen, drawn, waiting}
    scorers.rescore_many(session, scored=[(oid, 0.95, []) for oid in (chosen, drawn, passed)], version="v2")
    session.expire_all()
    scores = {p.output_id: p.score for p in session.query(Pick).filter(Pick.queue == "q")}
    assert scores[chosen] == pytest.approx(0.95) and scores[drawn] == pytest.approx(0.95)
    assert scores[passed] == pytest.approx(0.5) and scores[routed] == pytest.approx(0.5)


def test_rescoring_reaches_junk_so_every_unreviewed_score_comes_from_the_queue_s_scorer(
    session: Session,
) -> None:
    """Junk is never routed, but its score is read like any other output's: left at cold start's
    rank while the queue moves to a model's probabilities, it would read as the likeliest failure."""
    from service.storage import scorers

    junk, waiting = _scored(session, 0.9), _scored(session, 0.3)
    queues_repo.mark_junk(session, output_ids=[junk], reason="repeated_response")
    session.flush()
    found = {o.id for o in scorers.unreviewed_scored(session, queue="q", after="", limit=100)}
    assert found == {junk, waiting}
    scorers.rescore_many(session, scored=[(junk, 0.05, []), (waiting, 0.4, [])], version="v2")
    session.expire_all()
    rescored = {o.id: (o.score, o.scorer_version, o.status) for o in session.query(Output)}
    assert rescored[junk] == (pytest.approx(0.05), "v2", "junk")
