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
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

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
        blind = _blind_models(rows, traffic, model, weights, ColdStartScorer(recent, params))
        _rescore_waiting(
            rt, queue, lambda outputs, vectors: _learned_scores(model, outputs, vectors, blind=blind)
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


class Predictor(Protocol):
    def predict(
        self, rows: Sequence[Mapping[str, float | None]], vectors: np.ndarray | None
    ) -> np.ndarray: ...


class ColdStartScorer:
    """Cold start's score as a predictor: it never sees a verdict, so it is the blind model of last
    resort for members whose fold is too small to train on."""

    def __init__(self, recent: Sequence[Mapping[str, float | None]], params: scoring.ScoringParams):
        self.recent, self.params = list(recent), params

    def predict(self, rows: Sequence[Mapping[str, float | None]], vectors: np.ndarray | None) -> np.ndarray:
        results = scoring.coldstart_all([dict(r) for r in rows], self.recent, self.params)
        return np.array([r.score if r.score is not None else 0.0 for r in results], dtype=float)


class OnMainScale:
    """A fold's blind model with its scores carried onto the main model's scale by their quantiles
    on the same recent traffic: a blind score at the fold model's q-th quantile becomes the main
    model's q-th quantile. Two models fitted on different reviews calibrate differently (isotonic
    steps fall in different places), and routing compares scores from both: unmapped, the reviewed
    members' blind scores sat above the main model's bulk (median 0.30 against 0.10 in a replay),
    and routing took nearly every one of them out of the sample."""

    def __init__(self, fold: Predictor, fold_on_traffic: np.ndarray, main_on_traffic: np.ndarray):
        self.fold = fold
        self.xp = np.sort(fold_on_traffic)
        self.fp = np.sort(main_on_traffic)

    def predict(self, rows: Sequence[Mapping[str, float | None]], vectors: np.ndarray | None) -> np.ndarray:
        p = self.fold.predict(rows, vectors)
        return p if not len(self.xp) else np.interp(p, self.xp, self.fp)


Blind = learned.LearnedModel | OnMainScale


def _learned_scores(
    model: learned.LearnedModel,
    outputs: Sequence[Output],
    vectors: np.ndarray,
    *,
    blind: Mapping[str, Blind] | None = None,
) -> Rescored:
    """Scores under ``model``; each sampled audit member in ``blind`` under its own model there, one
    that never saw its verdict, so routing chooses among them without knowing them."""
    p_fail, reasons = model.score([o.signals or {} for o in outputs], vectors)
    scored = [
        (float(p), [*(d for d in (output.drivers or []) if "flag" in d), *why])
        for output, p, why in zip(outputs, p_fail, reasons, strict=True)
    ]
    by_model: dict[int, tuple[Blind, list[int]]] = {}
    for i, o in enumerate(outputs):
        if blind and o.id in blind and blind[o.id] is not model:
            by_model.setdefault(id(blind[o.id]), (blind[o.id], []))[1].append(i)
    for other, mine in by_model.values():
        p_blind = other.predict([outputs[i].signals or {} for i in mine], vectors[mine])
        for i, p in zip(mine, p_blind.tolist(), strict=True):
            scored[i] = (float(p), scored[i][1])
    return scored


#: Folds of the sampled audit members: each fold is rescored by a model trained without its verdicts.
BLIND_FOLDS = 2


def _blind_models(
    rows: Sequence[tuple[Any, ...]],
    traffic: Sequence[tuple[Any, bytes]],
    model: learned.LearnedModel,
    weights: Sequence[float],
    cold: ColdStartScorer,
) -> dict[str, Blind]:
    """Sampled audit member id -> a model that never saw its verdict (cross-fitting): routing must not
    know their verdicts, or it would pick their failures out of the sample the estimate rests on
    (measured: through a 4,507-output replay the estimate ran about 4 points low).

    The members are split into ``BLIND_FOLDS`` folds; each fold's model is trained on every other
    review, the other folds' members weighted up by ``folds / (folds - 1)``. Members weigh 1/rate:
    they are what tells a model how often the traffic at large fails, so a model trained without all
    of them (as before) learned routing's picks alone and put every member at their failure rate
    (measured: p_fail 0.39 against the traffic's 0.12), and routing took nearly every reviewed member
    out of the sample. Each fold's model keeps the members' weight and stays on the main model's
    scale on average; its scores are then mapped onto the main model's by their quantiles on the
    recent traffic (``OnMainScale``), so a member ranks among the traffic where its blind score
    ranks. A fold too small to train on (a queue's first reviews) is scored by cold start, mapped
    the same way: never by ``model``, which saw its verdicts."""
    ids = sorted(r[5] for r in rows if r[4])
    if not ids:
        return {}
    order = np.random.default_rng(len(ids)).permutation(len(ids)).tolist()
    fold_of = {ids[i]: n % BLIND_FOLDS for n, i in enumerate(order)}
    boost = BLIND_FOLDS / (BLIND_FOLDS - 1)
    blind: dict[str, Blind] = {}
    pool_vectors = _vectors([e for _, e in traffic])
    pool_rows = [s for s, _ in traffic]
    main_on_traffic = model.predict(pool_rows, pool_vectors) if traffic else np.zeros(0)
    for fold in range(BLIND_FOLDS):
        keep = [i for i, r in enumerate(rows) if fold_of.get(r[5]) != fold]
        vectors = _vectors([rows[i][1] for i in keep])
        fitted: Predictor
        try:
            fitted = learned.train(
                [rows[i][0] for i in keep],
                vectors,
                [rows[i][2] for i in keep],
                [weights[i] * (boost if rows[i][4] else 1.0) for i in keep],
                pool_embeddings=pool_vectors if vectors is not None else None,
                pool_rows=pool_rows if vectors is not None and pool_vectors is not None else None,
                version=f"{model.version}-blind{fold}",
            )
        except learned.NotEnoughLabels:
            fitted = cold
        fold_on_traffic = fitted.predict(pool_rows, pool_vectors) if traffic else np.zeros(0)
        mapped = OnMainScale(fitted, fold_on_traffic, main_on_traffic)
        blind.update({oid: mapped for oid, f in fold_of.items() if f == fold})
    return blind


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
