"""Training the learned scorer from reviews (an RQ job) and applying the active version when scoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.storage import scorers
from service.storage.db import transaction
from workers import learned, metrics
from workers.scoring import Scored

log = logging.getLogger(__name__)
RESCORE_PAGE = 1000


def current_model(rt: Any, session: Session) -> learned.LearnedModel | None:
    """The active learned scorer, loaded once per version and cached on the runtime."""
    version = scorers.active_version(session)
    if version is None:
        return None
    cached = getattr(rt, "_model", None)
    if cached is None or cached.version != version:
        row = scorers.active_model(session)
        if row is None:
            return None
        rt._model = learned.LearnedModel.loads(row.blob)
    model: learned.LearnedModel = rt._model
    return model


def apply_model(model: learned.LearnedModel, results: Sequence[Scored], vectors: np.ndarray) -> None:
    """Replace cold-start scores with calibrated failure probabilities and their explanations."""
    rows = [r.signals for r in results]
    p_fail = model.predict(rows, vectors)
    explanations = model.explain(rows, vectors)
    for result, p, why in zip(results, p_fail, explanations, strict=True):
        result.score = float(p)
        result.drivers = why


def _vectors(embeddings: Sequence[bytes | None]) -> np.ndarray | None:
    if not embeddings or any(e is None for e in embeddings):
        return None
    sizes = {len(e or b"") for e in embeddings}
    if len(sizes) != 1:
        return None
    return np.vstack([np.frombuffer(e or b"", dtype=np.float32) for e in embeddings])


def train_scorer(force: bool = False) -> str | None:
    """Train a new scorer version from reviews when enough new ones arrived; swap it in, rescore the
    waiting outputs. Returns the new version, or None when nothing was trained."""
    from workers.jobs import runtime

    rt = runtime()
    settings = rt.settings
    with transaction(rt.engine) as session:
        rows = scorers.training_rows(session, limit=settings.training_limit)
        active = scorers.active_model(session)
        trained_on = active.n_labels if active is not None else 0
    if len(rows) < settings.min_reviews_for_model:
        return None
    if not force and active is not None and len(rows) - trained_on < settings.retrain_every:
        return None
    signals = [r[0] for r in rows]
    failed = np.array([r[2] for r in rows], dtype=bool)
    weights = learned.review_weights([r[3] for r in rows])
    vectors = _vectors([r[1] for r in rows])
    version = f"learned-{datetime.now(UTC):%Y%m%d%H%M%S}-{len(rows)}"
    try:
        model = learned.train(signals, vectors, list(failed), weights, version=version)
        folds = min(5, int(failed.sum()), int((~failed).sum()))
        cv = learned.cross_validated(signals, vectors, list(failed), folds=folds)
    except learned.NotEnoughLabels as exc:
        log.info("not training yet: %s", exc)
        return None
    model.metrics = {"cv_auroc": metrics.auroc(failed, cv), "cv_prr": metrics.prr(failed, cv)}
    with transaction(rt.engine) as session:
        scorers.activate_model(
            session,
            version=version,
            blob=model.dumps(),
            n_labels=model.n_labels,
            n_failures=model.n_failures,
            calibration=model.calibration,
            metrics=model.metrics,
        )
    log.info("scorer %s active (%d labels, cv AUROC %.3f)", version, len(rows), model.metrics["cv_auroc"])
    _rescore_waiting(rt, model)
    return version


def _rescore_waiting(rt: Any, model: learned.LearnedModel) -> None:
    after = ""
    while True:
        with transaction(rt.engine) as session:
            page = scorers.unreviewed_scored(session, after=after, limit=RESCORE_PAGE)
            if not page:
                return
            after = page[-1].id
            usable = [o for o in page if o.embedding is not None]
            if not usable:
                continue
            vectors = _vectors([o.embedding for o in usable])
            rows = [o.signals or {} for o in usable]
            p_fail = model.predict(rows, vectors)
            for output, p, why in zip(usable, p_fail, model.explain(rows, vectors), strict=True):
                flags = [d for d in (output.drivers or []) if "flag" in d]
                scorers.rescore(
                    session,
                    output_id=output.id,
                    score=float(p),
                    scorer_version=model.version,
                    drivers=[*flags, *why],
                )
