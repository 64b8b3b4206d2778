"""Training each queue's learned scorer from its reviews (an RQ job) and applying the active versions
when scoring.

Retraining is cheap (a prior-shrunk logistic regression on a few hundred rows) and frequent: the
first model comes after ``min_reviews_for_model`` reviews, then a new one whenever the queue's
reviews have grown by ``retrain_every`` or by ``retrain_growth`` of what the last model saw,
whichever is more. A new version is used unless, once it can be cross-validated, cold start ranks
the queue's reviews better with confidence (``core.comparison.replaces_baseline``); then it is
stored as not used and the queue scores by cold start. Either way, when the scorer
changes, the queue's waiting outputs are rescored and the picks the old scores chose go back to the
pool, so the next picks use what was just learned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core import comparison, learned, scoring
from service import queueing
from service.settings import Settings
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage import scorers
from service.storage.db import transaction
from service.storage.tables import Output, utcnow
from workers.pipeline import drivers_of, scoring_params
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)
RESCORE_PAGE = 1000


def _vectors(embeddings: Sequence[bytes | None]) -> np.ndarray | None:
    if not embeddings or any(e is None for e in embeddings):
        return None
    sizes = {len(e or b"") for e in embeddings}
    if len(sizes) != 1:
        return None
    return np.vstack([np.frombuffer(e or b"", dtype=np.float32) for e in embeddings])


def due(settings: Settings, *, reviewed: int, trained_on: int | None) -> bool:
    """Whether a queue with this many reviews needs a new model (``trained_on``: the newest one's,
    used or not)."""
    if reviewed < settings.min_reviews_for_model:
        return False
    if trained_on is None:
        return True
    step = max(settings.retrain_every, math.ceil(settings.retrain_growth * trained_on))
    return reviewed - trained_on >= step


def train_scorer(queue: str = "default", force: bool = False) -> str | None:
    """Train a new version of one queue's scorer when enough new reviews arrived; use it unless cold
    start does better (then fall back to cold start), rescore the queue's waiting outputs and
    re-choose its picks. Returns the new version (used or not), or None."""
    rt = runtime()
    settings = rt.settings
    with transaction(rt.engine) as session:
        active = scorers.active_model_info(session, queue=queue)
        was_active = active.version if active is not None else None
        trained_on = scorers.latest_trained_on(session, queue=queue)
        reviewed = scorers.count_reviewed(session, queue=queue)
        if force:
            ready = reviewed >= settings.min_reviews_for_model
        else:
            ready = due(settings, reviewed=reviewed, trained_on=trained_on)
        if not ready:
            return None
        rows = scorers.training_rows(session, queue=queue, limit=settings.training_limit)
        traffic = scorers.recent_traffic(session, queue=queue, limit=settings.model_pool)
        recent = [s for s, _ in repo.recent_signals(session, limit=settings.reference_window)]
    # Sampled members the model trains on must not be rescored by it (older ones it never saw are).
    sampled = {r[5] for r in rows if r[4]}
    signals = [r[0] for r in rows]
    failed = [r[2] for r in rows]
    weights = learned.review_weights([r[3] for r in rows])
    vectors = _vectors([r[1] for r in rows])
    pool_vectors = _vectors([e for _, e in traffic]) if vectors is not None else None
    pool_rows = [signals for signals, _ in traffic] if pool_vectors is not None else None
    params = scoring_params(settings)
    baseline = [c.score or 0.0 for c in scoring.coldstart_all(signals, recent, params)]
    version = f"{queue[:24]}-{datetime.now(UTC):%Y%m%d%H%M%S%f}-{len(rows)}"
    try:
        model = learned.train(
            signals,
            vectors,
            failed,
            weights,
            pool_embeddings=pool_vectors,
            pool_rows=pool_rows,
            baseline=baseline,
            version=version,
        )
    except learned.NotEnoughLabels as exc:
        log.info("queue %s: not training yet: %s", queue, exc)
        return None
    model.metrics["weights"] = model.weights()
    use = comparison.replaces_baseline(model.metrics)
    model.metrics["used"] = use
    with transaction(rt.engine) as session:
        scorers.activate_model(
            session,
            queue=queue,
            version=version,
            blob=model.dumps(),
            n_labels=model.n_labels,
            n_failures=model.n_failures,
            calibration=model.calibration,
            metrics=model.metrics,
            active=use,
        )
    log.info(
        "queue %s: scorer %s %s (%d labels, out-of-fold AUROC %s, cold start's %s)",
        queue,
        version,
        "active" if use else "kept back: cold start ranks the reviews better",
        len(rows),
        model.metrics.get("cv_auroc"),
        model.metrics.get("baseline_auroc"),
    )
    if use:
        rt.models[queue] = model
        blind = _without_sampled(rows, traffic, model) if sampled else model
        _rescore_waiting(
            rt,
            queue,
            lambda outputs, vectors: _learned_scores(model, outputs, vectors, blind=blind, sampled=sampled),
        )
    elif was_active is not None:
        rt.models.pop(queue, None)
        _rescore_waiting(rt, queue, lambda outputs, _: _coldstart_rescores(outputs, recent, params))
    else:
        return version  # cold start stays, nothing to rescore
    with transaction(rt.engine) as session:
        released = queues_repo.release_for_new_scorer(session, queue=queue, now=utcnow())
    if released:
        queueing.enqueue_selection(rt.work_queue(), settings, queue)
    return version


Rescored = list[tuple[float, list[dict[str, Any]]]]


def _learned_scores(
    model: learned.LearnedModel,
    outputs: Sequence[Output],
    vectors: np.ndarray,
    *,
    blind: learned.LearnedModel | None = None,
    sampled: set[str] | frozenset[str] = frozenset(),
) -> Rescored:
    """Scores under ``model``; sampled audit members (ids in ``sampled``) under ``blind``, a model
    that never saw their verdicts, so routing chooses among them without knowing them."""
    p_fail, reasons = model.score([o.signals or {} for o in outputs], vectors)
    scored = [
        (float(p), [*(d for d in (output.drivers or []) if "flag" in d), *why])
        for output, p, why in zip(outputs, p_fail, reasons, strict=True)
    ]
    mine = [i for i, o in enumerate(outputs) if o.id in sampled]
    if blind is not None and blind is not model and mine:
        p_blind, _ = blind.score([outputs[i].signals or {} for i in mine], vectors[mine])
        for i, p in zip(mine, p_blind.tolist(), strict=True):
            scored[i] = (float(p), scored[i][1])
    return scored


def _without_sampled(
    rows: Sequence[tuple[Any, ...]], traffic: Sequence[tuple[Any, bytes]], model: learned.LearnedModel
) -> learned.LearnedModel:
    """The model trained again without the sampled audit members' verdicts: their routing scores
    must not know them, or routing would pick their failures out of the sample (measured: through
    a 4,507-output replay the estimate ran about 4 points low). Falls back on ``model`` when too
    few labels are left."""
    kept = [r for r in rows if not r[4]]
    vectors = _vectors([r[1] for r in kept])
    pool_vectors = _vectors([e for _, e in traffic]) if vectors is not None else None
    try:
        return learned.train(
            [r[0] for r in kept],
            vectors,
            [r[2] for r in kept],
            learned.review_weights([r[3] for r in kept]),
            pool_embeddings=pool_vectors,
            pool_rows=[s for s, _ in traffic] if pool_vectors is not None else None,
            version=f"{model.version}-blind",
        )
    except learned.NotEnoughLabels:
        return model


def _coldstart_rescores(
    outputs: Sequence[Output], recent: Sequence[dict[str, float | None]], params: scoring.ScoringParams
) -> Rescored:
    results = scoring.coldstart_all([o.signals or {} for o in outputs], recent, params)
    return [(r.score if r.score is not None else 0.0, drivers_of(r)) for r in results]


def _rescore_waiting(
    rt: Runtime, queue: str, score: Callable[[Sequence[Output], np.ndarray], Rescored]
) -> None:
    """Rescore the queue's scored, unreviewed outputs page by page with ``score`` under the queue's
    scorer version now (cold start's when no model is used)."""
    version = rt.models[queue].version if queue in rt.models else scoring.SCORER_VERSION
    after = ""
    while True:
        with transaction(rt.engine) as session:
            page = scorers.unreviewed_scored(session, queue=queue, after=after, limit=RESCORE_PAGE)
            if not page:
                return
            after = page[-1].id
            usable = [o for o in page if o.embedding is not None]
            vectors = _vectors([o.embedding for o in usable])
            if not usable or vectors is None:
                continue
            scored = [
                (output.id, p, drivers)
                for output, (p, drivers) in zip(usable, score(usable, vectors), strict=True)
            ]
            scorers.rescore_many(session, scored=scored, version=version)
