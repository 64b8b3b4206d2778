"""Embedding and scoring a batch of stored outputs with the worker's runtime: what the scoring,
sampling and training jobs share. The scoring itself is ``core.scoring``; this module only gathers its
inputs (rows, vectors, neighbours, recent traffic) and applies each queue's learned model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core import learned, scoring
from core.signals import TokenLP
from service.settings import Settings
from service.storage import repository as repo
from service.storage.tables import Output
from workers.clients import Embedder
from workers.runtime import Runtime

#: Vectors, results and the scorer version of each output of a batch.
Scored = tuple[np.ndarray, list[scoring.Scored], list[str]]


def tokens_of(token_logprobs: list[dict[str, Any]] | None) -> tuple[TokenLP, ...] | None:
    if token_logprobs is None:
        return None
    return tuple(
        TokenLP(
            logprob=float(t["logprob"]),
            top_logprobs=tuple(float(a["logprob"]) for a in t.get("top_logprobs") or ()),
        )
        for t in token_logprobs
    )


def scoring_input(output: Output) -> scoring.ScoringInput:
    """A stored output as the pure scorer sees it."""
    return scoring.ScoringInput(
        output_id=output.id,
        prompt=output.prompt,
        response=output.response,
        tokens=tokens_of(output.token_logprobs),
        finish_reason=output.finish_reason,
        samples=tuple(output.samples or ()),
    )


def embed_batch(
    embedder: Embedder, items: Sequence[scoring.ScoringInput], *, max_chars: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One encoder call for the whole batch: each output's prompt and response, and for outputs with
    samples the bare response and each sample (answers are compared as answers, without the prompt).

    Returns the output vectors and, per output, its answer vectors (row 0 the response, then the
    samples; no rows when it has no samples).
    """
    texts = [scoring.embedding_text(i.prompt, i.response, max_chars=max_chars) for i in items]
    spans = []
    for item in items:
        start = len(texts)
        if item.samples:
            texts += [item.response[:max_chars], *(s[:max_chars] for s in item.samples)]
        spans.append((start, len(texts)))
    vectors = embedder.encode(texts)
    return vectors[: len(items)], [vectors[start:end] for start, end in spans]


def scoring_params(settings: Settings) -> scoring.ScoringParams:
    return scoring.ScoringParams(
        neighbours=settings.novelty_neighbours,
        consistency_threshold=settings.consistency_threshold,
        near_duplicate=settings.near_duplicate_cosine,
    )


def apply_models(
    models: Mapping[str, learned.LearnedModel],
    queues: Sequence[str | None],
    results: Sequence[scoring.Scored],
    vectors: np.ndarray,
) -> list[str | None]:
    """Replace cold-start scores with the calibrated failure probabilities of each output's queue
    model; returns the version that scored each output (None: cold start)."""
    versions: list[str | None] = [None] * len(results)
    for queue, model in models.items():
        idx = [i for i, q in enumerate(queues) if q == queue]
        if not idx:
            continue
        p_fail, reasons = model.score([results[i].signals for i in idx], vectors[idx])
        for i, p, why in zip(idx, p_fail, reasons, strict=True):
            results[i].score = float(p)
            results[i].drivers = why
            versions[i] = model.version
    return versions


def score_items(
    rt: Runtime,
    items: Sequence[scoring.ScoringInput],
    history: list[dict[str, Any]],
    models: dict[str, learned.LearnedModel],
    queues: Sequence[str | None],
) -> Scored:
    """Embed and score a batch: each output by its queue's learned model if one is active, else by
    cold start. Returns the vectors, the results and the version that scored each output."""
    vectors, answer_vectors = embed_batch(rt.embedder, items, max_chars=rt.settings.embedding_max_chars)
    context = neighbour_context(rt, items, vectors, history)
    results = scoring.score_batch(items, vectors, answer_vectors, context, scoring_params(rt.settings))
    rt.save_neighbours()
    versions = apply_models(models, queues, results, vectors)
    return vectors, results, [v or scoring.SCORER_VERSION for v in versions]


def load_context(
    rt: Runtime, session: Session
) -> tuple[list[dict[str, Any]], dict[str, learned.LearnedModel], list[float]]:
    """Recent traffic's signals and scores and each queue's active model, for scoring a batch."""
    window = repo.recent_signals(session, limit=rt.settings.reference_window)
    recent_scores = [score for _, score in window if score is not None]
    return [signals for signals, _ in window], rt.current_models(session), recent_scores


def neighbour_context(
    rt: Runtime, items: Sequence[scoring.ScoringInput], vectors: np.ndarray, history: list[dict[str, Any]]
) -> scoring.Context:
    """Look the batch up in the nearest-neighbour indexes (the batch joins recent traffic first)."""
    index = rt.neighbours()
    index.sync(rt.engine)
    ids = [i.output_id for i in items]
    index.recent.add(ids, vectors)
    k = rt.settings.novelty_neighbours
    found = zip(
        index.recent_distance(vectors, k, exclude_ids=ids),
        index.reviewed_distance(vectors, k),
        index.failure_similarity(vectors),
        strict=True,
    )
    empty = scoring.Context.empty(vectors.shape[1])
    return scoring.Context(
        history_signals=history,
        history_vectors=empty.history_vectors,
        reviewed_vectors=empty.reviewed_vectors,
        reviewed_failed=empty.reviewed_failed,
        neighbour_signals=[
            {"novelty": n, "reviewed_novelty": r, "failure_similarity": f} for n, r, f in found
        ],
    )


def drivers_of(result: scoring.Scored) -> list[dict[str, Any]]:
    """What a reviewer is told: flags first (a refusal too, though it does not raise the score), then
    the signals that drove the score."""
    notes = ["refusal"] if result.signals.get("refusal") == 1.0 else []
    return [*({"flag": f} for f in [*result.flags, *notes]), *result.drivers]
