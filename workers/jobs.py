"""Thin RQ entry points: load from the database, call the pure core, store. Each is idempotent.

Jobs take ids only. The process-wide runtime (settings, engine, embedder) is built once, lazily;
``workers.main`` preloads it and tests install their own with ``use_runtime``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from redis.exceptions import RedisError
from rq import get_current_job
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from service import queueing
from service.settings import Settings, get_settings
from service.storage import accounts, staging
from service.storage import repository as repo
from service.storage.db import engine_for, transaction
from service.storage.tables import Output, new_id, utcnow
from workers import learned, picking, sampling, scoring, training
from workers.clients import Embedder, get_embedder
from workers.neighbours import Neighbours
from workers.signals import TokenLP

log = logging.getLogger(__name__)

#: One job keeps claiming batches while work is waiting, so a backlog is embedded in full batches.
MAX_ROUNDS_PER_JOB = 50


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    _embedder: Embedder | None = field(default=None, repr=False)
    _neighbours: Neighbours | None = field(default=None, repr=False)
    _rounds_since_save: int = 0
    #: Each queue's active learned scorer, loaded once per version (``training.current_models``).
    models: dict[str, learned.LearnedModel] = field(default_factory=dict)

    @property
    def index_dir(self) -> Path:
        return self.settings.data_dir / "index"

    def neighbours(self) -> Neighbours:
        """The nearest-neighbour indexes, opened from disk (or rebuilt from the database) on first use."""
        if self._neighbours is None:
            self._neighbours = Neighbours.open(
                self.index_dir, self.embedder.dimension, self.settings.novelty_window, self.engine
            )
        return self._neighbours

    def save_neighbours(self, every: int = 20) -> None:
        """Persist the indexes every few rounds, so a restarted worker only catches up."""
        self._rounds_since_save += 1
        if self._neighbours is not None and self._rounds_since_save >= every:
            self._neighbours.save(self.index_dir)
            self._rounds_since_save = 0

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(
                self.settings.embedding_model_path, self.settings.embedding_batch_size
            )
        return self._embedder


_runtime: Runtime | None = None


def use_runtime(rt: Runtime | None) -> None:
    """Install the runtime the jobs of this process use (None: build from the environment)."""
    global _runtime
    _runtime = rt


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings = get_settings()
        _runtime = Runtime(settings=settings, engine=engine_for(settings))
    return _runtime


def work_queue_of(rt: Runtime) -> Any:
    """The RQ queue jobs enqueue follow-up work on: the current job's connection, else a new one."""
    job = get_current_job()
    connection = job.connection if job is not None else queueing.redis_connection(rt.settings)
    return queueing.work_queue(connection, rt.settings)


def _tokens(token_logprobs: list[dict[str, Any]] | None) -> tuple[TokenLP, ...] | None:
    if token_logprobs is None:
        return None
    return tuple(
        TokenLP(
            logprob=float(t["logprob"]),
            top_logprobs=tuple(float(a["logprob"]) for a in t.get("top_logprobs") or ()),
        )
        for t in token_logprobs
    )


def scoring_input(output: Output) -> scoring.ScoringInput:
    return scoring.ScoringInput(
        output_id=output.id,
        prompt=output.prompt,
        response=output.response,
        tokens=_tokens(output.token_logprobs),
        finish_reason=output.finish_reason,
        samples=tuple(output.samples or ()),
    )


