"""The cold-start combination: percentile ranks against recent traffic, flags, missing signals."""

from __future__ import annotations

import numpy as np
import pytest

from core import scoring
from core.scoring import Context, ScoringInput, ScoringParams, TokenLP


def unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def no_answers(n: int, dim: int) -> list[np.ndarray]:
    return [np.zeros((0, dim), dtype=np.float32) for _ in range(n)]


def test_percentile_rank_uses_mid_ranks() -> None:
    ref = np.array([1.0, 2.0, 2.0, 3.0])
    assert scoring.percentile_rank(0.0, ref) == 0.0
    assert scoring.percentile_rank(2.0, ref) == pytest.approx(0.5)
    assert scoring.percentile_rank(9.0, ref) == 1.0


def test_coldstart_averages_available_ranks_and_names_drivers() -> None:
    reference = {"mean_nll": np.array([0.1, 0.2, 0.3, 0.4]), "novelty": np.array([0.1, 0.2, 0.3, 0.4])}
    result = scoring.coldstart(
        {"mean_nll": 1.0, "novelty": 0.0, "max_surprisal": None, "refusal": 1.0}, reference
    )
    assert result.score == pytest.approx(0.5)
    assert [d["signal"] for d in result.drivers] == ["mean_nll", "novelty"]
    assert scoring.coldstart({"mean_nll": None}, reference).score is None


def test_a_flag_raises_the_score_to_the_floor() -> None:
    reference = {"novelty": np.array([0.1, 0.2, 0.3, 0.4])}
    result = scoring.coldstart({"novelty": 0.0}, reference, flags=["truncated"])
    assert result.score == scoring.FLAG_FLOOR and result.flags == ["truncated"]


def test_score_batch_ranks_the_odd_one_out_highest() -> None:
    items = [ScoringInput(output_id=str(i), prompt="p", response="r", tokens=None) for i in range(4)]
    vectors = np.vstack([unit(1, 0, 0), unit(0.99, 0.05, 0), unit(0.98, 0, 0.05), unit(0, 0, 1)])
    results = scoring.score_batch(
        items, vectors, no_answers(4, 3), Context.empty(3), ScoringParams(neighbours=2)
    )
    scores = [r.score or 0.0 for r in results]
    assert max(range(4), key=lambda i: scores[i]) == 3
    assert all(r.signals["mean_nll"] is None and r.signals["reviewed_novelty"] is None for r in results)


def test_history_and_reviewed_failures_shape_the_signals() -> None:
    context = Context(
        history_signals=[{"novelty": 0.0}, {"novelty": 0.01}],
        history_vectors=np.vstack([unit(1, 0), unit(1, 0.01)]),
        reviewed_vectors=np.vstack([unit(0, 1), unit(1, 0)]),
        reviewed_failed=np.array([True, False]),
    )
    item = [
        ScoringInput(output_id="x", prompt="p", response="r", tokens=(TokenLP(-0.1),), finish_reason="stop")
    ]
    [result] = scoring.score_batch(item, np.vstack([unit(0, 1)]), no_answers(1, 2), context, ScoringParams())
    assert result.signals["novelty"] == pytest.approx(1.0, abs=0.02)
    assert result.signals["mean_nll"] == pytest.approx(0.1)
    assert result.signals["failure_similarity"] == pytest.approx(1.0)
    assert result.signals["truncated"] == 0.0
    assert "repeats_failure" in result.flags and result.score is not None and result.score >= 0.9


def test_caller_samples_feed_self_consistency() -> None:
    item = [ScoringInput(output_id="x", prompt="p", response="Paris", tokens=None, samples=("Lyon", "Nice"))]
    answers = [np.vstack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)])]
    [result] = scoring.score_batch(
        item, np.vstack([unit(1, 1, 1)]), answers, Context.empty(3), ScoringParams()
    )
    assert result.signals["majority_disagreement"] == 0.5  # three singletons: a tie that includes it
    assert result.signals["sample_dispersion"] == pytest.approx(1.0, abs=1e-5)


def test_embedding_text_keeps_the_response_when_the_prompt_is_long() -> None:
    text = scoring.embedding_text("x" * 5000, "the answer", max_chars=300)
    assert len(text) <= 300 and text.endswith("the answer")
