"""Training each queue's learned scorer from its reviews (an RQ job) and applying the active versions
when scoring.

Retraining is cheap (a prior-shrunk logistic regression on a few hundred rows) and frequent: the
first model comes after ``min_reviews_for_model`` reviews, then a new one whenever the queue's
reviews have grown by ``retrain_every`` or by ``retrain_growth`` of what the last model saw,
whichever is more. Each new version rescores the queue's waiting outputs and sends the picks the old
scores chose back to the pool, so the next picks use what was just learned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from core import learned
from service import queueing
from service.settings import Settings
from service.storage import queues as queues_repo
from service.storage import scorers
from service.storage.db import transaction
from service.storage.tables import utcnow
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
    """Whether a queue with this many reviews needs a new model (``trained_on``: the active one's)."""
    if reviewed < settings.min_reviews_for_model:
        return False
    if trained_on is None:
        return True
    step = max(settings.retrain_every, math.ceil(settings.retrain_growth * trained_on))
    return reviewed - trained_on >= step


def train_scorer(queue: str = "default", force: bool = False) -> str | None:
    """Train a new version of one queue's scorer when enough new reviews arrived; swap it in, rescore
    the queue's waiting outputs and re-choose its picks. Returns the new version, or None."""
    rt = runtime()
    settings = rt.settings
    with transaction(rt.engine) as session:
        active = scorers.active_model(session, queue=queue)
        trained_on = active.n_labels if active is not None else None
        reviewed = scorers.count_reviewed(session, queue=queue)
        if force:
            ready = reviewed >= settings.min_reviews_for_model
        else:
            ready = due(settings, reviewed=reviewed, trained_on=trained_on)
        if not ready:
            return None
        rows = scorers.training_rows(session, queue=queue, limit=settings.training_limit)
        pool = scorers.recent_embeddings(session, queue=queue, limit=settings.model_pool)
    signals = [r[0] for r in rows]
    failed = [r[2] for r in rows]
    weights = learned.review_weights([r[3] for r in rows])
    vectors = _vectors([r[1] for r in rows])
    pool_vectors = _vectors(pool) if vectors is not None else None
    version = f"{queue[:24]}-{datetime.now(UTC):%Y%m%d%H%M%S%f}-{len(rows)}"
    try:
        model = learned.train(
            signals, vectors, failed, weights, pool_embeddings=pool_vectors, version=version
        )
    except learned.NotEnoughLabels as exc:
        log.info("queue %s: not training yet: %s", queue, exc)
        return None
    model.metrics["weights"] = model.weights()
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
        )
    log.info(
        "queue %s: scorer %s active (%d labels, cv AUROC %s)",
        queue,
        version,
        len(rows),
        model.metrics.get("cv_auroc"),
    )
    rt.models[queue] = model
    _rescore_waiting(rt, queue, model)
    with transaction(rt.engine) as session:
        released = queues_repo.release_for_new_scorer(session, queue=queue, now=utcnow())
    if released:
        queueing.enqueue_selection(rt.work_queue(), settings, queue)
    return version


def _rescore_waiting(rt: Runtime, queue: str, model: learned.LearnedModel) -> None:
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
            p_fail, reasons = model.score([o.signals or {} for o in usable], vectors)
            scored = [
                (output.id, float(p), [*(d for d in (output.drivers or []) if "flag" in d), *why])
                for output, p, why in zip(usable, p_fail, reasons, strict=True)
            ]
            scorers.rescore_many(session, scored=scored, version=model.version)
