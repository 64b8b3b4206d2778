"""The scoring RQ jobs: score what was posted, refresh a queue after a verdict, and the sweep that
recovers lost work. Each takes ids only and is idempotent; the runtime is ``workers.runtime``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from core import learned, scoring
from service import queueing, telemetry
from service.settings import Settings
from service.storage import accounts, staging
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output, new_id, utcnow
from workers import picking, sampling, training
from workers.pipeline import Scored, drivers_of, load_context, score_items, scoring_input
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)

#: One job keeps claiming batches while work is waiting, so a backlog is embedded in full batches.
MAX_ROUNDS_PER_JOB = 50


# Reviewed neighbours stored with each output, for the item page's "similar past items".
SIMILAR_SHOWN = 5


def _route(settings: Settings, output: Output) -> str | None:
    queue = settings.route(app=output.app, model=output.model, metadata=output.meta or {})
    return queue.name if queue is not None else None


def _score_round(rt: Runtime, output_ids: Sequence[str]) -> tuple[int, set[str]]:
    """Claim, score and store one batch; returns how many were stored and the queues they went to."""
    settings, token = rt.settings, new_id()
    with transaction(rt.engine) as session:
        claimed = repo.claim_for_scoring(
            session,
            output_ids=output_ids,
            limit=settings.score_batch_size,
            token=token,
            now=utcnow(),
            lease=timedelta(seconds=settings.claim_seconds),
        )
        items = [scoring_input(o) for o in claimed]
        routes = {o.id: _route(settings, o) for o in claimed}
        arrived = {o.id: o.received_at for o in claimed}
        if not items:
            return 0, set()
        history, models, recent_scores = load_context(rt, session)
    items, scored, failed = _score_isolating(rt, items, history, models, routes)
    if failed:
        with transaction(rt.engine) as session:
            for output_id, reason in failed.items():
                repo.mark_error(session, output_id=output_id, token=token, reason=reason)
        log.error("gave up scoring %d outputs: %s", len(failed), failed)
    if not items:
        return 0, set()
    vectors, results, versions = scored
    similar = rt.neighbours().reviewed_neighbours(vectors, SIMILAR_SHOWN)
    decisions = [
        sampling.decide(
            score=r.score, recent_scores=recent_scores, caller_samples=len(i.samples), settings=settings
        )
        for i, r in zip(items, results, strict=True)
    ]
    stored, to_sample = 0, []
    latencies: list[float] = []
    with transaction(rt.engine) as session:
        now = utcnow()
        for item, result, vector, decision, near, version in zip(
            items, results, vectors, decisions, similar, versions, strict=True
        ):
            done = repo.store_score(
                session,
                output_id=item.output_id,
                token=token,
                signals=result.signals,
                score=result.score,
                scorer_version=version,
                drivers=drivers_of(result),
                embedding=vector.astype(np.float32).tobytes(),
                now=now,
                sampling=decision,
                queue=routes[item.output_id],
                similar=near,
            )
            stored += done
            if done:
                latencies.append((now - arrived[item.output_id]).total_seconds())
            if done and decision == sampling.PENDING:
                to_sample.append(item.output_id)
    telemetry.scored(latencies)
    if to_sample:
        queueing.enqueue_sampling(rt.work_queue(), settings, to_sample)
    return stored, {q for q in routes.values() if q is not None}


#: Failures of what scoring runs on, not of an output: these fail the job (RQ and the sweep retry).
INFRASTRUCTURE: tuple[type[BaseException], ...] = (SQLAlchemyError, RedisError, OSError, MemoryError)


def _score_isolating(
    rt: Runtime,
    items: list[scoring.ScoringInput],
    history: list[dict[str, Any]],
    models: dict[str, learned.LearnedModel],
    routes: dict[str, str | None],
) -> tuple[list[scoring.ScoringInput], Scored, dict[str, str]]:
    """Score the batch; if it fails, score its outputs one at a time, so one output the encoder or a
    signal cannot handle costs only itself. Returns the outputs scored, their scores, and the reason
    for each output that failed on its own (those are given up on: status "error")."""
    try:
        return items, score_items(rt, items, history, models, [routes[i.output_id] for i in items]), {}
    except INFRASTRUCTURE:
        raise  # the database, Redis or the disk: the job fails and is retried, nobody is blamed
    except Exception:
        log.exception("a batch of %d outputs failed to score; scoring them one at a time", len(items))
    kept: list[scoring.ScoringInput] = []
    parts: list[Scored] = []
    failed: dict[str, str] = {}
    for item in items:
        try:
            parts.append(score_items(rt, [item], history, models, [routes[item.output_id]]))
            kept.append(item)
        except INFRASTRUCTURE:
            raise
        except Exception as exc:  # this output alone: it would fail every retry the same way
            log.exception("output %s cannot be scored", item.output_id)
            failed[item.output_id] = f"scoring failed: {type(exc).__name__}: {exc}"
    if not parts:
        return [], (np.zeros((0, 0), dtype=np.float32), [], []), failed
    vectors = np.vstack([p[0] for p in parts])
    return kept, (vectors, [r for p in parts for r in p[1]], [v for p in parts for v in p[2]]), failed


def score_outputs(output_ids: list[str]) -> int:
    """Score these outputs, and whatever else is waiting, in encoder-sized batches; refill queues."""
    rt = runtime()
    total, queues = 0, set[str]()
    ids: Sequence[str] = output_ids
    for _ in range(MAX_ROUNDS_PER_JOB):
        stored, round_queues = _score_round(rt, ids)
        total, queues = total + stored, queues | round_queues
        if stored < rt.settings.score_batch_size:
            break
        ids = ()
    if total:
        queue = rt.work_queue()
        for name in sorted(queues):
            queueing.enqueue_selection(queue, rt.settings, name)
    log.info("scored %d outputs", total)
    return total


def refresh_queue(queue_name: str) -> None:
    """Retrain the queue's scorer if it is due, then refill the queue (after a verdict, or the sweep)."""
    training.train_scorer(queue_name)
    picking.select_queue(queue_name)


def sweep() -> int:
    """Re-enqueue outputs whose scoring job was lost, refill every queue, forget expired sign-ins and
    make versions of collections whose staged rule promotions are due.
    Returns the re-enqueued count."""
    rt = runtime()
    now = utcnow()
    with transaction(rt.engine) as session:
        accounts.purge_expired_sessions(session, now=now)
        due = now - timedelta(seconds=rt.settings.collection_cut_seconds)
        staging.cut_pending(session, now=now, settings=rt.settings, due_before=due)
        stale = repo.stale_unscored_ids(
            session,
            received_before=now - timedelta(seconds=rt.settings.sweep_grace_seconds),
            now=now,
            limit=rt.settings.score_batch_size * MAX_ROUNDS_PER_JOB,
        )
    queue = rt.work_queue()
    size = rt.settings.score_batch_size
    for start in range(0, len(stale), size):
        queueing.enqueue_scoring(queue, rt.settings, stale[start : start + size])
    for config in rt.settings.queues:
        queueing.enqueue_refresh(queue, rt.settings, config.name)
    if stale:
        log.warning("sweep re-enqueued %d outputs whose scoring was lost", len(stale))
    return len(stale)
