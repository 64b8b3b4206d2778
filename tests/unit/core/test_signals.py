"""Each signal follows its documented formula and is missing, not zero, when it cannot be computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import signals as sig
from core.signals import TokenLP


def unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_logprob_signals_follow_their_formulas() -> None:
    tokens = [TokenLP(math.log(0.5), (math.log(0.5), math.log(0.5))), TokenLP(math.log(0.25), ())]
    assert sig.mean_nll(tokens) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert sig.sequence_nll(tokens) == pytest.approx(math.log(8))
    assert sig.max_surprisal(tokens) == pytest.approx(math.log(4))
    assert sig.mean_entropy(tokens) == pytest.approx(math.log(2))  # only the first token has alternatives
    for f in (sig.mean_nll, sig.sequence_nll, sig.max_surprisal, sig.mean_entropy):
        assert f([]) is None


def test_uniform_top_k_has_entropy_log_k_and_a_sure_token_zero() -> None:
    assert sig.token_entropy([math.log(0.1)] * 5) == pytest.approx(math.log(5))
    assert sig.token_entropy([0.0]) == pytest.approx(0.0)
    assert sig.token_entropy([]) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I'm sorry, but I can't help with that.", 1.0),
        ("As an AI language model, I do not have opinions.", 1.0),
        ("I cannot provide medical advice.", 1.0),
        ("Paris is the capital of France.", 0.0),
        ("Sorry to hear that! Here is how to reset your password: ...", 0.0),
    ],
)
def test_refusal_phrasing_is_recognised(text: str, expected: float) -> None:
    assert sig.refusal(text) == expected


def test_empty_and_truncated_checks() -> None:
    assert sig.empty_response("  \n") == 1.0 and sig.empty_response("ok") == 0.0
    assert sig.truncated("length") == 1.0 and sig.truncated("stop") == 0.0 and sig.truncated(None) is None


def test_knn_distance_excludes_self_and_is_missing_without_reference() -> None:
    ref = np.vstack([unit(1, 0), unit(0, 1)])
    assert sig.knn_distance(np.vstack([unit(1, 0)]), ref, k=1) == [pytest.approx(0.0, abs=1e-6)]
    both = np.vstack([ref, unit(1, 0)])
    assert sig.knn_distance(both[2:], both, k=1, exclude_self_offset=2) == [pytest.approx(0.0, abs=1e-6)]
    lonely = np.vstack([unit(0, 1)])
    assert sig.knn_distance(lonely, lonely, k=3, exclude_self_offset=0) == [None]
    assert sig.knn_distance(lonely, np.zeros((0, 2), dtype=np.float32), k=3) == [None]


def test_samples_that_agree_give_low_dispersion_and_zero_semantic_entropy() -> None:
    response = unit(1, 0, 0)
    agree = np.vstack([unit(1, 0.05, 0), unit(1, 0, 0.05), unit(1, 0.02, 0.02)])
    s = sig.consistency(response, agree, threshold=0.9)
    assert s["sample_dispersion"] == pytest.approx(0.0, abs=0.01)
    assert s["semantic_entropy"] == pytest.approx(0.0)
    assert s["majority_disagreement"] == 0.0


def test_a_response_against_the_majority_is_flagged() -> None:
    response = unit(0, 1, 0)
    others = np.vstack([unit(1, 0, 0), unit(1, 0.01, 0), unit(1, 0, 0.01), unit(0, 0, 1)])
    s = sig.consistency(response, others, threshold=0.9)
    assert s["majority_disagreement"] == 1.0
    assert s["sample_dispersion"] == pytest.approx(1.0, abs=0.02)
    # clusters: {response}, {3 samples}, {1 sample}: shares 1/5, 3/5, 1/5
    expected = -(0.2 * math.log(0.2) * 2 + 0.6 * math.log(0.6))
    assert s["semantic_entropy"] == pytest.approx(expected)


def test_without_samples_consistency_is_missing() -> None:
    s = sig.consistency(unit(1, 0), np.zeros((0, 2), dtype=np.float32), threshold=0.9)
    assert s == {"sample_dispersion": None, "semantic_entropy": None, "majority_disagreement": None}


def test_max_similarity_to_reviewed_failures() -> None:
    failures = np.vstack([unit(1, 0), unit(0, 1)])
    assert sig.max_similarity(np.vstack([unit(1, 0.0)]), failures) == [pytest.approx(1.0)]
    assert sig.max_similarity(np.vstack([unit(1, 0)]), failures[:0]) == [None]
