"""Pure scoring: an output's token log-probs and embedding, against recent traffic -> signals -> score.

No RQ, no database, no model loading: everything here works on plain data so it can be unit
tested, benchmarked and reused from the CLI. Every signal is oriented so that a higher value means
"more likely wrong"; a signal that cannot be computed is ``None`` (missing), never zero.

Seams for later work: new signals are added to ``SIGNALS`` and computed in ``compute_signals``;
``combine`` is the cold-start combination that a learned, calibrated model will replace once
enough reviews exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

SCORER_VERSION = "coldstart-v1"

#: Every signal the scorer knows, each with a one-line description used in reasons and docs.
SIGNALS: dict[str, str] = {
    "mean_nll": "mean negative log-likelihood of the response tokens",
    "max_surprisal": "highest surprisal (-log p) of any response token",
    "mean_entropy": "mean entropy of the model's top-k next-token distribution",
    "novelty": "cosine distance to the nearest recent outputs",
}


@dataclass(frozen=True)
class TokenLP:
    """One generated token: its log-probability and the log-probs of the top alternatives."""

    logprob: float
    top_logprobs: tuple[float, ...] = ()


@dataclass
class Scored:
    signals: dict[str, float | None]
    score: float | None
    drivers: list[dict[str, float | str]] = field(default_factory=list)


def mean_nll(tokens: Sequence[TokenLP]) -> float | None:
    """Mean negative log-likelihood: ``-(1/T) * sum_t log p(y_t)``; log of the perplexity."""
    if not tokens:
        return None
    return -sum(t.logprob for t in tokens) / len(tokens)


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


def novelty(
    vectors: np.ndarray, reference: np.ndarray, *, k: int, exclude_self_offset: int | None = None
) -> list[float | None]:
    """Mean cosine distance from each vector to its ``k`` nearest reference vectors (L2-normalised).

    ``exclude_self_offset``: when ``vectors`` also sit in ``reference`` starting at that row, a vector
    is not its own neighbour. Returns None where the reference has no other vectors.
    """
    n = len(vectors)
    if n == 0:
        return []
    if len(reference) == 0:
        return [None] * n
    sims = vectors @ reference.T
    if exclude_self_offset is not None:
        rows = np.arange(n)
        sims[rows, exclude_self_offset + rows] = -np.inf
    available = len(reference) - (1 if exclude_self_offset is not None else 0)
    if available <= 0:
        return [None] * n
    kk = min(k, available)
    top = np.partition(sims, -kk, axis=1)[:, -kk:]
    distances = 1.0 - top.mean(axis=1)
    return [float(max(d, 0.0)) for d in distances]


def logprob_signals(tokens: Sequence[TokenLP] | None) -> dict[str, float | None]:
    """The three log-prob signals; all None when the caller sent no log-probs."""
    tokens = tokens or []
    return {
        "mean_nll": mean_nll(tokens),
        "max_surprisal": max_surprisal(tokens),
        "mean_entropy": mean_entropy(tokens),
    }


def percentile_rank(value: float, reference: np.ndarray) -> float:
    """Mid-rank percentile of ``value`` in a sorted reference: share below plus half the ties."""
    below = np.searchsorted(reference, value, side="left")
    upto = np.searchsorted(reference, value, side="right")
    return float((below + upto) / 2 / len(reference))


def reference_distributions(history: Sequence[Mapping[str, float | None]]) -> dict[str, np.ndarray]:
    """Sorted values of each signal over recent traffic, for percentile ranks."""
    out: dict[str, np.ndarray] = {}
    for name in SIGNALS:
        values = [s[name] for s in history if s.get(name) is not None]
        if values:
            out[name] = np.sort(np.asarray(values, dtype=np.float64))
    return out


def combine(signals: Mapping[str, float | None], reference: Mapping[str, np.ndarray]) -> Scored:
    """Cold-start score: the mean percentile rank of the available signals against recent traffic.

    Signals on different scales become comparable without labels, and a missing signal simply
    takes no part. The drivers are the signals ranked by how unusual they are.
    """
    ranks = {
        name: percentile_rank(value, reference[name])
        for name, value in signals.items()
        if value is not None and name in reference and len(reference[name]) > 0
    }
    if not ranks:
        return Scored(signals=dict(signals), score=None, drivers=[])
    score = sum(ranks.values()) / len(ranks)
    ordered = sorted(ranks.items(), key=lambda kv: kv[1], reverse=True)
    drivers: list[dict[str, float | str]] = [
        {"signal": name, "value": round(float(signals[name] or 0.0), 4), "percentile": round(rank, 4)}
        for name, rank in ordered
    ]
    return Scored(signals=dict(signals), score=score, drivers=drivers)


def embedding_text(prompt: str, response: str, *, max_chars: int) -> str:
    """What the encoder sees: the end of the prompt (a third of the room at most), then the response."""
    room_for_prompt = max_chars // 3
    head = prompt[-room_for_prompt:] if len(prompt) > room_for_prompt else prompt
    return f"{head}\n---\n{response}"[: max(max_chars, 1)]


@dataclass(frozen=True)
class ScoringInput:
    """What scoring needs of one output."""

    output_id: str
    prompt: str
    response: str
    tokens: tuple[TokenLP, ...] | None


def score_batch(
    items: Sequence[ScoringInput],
    vectors: np.ndarray,
    history_signals: Sequence[Mapping[str, float | None]],
    history_vectors: np.ndarray,
    *,
    neighbours: int,
) -> list[Scored]:
    """Score a batch against recent traffic; the batch itself counts as traffic (minus each item)."""
    reference_vectors = np.vstack([history_vectors, vectors]) if len(history_vectors) else vectors
    nov = novelty(vectors, reference_vectors, k=neighbours, exclude_self_offset=len(history_vectors))
    signals = []
    for item, novelty_value in zip(items, nov, strict=True):
        s = logprob_signals(item.tokens)
        s["novelty"] = novelty_value
        signals.append(s)
    reference = reference_distributions([*history_signals, *signals])
    return [combine(s, reference) for s in signals]
