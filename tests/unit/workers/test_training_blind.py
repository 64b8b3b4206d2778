"""Sampled audit members are rescored by models that never saw their verdicts (cross-fitted), and on
the main model's scale: otherwise routing would pick their failures out of the sample the estimate
rests on, or take every reviewed member out of it."""

from __future__ import annotations

import numpy as np
import pytest

from core import learned
from core.scoring import ScoringParams
from service.storage.tables import Output
from workers.training import BLIND_FOLDS, ColdStartScorer, OnMainScale, _blind_models, _learned_scores

Row = tuple[dict, bytes, bool, float, bool, str]


def reviews(seed: int) -> tuple[list[Row], list[tuple[dict, bytes]]]:
    """300 routed reviews (45% failed: routing picked them on more than ``length`` shows) and 60
    sampled members drawn at 10% from the traffic at large (15% failed): the members are what says
    how often the traffic fails."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for i in range(360):
        sampled = i >= 300
        failed = bool(rng.random() < (0.15 if sampled else 0.45))
        signals = {"length": float(rng.normal(1.0 if failed else 0.0, 1.0))}
        vector = rng.normal(size=16).astype(np.float32)
        vector /= np.linalg.norm(vector)
        rows.append((signals, vector.tobytes(), failed, 0.1 if sampled else 1.0, sampled, f"o{i}"))
    return rows, [(r[0], r[1]) for r in rows]


def cold(traffic: list[tuple[dict, bytes]]) -> ColdStartScorer:
    return ColdStartScorer([s for s, _ in traffic], ScoringParams())


def trained(rows: list[Row], traffic: list[tuple[dict, bytes]], weights: list[float]) -> learned.LearnedModel:
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    pool = np.stack([np.frombuffer(e, dtype=np.float32) for _, e in traffic])
    return learned.train(
        [r[0] for r in rows],
        vectors,
        [r[2] for r in rows],
        weights,
        pool_embeddings=pool,
        pool_rows=[s for s, _ in traffic],
    )


def test_each_sampled_member_is_scored_by_a_model_that_never_saw_its_verdict() -> None:
    rows, traffic = reviews(seed=1)
    weights = learned.review_weights([r[3] for r in rows])
    model = trained(rows, traffic, weights)
    blind = _blind_models(rows, traffic, model, weights, cold(traffic))
    members = [r[5] for r in rows if r[4]]
    assert set(blind) == set(members)
    models = {id(m): m for m in blind.values()}
    assert len(models) == BLIND_FOLDS and all(isinstance(m, OnMainScale) for m in models.values())
    for m in models.values():  # a fold's model was trained on everything but that fold's members
        assert isinstance(m, OnMainScale)
        fold = [oid for oid in members if blind[oid] is m]
        assert m.fold.n_labels == len(rows) - len(fold) and len(fold) == pytest.approx(30, abs=1)
    outputs = [Output(id=r[5], signals=r[0], drivers=[]) for r in rows]
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    scored = [p for p, _ in _learned_scores(model, outputs, vectors, blind=blind)]
    for i, r in enumerate(rows):
        own = blind.get(r[5], model)
        # a batch and a single row differ by float32 round-off (up to ~4e-7 with numpy 2.4's BLAS)
        assert scored[i] == pytest.approx(float(own.predict([r[0]], vectors[i : i + 1])[0]), abs=1e-5)


def test_members_of_a_fold_too_small_to_train_on_are_scored_by_cold_start_not_by_the_main_model() -> None:
    """A queue's first reviews: the main model can train (three of each verdict) but neither fold
    can without its members, so the members are scored by cold start, which never sees a verdict,
    carried onto the main model's scale; the main model saw their verdicts."""
    rng = np.random.default_rng(5)
    rows: list[Row] = []
    for i, (failed, sampled) in enumerate([(True, False)] * 4 + [(False, True)] * 3 + [(True, True)]):
        signals = {"mean_nll": float(rng.normal(1.0 if failed else 0.0, 1.0)), "length": float(rng.normal())}
        vector = rng.normal(size=16).astype(np.float32)
        rows.append(
            (
                signals,
                (vector / np.linalg.norm(vector)).tobytes(),
                failed,
                0.1 if sampled else 1.0,
                sampled,
                f"o{i}",
            )
        )
    traffic = [(r[0], r[1]) for r in rows] + [
        (
            {"mean_nll": float(rng.normal()), "length": float(rng.normal())},
            rng.normal(size=16).astype(np.float32).tobytes(),
        )
        for _ in range(40)
    ]
    weights = learned.review_weights([r[3] for r in rows])
    model = trained(rows, traffic, weights)
    blind = _blind_models(rows, traffic, model, weights, cold(traffic))
    members = [r for r in rows if r[4]]
    assert set(blind) == {r[5] for r in members}
    pool = np.stack([np.frombuffer(e, dtype=np.float32) for _, e in traffic])
    main_on_traffic = np.sort(model.predict([s for s, _ in traffic], pool))
    for r in members:
        scorer = blind[r[5]]
        assert (
            scorer is not model
            and isinstance(scorer, OnMainScale)
            and isinstance(scorer.fold, ColdStartScorer)
        )
        own = scorer.predict([r[0]], np.frombuffer(r[1], dtype=np.float32)[None, :])[0]
        assert main_on_traffic[0] - 1e-9 <= own <= main_on_traffic[-1] + 1e-9
    # the members' scores follow cold start's order, whatever their verdicts
    mapped = [blind[r[5]].predict([r[0]], None)[0] for r in members]
    by_cold = np.argsort([cold(traffic).predict([r[0]], None)[0] for r in members], kind="stable")
    assert np.all(np.diff(np.asarray(mapped)[by_cold]) >= 0)


