"""Pure signal functions. Each is oriented so that higher means "more likely wrong", and each returns
None when it cannot be computed (missing, never zero). Formulas are in the docstrings.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenLP:
    """One generated token: its log-probability and the log-probs of the top alternatives."""

    logprob: float
    top_logprobs: tuple[float, ...] = ()


# --- log-probs -------------------------------------------------------------------------------


def mean_nll(tokens: Sequence[TokenLP]) -> float | None:
    """Mean negative log-likelihood: ``-(1/T) * sum_t log p(y_t)``; the log of the perplexity."""
    if not tokens:
        return None
    return -sum(t.logprob for t in tokens) / len(tokens)


def sequence_nll(tokens: Sequence[TokenLP]) -> float | None:
    """Negative log of the sequence probability, ``-sum_t log p(y_t)``: the MSP baseline.

    Ranking by it is ranking by maximum sequence probability ``prod_t p(y_t)``, reversed.
    """
    if not tokens:
        return None
    return -sum(t.logprob for t in tokens)


def max_surprisal(tokens: Sequence[TokenLP]) -> float | None:
    """Highest token surprisal: ``max_t -log p(y_t)``; one confabulated fact shows up here."""
    if not tokens:
        return None
    return max(-t.logprob for t in tokens)


def token_entropy(top_logprobs: Sequence[float]) -> float | None:
    """Entropy of the top-k alternatives renormalised: ``-sum_i q_i log q_i``, ``q_i = p_i / sum_j p_j``.

    Only the top-k log-probs are known, so the distribution is renormalised over them; the value is
    a lower bound on the true entropy up to the unseen tail.
    """
    if not top_logprobs:
        return None
    peak = max(top_logprobs)
    weights = [math.exp(lp - peak) for lp in top_logprobs]
    total = sum(weights)
    return -sum((w / total) * math.log(w / total) for w in weights if w > 0)


def mean_entropy(tokens: Sequence[TokenLP]) -> float | None:
    """Mean over tokens of ``token_entropy`` (tokens without alternatives are left out)."""
    values = [e for t in tokens if (e := token_entropy(t.top_logprobs)) is not None]
    if not values:
        return None
    return sum(values) / len(values)


# --- cheap checks ----------------------------------------------------------------------------

_REFUSAL = re.compile(
    r"\b(i(?:'m| am) (?:sorry|unable|not able)|i can(?:no|')t (?:help|assist|provide|answer|do that)|"
    r"as an ai(?: language model)?|i (?:do not|don't) have (?:access|the ability|enough information)|"
    r"i (?:must|have to) (?:decline|refuse)|i won't be able to)\b",
    re.IGNORECASE,
)


def empty_response(response: str) -> float:
    """1 when the response has no visible text."""
    return 0.0 if response.strip() else 1.0


def truncated(finish_reason: str | None) -> float | None:
    """1 when generation stopped at the token limit (``finish_reason == "length"``); None if unknown."""
    if finish_reason is None:
        return None
    return 1.0 if finish_reason == "length" else 0.0


def refusal(response: str) -> float:
    """1 when the response uses common refusal or disclaimer phrasing in its first 300 characters."""
    return 1.0 if _REFUSAL.search(response[:300]) else 0.0


# --- embeddings: neighbours and self-consistency ----------------------------------------------


def knn_distance(
    vectors: np.ndarray, reference: np.ndarray, *, k: int, exclude_self_offset: int | None = None
) -> list[float | None]:
    """Mean cosine distance from each vector to its ``k`` nearest reference vectors (L2-normalised).

    ``exclude_self_offset``: when ``vectors`` also sit in ``reference`` starting at that row, a vector
    is not its own neighbour. Returns None where the reference has no other vectors.
    """
    n = len(vectors)
    if n == 0:
        return []
    available = len(reference) - (1 if exclude_self_offset is not None else 0)
    if available <= 0:
        return [None] * n
    sims = vectors @ reference.T
    if exclude_self_offset is not None:
        rows = np.arange(n)
        sims[rows, exclude_self_offset + rows] = -np.inf
    kk = min(k, available)
    top = np.partition(sims, -kk, axis=1)[:, -kk:]
    distances = 1.0 - top.mean(axis=1)
    return [float(max(d, 0.0)) for d in distances]


def meaning_clusters(vectors: np.ndarray, *, threshold: float) -> list[int]:
    """Group answers that mean the same: greedy single-pass clustering on cosine >= threshold.

    Each answer joins the first cluster whose founding answer it is similar enough to, else founds
    one. A stand-in for bidirectional entailment that needs no extra model.
    """
    founders: list[int] = []
    labels: list[int] = []
    for i in range(len(vectors)):
        for c, f in enumerate(founders):
            if float(vectors[i] @ vectors[f]) >= threshold:
                labels.append(c)
                break
        else:
            founders.append(i)
            labels.append(len(founders) - 1)
    return labels


def semantic_entropy(labels: Sequence[int]) -> float | None:
    """Discrete semantic entropy ``-sum_c p_c log p_c`` over meaning clusters, ``p_c`` = share of answers."""
    if len(labels) < 2:
        return None
    n = len(labels)
    return -sum((m / n) * math.log(m / n) for m in Counter(labels).values())


def consistency(response: np.ndarray, samples: np.ndarray, *, threshold: float) -> dict[str, float | None]:
    """Self-consistency of a response against k samples of the same prompt.

    - ``sample_dispersion`` = 1 - mean_i cos(response, sample_i)
    - ``semantic_entropy`` over the meaning clusters of the samples and the response together
    - ``majority_disagreement`` = 1 when the response is outside the largest meaning cluster (0.5 on a tie)
    """
    if len(samples) == 0:
        return {"sample_dispersion": None, "semantic_entropy": None, "majority_disagreement": None}
    dispersion = float(1.0 - np.mean(samples @ response))
    labels = meaning_clusters(np.vstack([response[None, :], samples]), threshold=threshold)
    sizes = Counter(labels)
    largest = max(sizes.values())
    leaders = [c for c, m in sizes.items() if m == largest]
    in_majority = labels[0] in leaders
    disagreement = 1.0 if not in_majority else (0.0 if len(leaders) == 1 else 0.5)
    return {
        "sample_dispersion": max(dispersion, 0.0),
        "semantic_entropy": semantic_entropy(labels),
        "majority_disagreement": disagreement,
    }


def max_similarity(vectors: np.ndarray, reference: np.ndarray) -> list[float | None]:
    """Highest cosine similarity of each vector to the reference set (None if the set is empty)."""
    if len(reference) == 0:
        return [None] * len(vectors)
    return [float(v) for v in (vectors @ reference.T).max(axis=1)]
