"""Self-consistency drawn by the worker: which outputs are worth k extra LLM calls, and the job that
draws the samples through any OpenAI-compatible endpoint and rescores the output.

Sampling costs k requests per output, so only outputs whose cheaper signals put them near the
routing boundary are sampled (a band of the recent score distribution); each output's record says
what was decided (``sampling``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from service.settings import Settings
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output
from workers.llm import LLMRejected
from workers.pipeline import drivers_of, load_context, score_items, scoring_input
from workers.runtime import runtime

log = logging.getLogger(__name__)
PENDING = "pending"


def decide(
    *, score: float | None, recent_scores: Sequence[float], caller_samples: int, settings: Settings
) -> str:
    """What to do about samples for one output, as recorded on it."""
    if caller_samples:
        return f"caller: {caller_samples} samples"
    if not settings.llm_base_url:
        return "off: no sampling endpoint configured"
    if score is None:
        return "skipped: no score"
    share_below = float(np.mean(np.asarray(recent_scores) < score)) if len(recent_scores) else 0.5
    if settings.sample_band_low <= share_below < settings.sample_band_high:
        return PENDING
    return f"skipped: score above {share_below:.0%} of recent traffic, outside the sampling band"


def _messages(output: Output) -> list[dict[str, str]]:
    if output.messages:
        return [
            {"role": m["role"], "content": m.get("content") or ""}
            for m in output.messages
            if isinstance(m.get("content", ""), str)
        ]
    return [{"role": "user", "content": output.prompt}]


def sample_outputs(output_ids: list[str]) -> int:
    """Draw k samples for each pending output, then rescore it with them. Idempotent: outputs that
    are no longer pending are left alone. An unreachable endpoint raises, so RQ retries the job."""
    rt = runtime()
    settings = rt.settings
    with transaction(rt.engine) as session:
        outputs = [o for o in (session.get(Output, i) for i in output_ids) if o and o.sampling == PENDING]
        pending = [(o.id, _messages(o), o) for o in outputs]
    if not pending:
        return 0
    sampler = rt.sampler
    drawn: dict[str, list[str]] = {}
    for output_id, messages, _ in pending:
        try:
            drawn[output_id] = sampler.samples(messages, settings.llm_samples, settings.llm_temperature)
        except LLMRejected as exc:
            with transaction(rt.engine) as session:
                repo.set_sampling(session, output_ids=[output_id], sampling=f"failed: {exc}"[:200])
    if not drawn:
        return 0
    items = [
        dataclasses.replace(scoring_input(output), samples=tuple(drawn[output.id]))
        for _, _, output in pending
        if output.id in drawn
    ]
    queues = {output.id: output.queue for _, _, output in pending}
    with transaction(rt.engine) as session:
        history, models, _ = load_context(rt, session)
    _, results, versions = score_items(rt, items, history, models, [queues[i.output_id] for i in items])
    note = f"drawn: {settings.llm_samples} samples at temperature {settings.llm_temperature:g}"
    with transaction(rt.engine) as session:
        for item, result, version in zip(items, results, versions, strict=True):
            repo.store_samples(
                session,
                output_id=item.output_id,
                samples=list(item.samples),
                signals=result.signals,
                score=result.score,
                scorer_version=version,
                drivers=drivers_of(result),
                sampling=note,
            )
    log.info("sampled and rescored %d outputs", len(items))
    return len(items)
