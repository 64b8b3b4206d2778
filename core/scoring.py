"""Pure scoring: outputs, their embeddings and samples, against recent traffic and past reviews
-> signals -> a cold-start score. No RQ, no database, no model loading.

Every signal is oriented so that higher means "more likely wrong" and is None when it cannot be
computed; the combination works with whatever subset an output has. The learned, calibrated model
(``core.learned``) replaces the cold-start score once enough reviews exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core import signals as sig
from core.signals import TokenLP
from core.text_features import TEXT_SIGNALS, text_features

SCORER_VERSION = "coldstart-v3"

#: Continuous signals, combined in cold start by their percentile rank against recent traffic.
RANKED: dict[str, str] = {
    "mean_nll": "mean negative log-likelihood of the response tokens",
    "sequence_nll": "negative log of the whole response's probability (MSP)",
    "max_surprisal": "highest surprisal (-log p) of any response token",
    "mean_entropy": "mean entropy of the model's top-k next-token distribution",
    "sample_dispersion": "disagreement between the response and other samples",
    "semantic_entropy": "entropy over the meanings of the samples",
    "majority_disagreement": "response differs from the samples' majority meaning",
    "novelty": "cosine distance to the nearest recent outputs",
    "failure_similarity": "similarity to an output reviewers failed",
    # Text signals whose direction holds on most traffic: claims the prompt does not support.
    **{
        name: TEXT_SIGNALS[name]
        for name in ("specificity", "unsupported", "repetition", "disclaimer", "factual_request")
    },
}
#: Signals that feed the learned model and the reasons but not the cold-start mean: their direction
#: differs from one app to the next (long answers fail more on one, less on another), so each
#: queue's reviews decide it.
CONTEXT: dict[str, str] = {
    **{name: text for name, text in TEXT_SIGNALS.items() if name not in RANKED},
    "reviewed_novelty": "cosine distance to the nearest reviewed outputs",
    "empty": "the response is empty",
    "truncated": "the response was cut off at the token limit",
    "refusal": "the response refuses or disclaims",
}
SIGNALS: dict[str, str] = {**RANKED, **CONTEXT}
#: What reasons call each thing a score may be driven by: the signals, and what the learned model
#: computes from its reviews rather than stores with the output.
DESCRIPTIONS: dict[str, str] = {
    **SIGNALS,
    "similar_failed": "share of the most similar reviewed outputs that failed",
}
#: Checks that make an output worth a look whatever its rank: score at least FLAG_FLOOR.
FLAGS = ("empty", "truncated", "repeats_failure")
FLAG_FLOOR = 0.9


@dataclass(frozen=True)
class ScoringInput:
    """What scoring needs of one output."""

    output_id: str
    prompt: str
    response: str
    tokens: tuple[TokenLP, ...] | None
    finish_reason: str | None = None
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoringParams:
    neighbours: int = 5
    consistency_threshold: float = 0.85
    near_duplicate: float = 0.95


@dataclass
class Scored:
    signals: dict[str, float | None]
    score: float | None
    drivers: list[dict[str, float | str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Context:
    """Recent traffic (signals and vectors) and reviewed outputs (vectors and whether they failed)."""

    history_signals: Sequence[Mapping[str, float | None]]
    history_vectors: np.ndarray
    reviewed_vectors: np.ndarray
    reviewed_failed: np.ndarray  # bool per reviewed vector
    #: Neighbour signals already looked up in a nearest-neighbour index (one dict per batch item);
    #: when given, the vectors above are not searched.
    neighbour_signals: Sequence[Mapping[str, float | None]] | None = None

    @classmethod
    def empty(cls, dimension: int) -> Context:
        none = np.zeros((0, dimension), dtype=np.float32)
        return cls([], none, none, np.zeros(0, dtype=bool))


def logprob_signals(tokens: Sequence[TokenLP] | None) -> dict[str, float | None]:
    """The log-prob signals; all None when the caller sent no log-probs."""
    tokens = tokens or []
    return {
        "mean_nll": sig.mean_nll(tokens),
        "sequence_nll": sig.sequence_nll(tokens),
        "max_surprisal": sig.max_surprisal(tokens),
        "mean_entropy": sig.mean_entropy(tokens),
    }


def text_signals(prompt: str, response: str, finish_reason: str | None) -> dict[str, float | None]:
    """The checks and text features that need nothing but the prompt and the response."""
    return {
        **text_features(prompt, response),
        "empty": sig.empty_response(response),
        "truncated": sig.truncated(finish_reason),
        "refusal": sig.refusal(response),
    }


def percentile_rank(value: float, reference: np.ndarray) -> float:
    """Mid-rank percentile of ``value`` in a sorted reference: share below plus half the ties."""
    below = np.searchsorted(reference, value, side="left")
    upto = np.searchsorted(reference, value, side="right")
    return float((below + upto) / 2 / len(reference))


def reference_distributions(history: Sequence[Mapping[str, float | None]]) -> dict[str, np.ndarray]:
    """Sorted values of each ranked signal over recent traffic, for percentile ranks."""
    out: dict[str, np.ndarray] = {}
    for name in RANKED:
        values = [s[name] for s in history if s.get(name) is not None]
        if values:
            out[name] = np.sort(np.asarray(values, dtype=np.float64))
    return out


def coldstart(
    signals: Mapping[str, float | None], reference: Mapping[str, np.ndarray], flags: Sequence[str] = ()
) -> Scored:
    """Cold-start score: the mean percentile rank of the available ranked signals against recent
    traffic, raised to at least ``FLAG_FLOOR`` when a flag (empty, truncated, repeats a failure) is up.

    Signals on different scales become comparable without labels; a missing signal takes no part.
    """
    ranks = {
        name: percentile_rank(value, reference[name])
        for name, value in signals.items()
        if value is not None and name in RANKED and len(reference.get(name, ())) > 0
    }
    score = sum(ranks.values()) / len(ranks) if ranks else None
    if flags:
        score = max(score or 0.0, FLAG_FLOOR)
    ordered = sorted(ranks.items(), key=lambda kv: kv[1], reverse=True)
    drivers: list[dict[str, float | str]] = [
        {"signal": name, "value": round(float(signals[name] or 0.0), 4), "percentile": round(rank, 4)}
        for name, rank in ordered
    ]
    return Scored(signals=dict(signals), score=score, drivers=drivers, flags=list(flags))


def coldstart_all(
    signals: Sequence[Mapping[str, float | None]],
    history: Sequence[Mapping[str, float | None]],
    params: ScoringParams,
) -> list[Scored]:
    """The cold-start score of each of these outputs, ranked against ``history`` (recent traffic)."""
    reference = reference_distributions(history)
    return [coldstart(s, reference, flags_of(s, params)) for s in signals]


def flags_of(signals: Mapping[str, float | None], params: ScoringParams) -> list[str]:
    up = [name for name in ("empty", "truncated") if signals.get(name) == 1.0]
    if (signals.get("failure_similarity") or 0.0) >= params.near_duplicate:
        up.append("repeats_failure")
    return up


def embedding_text(prompt: str, response: str, *, max_chars: int) -> str:
    """What the encoder sees: the end of the prompt (a third of the room at most), then the response."""
    room_for_prompt = max_chars // 3
    head = prompt[-room_for_prompt:] if len(prompt) > room_for_prompt else prompt
    return f"{head}\n---\n{response}"[: max(max_chars, 1)]


def brute_force_neighbours(
    vectors: np.ndarray, context: Context, params: ScoringParams
) -> list[dict[str, float | None]]:
    """Novelty, reviewed novelty and similarity to failures by exact search (small references, bench)."""
    history = context.history_vectors
    reference = np.vstack([history, vectors]) if len(history) else vectors
    novelty = sig.knn_distance(vectors, reference, k=params.neighbours, exclude_self_offset=len(history))
    reviewed = sig.knn_distance(vectors, context.reviewed_vectors, k=params.neighbours)
    failures = (
        context.reviewed_vectors[context.reviewed_failed]
        if len(context.reviewed_failed)
        else (context.reviewed_vectors[:0])
    )
    similarity = sig.max_similarity(vectors, failures)
    return [
        {"novelty": n, "reviewed_novelty": r, "failure_similarity": f}
        for n, r, f in zip(novelty, reviewed, similarity, strict=True)
    ]


def compute_signals(
    items: Sequence[ScoringInput],
    vectors: np.ndarray,
    answer_vectors: Sequence[np.ndarray],
    context: Context,
    params: ScoringParams,
) -> list[dict[str, float | None]]:
    """Every signal for a batch. The batch counts as recent traffic too (minus each item itself).

    ``answer_vectors[i]`` holds item i's bare response (row 0) and its samples (rows 1..) as
    embedded on their own; no rows when the item has no samples.
    """
    neighbours = context.neighbour_signals or brute_force_neighbours(vectors, context, params)
    out = []
    for i, item in enumerate(items):
        s = logprob_signals(item.tokens)
        answers = answer_vectors[i]
        response_vector = answers[0] if len(answers) else vectors[i]
        s.update(sig.consistency(response_vector, answers[1:], threshold=params.consistency_threshold))
        s.update(text_signals(item.prompt, item.response, item.finish_reason))
        s.update(neighbours[i])
        out.append(s)
    return out


def score_batch(
    items: Sequence[ScoringInput],
    vectors: np.ndarray,
    answer_vectors: Sequence[np.ndarray],
    context: Context,
    params: ScoringParams,
) -> list[Scored]:
    """Signals and the cold-start score for a batch, against recent traffic."""
    all_signals = compute_signals(items, vectors, answer_vectors, context, params)
    return coldstart_all(all_signals, [*context.history_signals, *all_signals], params)
