"""The pure scoring signals and their cold-start combination."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workers import scoring
from workers.scoring import ScoringInput, TokenLP


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_logprob_signals_follow_their_formulas() -> None:
    tokens = [TokenLP(math.log(0.5), (math.log(0.5), math.log(0.5))), TokenLP(math.log(0.25), ())]
    s = scoring.logprob_signals(tokens)
    assert s["mean_nll"] == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert s["max_surprisal"] == pytest.approx(math.log(4))
    # Only the first token has alternatives: two equal ones have entropy log 2.
    assert s["mean_entropy"] == pytest.approx(math.log(2))


def test_uniform_top_k_has_entropy_log_k_and_a_sure_token_none() -> None:
    assert scoring.token_entropy([math.log(0.1)] * 5) == pytest.approx(math.log(5))
    assert scoring.token_entropy([0.0]) == pytest.approx(0.0)


def test_without_logprobs_signals_are_missing_not_zero() -> None:
    assert scoring.logprob_signals(None) == {"mean_nll": None, "max_surprisal": None, "mean_entropy": None}


def test_novelty_is_distance_to_nearest_neighbours_excluding_self() -> None:
    ref = np.vstack([unit([1, 0]), unit([0, 1])])
    vectors = np.vstack([unit([1, 0])])
    assert scoring.novelty(vectors, ref, k=1) == [pytest.approx(0.0, abs=1e-6)]
    both = np.vstack([ref, vectors])
    # The vector is the last row of the reference: excluding itself it is still next to [1, 0].
    assert scoring.novelty(vectors, both, k=1, exclude_self_offset=2) == [pytest.approx(0.0, abs=1e-6)]
    lonely = np.vstack([unit([0, 1])])
    assert scoring.novelty(lonely, lonely, k=3, exclude_self_offset=0) == [None]
    assert scoring.novelty(lonely, np.zeros((0, 2), dtype=np.float32), k=3) == [None]


def test_percentile_rank_uses_mid_ranks() -> None:
    ref = np.array([1.0, 2.0, 2.0, 3.0])
    assert scoring.percentile_rank(0.0, ref) == 0.0
    assert scoring.percentile_rank(2.0, ref) == pytest.approx(0.5)
    assert scoring.percentile_rank(9.0, ref) == 1.0


def test_combine_averages_available_ranks_and_names_drivers() -> None:
    reference = {"mean_nll": np.array([0.1, 0.2, 0.3, 0.4]), "novelty": np.array([0.1, 0.2, 0.3, 0.4])}
    result = scoring.combine({"mean_nll": 1.0, "novelty": 0.0, "max_surprisal": None}, reference)
    assert result.score == pytest.approx(0.5)
    assert [d["signal"] for d in result.drivers] == ["mean_nll", "novelty"]
    assert scoring.combine({"mean_nll": None}, reference).score is None


def test_score_batch_ranks_the_odd_one_out_highest() -> None:
    items = [ScoringInput(output_id=str(i), prompt="p", response="r", tokens=None) for i in range(4)]
    vectors = np.vstack([unit([1, 0, 0]), unit([0.99, 0.05, 0]), unit([0.98, 0, 0.05]), unit([0, 0, 1])])
    results = scoring.score_batch(items, vectors, [], np.zeros((0, 3), dtype=np.float32), neighbours=2)
    scores = [r.score for r in results]
    assert all(s is not None for s in scores)
    assert max(range(4), key=lambda i: scores[i] or 0) == 3


def test_score_batch_uses_history_as_reference() -> None:
    history_vectors = np.vstack([unit([1, 0]), unit([1, 0.01])])
    history = [{"novelty": 0.0}, {"novelty": 0.01}]
    item = [ScoringInput(output_id="x", prompt="p", response="r", tokens=(TokenLP(-0.1),))]
    [result] = scoring.score_batch(item, np.vstack([unit([0, 1])]), history, history_vectors, neighbours=2)
    assert result.signals["novelty"] == pytest.approx(1.0, abs=0.02)
    assert result.signals["mean_nll"] == pytest.approx(0.1)
    assert result.score is not None and result.score > 0.5


def test_embedding_text_keeps_the_response_when_the_prompt_is_long() -> None:
    text = scoring.embedding_text("x" * 5000, "the answer", max_chars=300)
    assert len(text) <= 300
    assert text.endswith("the answer")