def test_the_blind_scores_stay_on_the_main_models_scale() -> None:
    """Trained without every member (as before), a model knows only routing's picks and scores the
    members at their failure rate; cross-fitted models keep the members' weight and score them as
    the main model does."""
    rows, traffic = reviews(seed=2)
    weights = learned.review_weights([r[3] for r in rows])
    model = trained(rows, traffic, weights)
    blind = _blind_models(rows, traffic, model, weights, cold(traffic))
    kept = [i for i, r in enumerate(rows) if not r[4]]
    without = trained([rows[i] for i in kept], traffic, learned.review_weights([rows[i][3] for i in kept]))
    members = [r for r in rows if r[4]]
    outputs = [Output(id=r[5], signals=r[0], drivers=[]) for r in members]
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in members])
    main = model.score([r[0] for r in members], vectors)[0]
    cross = np.array([p for p, _ in _learned_scores(model, outputs, vectors, blind=blind)])
    old = without.score([r[0] for r in members], vectors)[0]
    assert abs(float(cross.mean() - main.mean())) < 0.05
    assert float(old.mean() - main.mean()) > 0.1
    # and not only on average: on the traffic, a fold's mapped scores are the main model's, quantile
    # for quantile, so routing meets a member where its blind score ranks it
    pool = np.stack([np.frombuffer(e, dtype=np.float32) for _, e in traffic])
    for fold in {id(m): m for m in blind.values()}.values():
        mapped = np.sort(fold.predict([s for s, _ in traffic], pool))
        assert np.allclose(mapped, np.sort(model.predict([s for s, _ in traffic], pool)), atol=1e-6)


def test_isotonic_steps_keep_the_models_order() -> None:
    """Isotonic calibration is a step function; routing must still tell outputs on one step apart."""
    from sklearn.isotonic import IsotonicRegression

    z = np.linspace(-3, 3, 200)
    y = (z > 1).astype(float)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-3, y_max=1 - 1e-3).fit(z, y)
    p = learned.calibrate("isotonic", iso, z)
    assert np.all(np.diff(p) > 0)  # strictly in the model's order
    assert np.max(np.abs(p - iso.predict(z))) < 1e-5  # and the probabilities are the steps'
    assert len(np.unique(np.round(p, 4))) == 2