def embed_batch(
    embedder: Embedder, items: Sequence[scoring.ScoringInput], *, max_chars: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One encoder call for the whole batch: each output's prompt and response, and for outputs with
    samples the bare response and each sample (answers are compared as answers, without the prompt).

    Returns the output vectors and, per output, its answer vectors (row 0 the response, then the
    samples; no rows when it has no samples).
    """
    texts = [scoring.embedding_text(i.prompt, i.response, max_chars=max_chars) for i in items]
    spans = []
    for item in items:
        start = len(texts)
        if item.samples:
            texts += [item.response[:max_chars], *(s[:max_chars] for s in item.samples)]
        spans.append((start, len(texts)))
    vectors = embedder.encode(texts)
    return vectors[: len(items)], [vectors[start:end] for start, end in spans]


def _params(settings: Settings) -> scoring.ScoringParams:
    return scoring.ScoringParams(
        neighbours=settings.novelty_neighbours,
        consistency_threshold=settings.consistency_threshold,
        near_duplicate=settings.near_duplicate_cosine,
    )


def score_items(
    rt: Runtime,
    items: Sequence[scoring.ScoringInput],
    history: list[dict[str, Any]],
    models: dict[str, learned.LearnedModel],
    queues: Sequence[str | None],
) -> tuple[np.ndarray, list[scoring.Scored], list[str]]:
    """Embed and score a batch: each output by its queue's learned model if one is active, else by
    cold start. Returns the vectors, the results and the version that scored each output."""
    vectors, answer_vectors = embed_batch(rt.embedder, items, max_chars=rt.settings.embedding_max_chars)
    context = neighbour_context(rt, items, vectors, history)
    results = scoring.score_batch(items, vectors, answer_vectors, context, _params(rt.settings))
    rt.save_neighbours()
    versions = training.apply_models(models, queues, results, vectors)
    return vectors, results, [v or scoring.SCORER_VERSION for v in versions]


def load_context(
    rt: Runtime, session: Any
) -> tuple[list[dict[str, Any]], dict[str, learned.LearnedModel], list[float]]:
    """Recent traffic's signals and scores and each queue's active model, for scoring a batch."""
    window = repo.recent_signals(session, limit=rt.settings.reference_window)
    recent_scores = [score for _, score in window if score is not None]
    return [signals for signals, _ in window], training.current_models(rt, session), recent_scores


def neighbour_context(
    rt: Runtime, items: Sequence[scoring.ScoringInput], vectors: np.ndarray, history: list[dict[str, Any]]
) -> scoring.Context:
    """Look the batch up in the nearest-neighbour indexes (the batch joins recent traffic first)."""
    index = rt.neighbours()
    index.sync(rt.engine)
    ids = [i.output_id for i in items]
    index.recent.add(ids, vectors)
    k = rt.settings.novelty_neighbours
    found = zip(
        index.recent_distance(vectors, k, exclude_ids=ids),
        index.reviewed_distance(vectors, k),
        index.failure_similarity(vectors),
        strict=True,
    )
    empty = scoring.Context.empty(vectors.shape[1])
    return scoring.Context(
        history_signals=history,
        history_vectors=empty.history_vectors,
        reviewed_vectors=empty.reviewed_vectors,
        reviewed_failed=empty.reviewed_failed,
        neighbour_signals=[
            {"novelty": n, "reviewed_novelty": r, "failure_similarity": f} for n, r, f in found
        ],
    )


def drivers_of(result: scoring.Scored) -> list[dict[str, Any]]:
    """What a reviewer is told: flags first (a refusal too, though it does not raise the score), then
    the signals that drove the score."""
    notes = ["refusal"] if result.signals.get("refusal") == 1.0 else []
    return [*({"flag": f} for f in [*result.flags, *notes]), *result.drivers]


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
            if done and decision == sampling.PENDING:
                to_sample.append(item.output_id)
    if to_sample:
        queueing.enqueue_sampling(work_queue_of(rt), settings, to_sample)
    return stored, {q for q in routes.values() if q is not None}


Scored = tuple[np.ndarray, list[scoring.Scored], list[str]]
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
        queue = work_queue_of(rt)
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
    queue = work_queue_of(rt)
    size = rt.settings.score_batch_size
    for start in range(0, len(stale), size):
        queueing.enqueue_scoring(queue, rt.settings, stale[start : start + size])
    for config in rt.settings.queues:
        queueing.enqueue_refresh(queue, rt.settings, config.name)
    if stale:
        log.warning("sweep re-enqueued %d outputs whose scoring was lost", len(stale))
    return len(stale)
