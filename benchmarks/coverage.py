"""`review-router bench coverage`: does the queue's 95% interval cover the true failure rate 95% of
the time? Many simulated replays of HaluEval general through the product's pure selection and
estimator code.

A simulation, and it says so: no API, no worker, no database. What is real is the code that decides
the figures: cold-start scoring of the text signals (``core.scoring.coldstart`` over
``core.text_features``; the embedding signals are left out, so no encoder runs), the selection of each
run (``core.selection.select_window``: junk, routed picks by score, the uniform audit of the rest
with its inclusion probability), the review order (routed picks by score, an audit pick every
``1/audit_share``-th claim in the audit's random order) and the estimate (``core.estimate.every_review``
with the product's defaults). Each replay shuffles the arrival order, lets the traffic arrive in
batches, runs a selection after each batch on everything scored and not yet picked, and has
reviewers work a share of the picks before the next batch, as a queue with a daily budget does. The
interval at the end is checked against the pool's true failure rate.

Figures: coverage (share of replays whose interval holds the truth), its Wilson interval, the mean
interval width, and the mean error of the point estimate.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import estimate, junk, scoring, selection
from core.candidates import Candidate, SelectionParams
from core.text_features import text_features
from service.cli.replay import commit
from service.progress import Progress
from service.replay.data import Columns, load


@dataclass(frozen=True)
class Traffic:
    ids: list[str]
    scores: np.ndarray
    failed: np.ndarray
    prompts: list[str]
    responses: list[str]


def traffic(path: Path, columns: Columns) -> Traffic:
    """The labelled rows with their cold-start scores from the text signals alone."""
    items = load(path, columns, app="coverage").items
    prompts = [str(i.payload.get("prompt", "")) for i in items]
    responses = [str(i.payload.get("response", "")) for i in items]
    signals = [{**text_features(p, r)} for p, r in zip(prompts, responses, strict=True)]
    reference = scoring.reference_distributions(signals)
    scores = np.array([scoring.coldstart(s, reference).score or 0.0 for s in signals])
    return Traffic(
        ids=[i.external_id for i in items],
        scores=scores,
        failed=np.array([i.failed for i in items]),
        prompts=prompts,
        responses=responses,
    )


def _cache_text_checks() -> None:
    """Junk detection runs on every window of every replay over the same texts: memoise its pure
    per-text helpers (the same results, several times faster)."""
    junk._normalised = functools.lru_cache(maxsize=None)(junk._normalised)  # type: ignore[method-assign]
    junk._is_non_text = functools.lru_cache(maxsize=None)(junk._is_non_text)  # type: ignore[method-assign]


def one_replay(
    data: Traffic,
    rng: np.random.Generator,
    *,
    batches: int,
    reviews: int,
    params: SelectionParams,
    worked: float,
) -> tuple[float, estimate.Estimate]:
    """One replay: returns the pool's true failure rate (junk left out) and the queue's estimate."""
    order = rng.permutation(len(data.ids))
    per_run = reviews // batches
    audit_every = round(1 / params.audit_share) if params.audit_share > 0 else 0
    status: dict[int, str] = {}  # index -> "waiting" | "reviewed" | "junk"; absent: scored, not picked
    stratum: dict[int, str] = {}
    waiting: list[tuple[int, float | None]] = []  # (index, audit rank or None)
    arrived: list[int] = []
    for chunk in np.array_split(order, batches):
        arrived += chunk.tolist()
        window = [i for i in arrived if i not in status]
        candidates = [
            Candidate(str(i), float(data.scores[i]), prompt=data.prompts[i], response=data.responses[i])
            for i in window
        ]
        chosen = selection.select_window(candidates, slots=per_run, params=params, rng=rng)
        for ids in chosen.junk.values():
            for j in ids:
                status[int(j)] = "junk"
        ranks = selection.review_ranks(chosen.picks, rng)
        for pick, rank in zip(chosen.picks, ranks, strict=True):
            i = int(pick.output_id)
            status[i], stratum[i] = "waiting", pick.stratum
            waiting.append((i, rank))
        # Reviewers work the queue as claims hand it out, up to this run's share of the budget.
        routed = sorted((w for w in waiting if w[1] is None), key=lambda w: -data.scores[w[0]])
        audited = sorted((w for w in waiting if w[1] is not None), key=lambda w: w[1] or 0.0)
        done = 0
        target = round(worked * per_run)
        while done < target and (routed or audited):
            take_audit = audit_every and audited and ((done + 1) % audit_every == 0 or not routed)
            i, _ = (audited if take_audit else routed).pop(0)
            status[i] = "reviewed"
            done += 1
        waiting = [*routed, *audited]
    population = [
        estimate.Output(
            failed=bool(data.failed[i]) if status.get(i) == "reviewed" else None,
            audit=stratum.get(i) == "audit",
            routed=i in stratum and stratum[i] != "audit",
        )
        for i in order.tolist()
        if status.get(i) != "junk"
    ]
    truth = float(np.mean([data.failed[i] for i in order.tolist() if status.get(i) != "junk"]))
    return truth, estimate.every_review(population)


def run_coverage(
    *,
    path: Path,
    columns: Columns,
    replays: int,
    batches: int,
    review_share: float,
    worked: float,
    out: Path,
    seed: int = 0,
) -> dict[str, Any]:
    _cache_text_checks()
    data = traffic(path, columns)
    params = SelectionParams()
    reviews = round(review_share * len(data.ids))
    rng = np.random.default_rng(seed)
    covered, widths, errors = 0, [], []
    started = time.perf_counter()
    with Progress(total=replays, what="replays") as progress:
        for _ in range(replays):
            truth, est = one_replay(data, rng, batches=batches, reviews=reviews, params=params, worked=worked)
            covered += est.covers(truth)
            widths.append(est.high - est.low)
            errors.append(est.rate - truth)
            progress.update(1)
    low, high = estimate.wilson(covered / replays, replays)
    result = {
        "name": "coverage",
        "commit": commit(),
        "dataset": path.name,
        "outputs": len(data.ids),
        "failure_rate": round(float(data.failed.mean()), 4),
        "replays": replays,
        "batches": batches,
        "reviews": reviews,
        "worked_share_of_picks": worked,
        "audit_share": params.audit_share,
        "coverage": round(covered / replays, 4),
        "coverage_interval": [round(low, 4), round(high, 4)],
        "mean_width": round(float(np.mean(widths)), 4),
        "mean_error": round(float(np.mean(errors)), 4),
        "rmse": round(math.sqrt(float(np.mean(np.square(errors)))), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"coverage of the 95% interval over {result['replays']} simulated replays of {result['dataset']} "
        f"({result['outputs']} outputs, {result['failure_rate']:.1%} failures, {result['reviews']} reviews "
        f"in {result['batches']} runs):",
        f"  covered      {result['coverage']:.1%} [{result['coverage_interval'][0]:.1%}, "
        f"{result['coverage_interval'][1]:.1%}]  (target 93-97%)",
        f"  mean width   {result['mean_width']:.3f}",
        f"  mean error   {result['mean_error']:+.4f}  (rmse {result['rmse']:.4f})",
    ]
    return "\n".join(lines)
