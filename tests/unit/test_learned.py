"""The learned scorer ranks, calibrates, explains, survives a round trip and handles missing signals."""

from __future__ import annotations

import numpy as np
import pytest

from workers.learned import LearnedModel, NotEnoughLabels, cross_validated, train
from workers.metrics import auroc


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
    from workers.learned import MAX_REVIEW_WEIGHT, review_weights

    w = review_weights([1.0, 1.0, 0.5, 0.001, None])
    raw = [1.0, 1.0, 2.0, MAX_REVIEW_WEIGHT, 1.0]
    assert w == pytest.approx([r / (sum(raw) / 5) for r in raw])
    assert sum(w) / len(w) == pytest.approx(1.0)
