"""The learned scorer ranks, calibrates, explains, survives a round trip and handles missing signals."""

from __future__ import annotations

import numpy as np
import pytest

from core.comparison import replaces_baseline
from core.features import Featurizer
from core.learned import (
    DEFAULT_STRENGTH,
    LearnedModel,
    NotEnoughLabels,
    cross_validated,
    train,
)
from core.metrics import auroc


def synthetic(n: int, seed: int = 0) -> tuple[list[dict], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    failed = rng.random(n) < 0.25
    rows = []
    for f in failed:
        rows.append(
            {
                "max_surprisal": float(rng.normal(3.0 if f else 1.0, 1.0)),
                "novelty": float(rng.random()),  # pure noise
                "mean_nll": None if rng.random() < 0.3 else float(rng.normal(1.0, 0.3)),
            }
        )
    embeddings = rng.normal(size=(n, 16)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return rows, embeddings, failed


def test_a_model_learns_the_informative_signal_and_says_so() -> None:
    rows, emb, failed = synthetic(600)
    model = train(rows, emb, failed, version="v1")
    test_rows, test_emb, test_failed = synthetic(400, seed=1)
    p = model.predict(test_rows, test_emb)
    assert auroc(test_failed, p) > 0.85
    assert abs(p.mean() - test_failed.mean()) < 0.06  # calibrated on average
    assert model.calibration == "platt" and model.n_labels == 600
    worst = int(np.argmax(p))
    assert model.explain([test_rows[worst]], test_emb[worst : worst + 1])[0][0]["signal"] == "max_surprisal"


def test_round_trip_and_missing_embeddings_rule() -> None:
    rows, emb, failed = synthetic(200)
    model = train(rows, None, failed)
    again = LearnedModel.loads(model.dumps())
    assert np.allclose(again.predict(rows[:5], None), model.predict(rows[:5], None))
    with_emb = train(rows, emb, failed)
    with pytest.raises(ValueError, match="needs embeddings"):
        with_emb.predict(rows[:1], None)


def test_isotonic_calibration_once_labels_are_plenty() -> None:
    rows, _, failed = synthetic(1200)
    assert train(rows, None, failed).calibration == "isotonic"


def test_too_few_failures_is_refused() -> None:
    rows, _, _ = synthetic(50)
    with pytest.raises(NotEnoughLabels):
        train(rows, None, [False] * 48 + [True] * 2)


def test_cross_validated_scores_are_out_of_fold() -> None:
    rows, emb, failed = synthetic(300)
    p = cross_validated(rows, emb, failed, folds=5)
    assert p.shape == (300,) and auroc(failed, p) > 0.8


def test_review_weights_are_inverse_probabilities_truncated_and_normalised() -> None:
    from core.learned import MAX_REVIEW_WEIGHT, review_weights

    w = review_weights([1.0, 1.0, 0.5, 0.001, None])
    raw = [1.0, 1.0, 2.0, MAX_REVIEW_WEIGHT, 1.0]
    assert w == pytest.approx([r / (sum(raw) / 5) for r in raw])
    assert sum(w) / len(w) == pytest.approx(1.0)


def prior_world(n: int, seed: int, *, sign: float) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Outputs whose failures follow `disclaimer` (a cold-start signal) with this sign."""
    rng = np.random.default_rng(seed)
    disclaimer = rng.normal(size=n)
    failed = rng.random(n) < 1 / (1 + np.exp(-(sign * 2.0 * disclaimer - 1.0)))
    rows = [{"disclaimer": float(d), "length": float(rng.normal())} for d in disclaimer]
    return rows, None, failed  # type: ignore[return-value]


def test_with_a_handful_of_uninformative_reviews_the_model_keeps_the_cold_start_ranking() -> None:
    rows, _, _ = prior_world(400, 0, sign=1.0)
    rng = np.random.default_rng(1)
    coin = rng.random(20) < 0.5  # verdicts that say nothing about the signals
    model = train(rows[:20], None, coin)
    p = model.predict(rows, None)
    assert model.calibration == "none"  # too few of each verdict to cross-validate
    disclaimer = np.array([r["disclaimer"] for r in rows])
    rank_correlation = np.corrcoef(np.argsort(np.argsort(p)), np.argsort(np.argsort(disclaimer)))[0, 1]
    assert rank_correlation > 0.5 and model.weights()["disclaimer"] > 0.1
    # Twenty reviews are too few to cross-validate the prior strength: the default holds.
    assert model.strength == DEFAULT_STRENGTH


def test_enough_reviews_flip_a_signal_the_queue_disagrees_with() -> None:
    rows, _, failed = prior_world(600, 2, sign=-1.0)  # on this app, disclaiming answers are right
    model = train(rows, None, failed)
    assert model.weights()["disclaimer"] < -0.5
    test_rows, _, test_failed = prior_world(400, 3, sign=-1.0)
    assert auroc(test_failed, model.predict(test_rows, None)) > 0.75


def test_calibration_flattens_a_ranking_without_skill_but_never_turns_it_upside_down() -> None:
    from core.learned import _platt

    z = np.linspace(-2, 2, 100)
    y = (z < 0).astype(float)  # out-of-fold scores pointing the wrong way
    slope, _ = _platt(z, y, np.ones(100))
    assert slope == pytest.approx(0.0, abs=1e-6)
    slope, _ = _platt(z, 1 - y, np.ones(100))
    assert slope > 1.0


def test_a_local_failure_mode_is_found_through_the_reviewed_neighbours() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(30, 16))
    topic = rng.integers(0, 30, size=600)
    emb = centres[topic] + 0.3 * rng.normal(size=(600, 16))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    failed = np.isin(topic, [3, 17]) ^ (rng.random(600) < 0.01)  # two kinds of request fail
    rows = [{"length": float(rng.normal())} for _ in range(600)]
    model = train(rows[:300], emb[:300], failed[:300], pool_embeddings=emb)
    p = model.predict(rows[300:], emb[300:])
    assert auroc(failed[300:], p) > 0.9
    worst = 300 + int(np.argmax(p))
    drivers = model.explain([rows[worst]], emb[worst : worst + 1])[0]
    assert drivers[0]["signal"] in ("similar_failed", "content")
    assert any(d["signal"] == "similar_failed" and 0 < float(d["value"]) <= 1 for d in drivers)


def test_a_model_stored_before_the_core_moved_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models saved when the classes lived in ``workers.learned`` name that module in their pickle."""
    import sys
    import types

    from core import features, learned

    rows, emb, failed = synthetic(200)
    model = train(rows, emb, failed, version="old")
    former = types.ModuleType(learned.FORMER_HOME)
    for cls in (learned.LearnedModel, features.Featurizer, features.NeighbourVotes):
        setattr(former, cls.__name__, cls)
        monkeypatch.setattr(cls, "__module__", learned.FORMER_HOME)
    monkeypatch.setitem(sys.modules, learned.FORMER_HOME, former)
    blob = model.dumps()
    monkeypatch.undo()
    assert b"workers.learned" in blob and learned.FORMER_HOME not in sys.modules

    loaded = LearnedModel.loads(blob)

    assert type(loaded) is LearnedModel and type(loaded.featurizer) is features.Featurizer
    np.testing.assert_allclose(loaded.predict(rows[:20], emb[:20]), model.predict(rows[:20], emb[:20]))
    assert learned.FORMER_HOME not in sys.modules


def test_a_model_reports_its_calibration_on_held_out_reviews() -> None:
    rows, emb, failed = synthetic(600)
    model = train(rows, emb, failed, version="v1")
    held = model.metrics["held_out"]
    assert held["reviews"] == 600 and 0.0 < held["brier"] < 0.2 and held["ece"] < 0.06
    assert sum(pt["n"] for pt in held["reliability"]) == 600
    # the figures are out of fold: they are no better than the fitted model's on its own labels
    fitted = model.predict(rows, emb)
    own_brier = float(np.mean((fitted - failed) ** 2))
    assert held["brier"] >= own_brier - 0.005


def test_a_model_replaces_cold_start_unless_cold_start_clearly_ranks_the_reviews_better() -> None:
    rows, emb, failed = synthetic(300)
    # Cold start ranked by noise: the model, which found max_surprisal, is used.
    noise = np.random.default_rng(5).random(300)
    model = train(rows, emb, failed, baseline=noise.tolist())
    assert model.metrics["cv_auroc"] > 0.8 and abs(model.metrics["baseline_auroc"] - 0.5) < 0.1
    assert model.metrics["baseline_better_share"] == 0.0 and replaces_baseline(model.metrics)
    # Cold start that already knows the answer beats the model in every resample: kept back.
    perfect = train(rows, emb, failed, baseline=failed.astype(float).tolist())
    assert perfect.metrics["baseline_auroc"] == 1.0 and perfect.metrics["baseline_better_share"] >= 0.9
    assert not replaces_baseline(perfect.metrics)
    # Too few labels to cross-validate: nothing speaks against the model, whose prior is cold start.
    few_rows, few_emb, few_failed = synthetic(30, seed=2)
    few = train(few_rows, few_emb, few_failed, baseline=noise[:30].tolist())
    assert "cv_auroc" not in few.metrics and replaces_baseline(few.metrics)
    # A point difference on a few reviews is not enough to keep a model back; clear evidence is.
    assert replaces_baseline({"cv_auroc": 0.6, "baseline_auroc": 0.65, "baseline_better_share": 0.7})
    assert not replaces_baseline({"cv_auroc": 0.6, "baseline_auroc": 0.75, "baseline_better_share": 0.95})
    assert replaces_baseline({"cv_auroc": 0.6}) and replaces_baseline({"cv_auroc": float("nan")})


def test_features_are_scaled_by_the_traffic_not_by_the_reviews_routing_chose() -> None:
    rng = np.random.default_rng(4)
    # Routing reviewed outputs that barely differ in length; the traffic's lengths spread widely.
    reviewed = [
        {"length": float(3.0 + rng.normal(0, 0.01)), "novelty": float(rng.random())} for _ in range(40)
    ]
    traffic = [{"length": float(rng.normal(4.0, 1.0)), "novelty": float(rng.random())} for _ in range(400)]
    failed = np.array([i % 2 == 0 for i in range(40)])
    alone, _ = Featurizer.fit(reviewed, None, None, failed)
    scaled, _ = Featurizer.fit(reviewed, None, None, failed, traffic)
    column = alone.names.index("length")
    assert alone.scale is not None and scaled.scale is not None
    assert alone.scale[column] < 0.02 and 0.9 < scaled.scale[column] < 1.1
    assert scaled.mean is not None and abs(scaled.mean[column] - 4.0) < 0.15


def test_a_missing_signal_is_filled_from_the_traffic_so_it_pushes_the_score_neither_way() -> None:
    """Routing reviewed ``unsupported`` only where it was high; most traffic lacks it. Filled from
    the reviews, every output without it would sit at the top of its range."""
    rng = np.random.default_rng(6)
    reviewed = [{"unsupported": 1.0 if i % 3 else 0.8, "length": float(rng.normal())} for i in range(30)]
    reviewed += [{"unsupported": None, "length": float(rng.normal())} for _ in range(6)]
    traffic = [
        {"unsupported": None if i % 3 else float(rng.random()), "length": float(rng.normal())}
        for i in range(600)
    ]
    failed = np.array([i % 2 == 0 for i in range(36)])
    featurizer, _ = Featurizer.fit(reviewed, None, None, failed, traffic)
    present = [r["unsupported"] for r in traffic if r["unsupported"] is not None]
    assert featurizer.fills["unsupported"] == pytest.approx(np.mean(present))
    column = featurizer.names.index("unsupported")
    lacking = featurizer.transform([{"unsupported": None, "length": 0.0}], None)
    assert abs(lacking[0, column]) < 0.05
    alone, _ = Featurizer.fit(reviewed, None, None, failed)  # no traffic known: the reviews' own mean
    assert alone.fills["unsupported"] == pytest.approx(np.mean([r["unsupported"] for r in reviewed[:30]]))


def test_a_ranked_signal_constant_among_the_reviews_keeps_ranking_the_traffic() -> None:
    """Routing's first picks all asked for facts: among them ``factual_request`` never varies, but it
    does in the traffic, and the model keeps cold start's use of it there."""
    rng = np.random.default_rng(8)
    reviewed = [{"factual_request": 1.0, "novelty": float(rng.random())} for _ in range(20)]
    traffic = [{"factual_request": float(i % 2), "novelty": float(rng.random())} for i in range(400)]
    failed = np.array([i % 3 == 0 for i in range(20)])
    model = train(reviewed, None, failed, pool_rows=traffic)
    assert "factual_request" in model.featurizer.names
    asks, writes = {"factual_request": 1.0, "novelty": 0.5}, {"factual_request": 0.0, "novelty": 0.5}
    p = model.predict([asks, writes], None)
    assert p[0] > p[1]
    unknown = train(reviewed, None, failed)  # no traffic known: the reviews are all there is
    assert "factual_request" not in unknown.featurizer.names


def test_a_featurizer_stored_with_medians_still_loads() -> None:
    """Models stored before the fills came from the traffic name them ``medians``."""
    rows, emb, failed = synthetic(120)
    featurizer, _ = Featurizer.fit(rows, emb, None, failed)
    import pickle

    stored = Featurizer.__new__(Featurizer)
    stored.__dict__.update(featurizer.__dict__)
    stored.__dict__["medians"] = stored.__dict__.pop("fills")
    loaded = pickle.loads(pickle.dumps(stored))
    np.testing.assert_allclose(loaded.transform(rows[:5], emb[:5]), featurizer.transform(rows[:5], emb[:5]))


def test_drivers_say_which_way_a_signal_pushed_and_when_it_was_missing() -> None:
    rng = np.random.default_rng(9)
    failed = rng.random(400) < 0.3
    # Failures are short answers, and they come without log-probs: the model learns both.
    rows = [
        {"length": float(rng.normal(2.0 if f else 4.0, 0.5)), "mean_nll": None if f else float(rng.random())}
        for f in failed
    ]
    model = train(rows, None, failed)
    short = {"length": 1.5, "mean_nll": None}
    drivers = {d["signal"]: d for d in model.explain([short], None, top=5)[0]}
    assert drivers["length"]["direction"] == "low" and "missing" not in drivers["length"]
    assert drivers["mean_nll"]["missing"] is True
    long = {"length": 6.0, "mean_nll": 0.5}
    assert all("missing" not in d for d in model.explain([long], None, top=5)[0])
