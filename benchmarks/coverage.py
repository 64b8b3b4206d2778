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


@dataclass
class _Item:
    """One output's state in a simulated queue."""

    status: str = "pool"  # pool | waiting | reviewed | junk
    exposed: bool = False  # has been in a selection window (the audit drew it then, or never)
    audit: bool = False  # drawn by the audit
    routed: bool = False  # chosen by routing (an audit member too)
    passed: bool = False  # an audit member routing's score order reached
    pick_score: float = 0.0  # routing's order
    rank: float = 0.0  # the audit's random order


def one_replay(
    data: Traffic,
    rng: np.random.Generator,
    *,
    batches: int,
    reviews: int,
    params: SelectionParams,
    worked: float,
    rerank: float = 0.0,
) -> tuple[float, estimate.Estimate]:
    """One replay: returns the pool's true failure rate (junk left out) and the queue's estimate.

    With ``rerank`` > 0 every run after the first scores the traffic afresh (the cold-start score
    plus new noise of that many standard deviations, as a new model version re-ranks it), and the
    waiting routed picks go back to the pool first, as ``release_for_new_scorer`` does: routing
    then takes outputs from the rests earlier audits were drawn from."""
    order = rng.permutation(len(data.ids))
    per_run = reviews // batches
    audit_every = round(1 / params.audit_share) if params.audit_share > 0 else 0
    items = {int(i): _Item() for i in order}
    scores = data.scores.copy()
    spread = float(np.std(data.scores)) or 1.0
    arrived: list[int] = []
    done = 0
    for run, chunk in enumerate(np.array_split(order, batches)):
        arrived += chunk.tolist()
        if rerank > 0 and run > 0:
            scores = data.scores + rng.normal(0, rerank * spread, size=len(scores))
            for it in items.values():
                if it.audit and it.routed and not it.passed:
                    it.routed = False  # back to being an audit member only
                elif not it.audit and it.routed and it.status == "waiting":
                    it.routed, it.status = False, "pool"
        candidates = [_candidate(data, i, scores, items[i]) for i in arrived if items[i].status == "pool"]
        drawn = [
            _candidate(data, i, scores, items[i])
            for i in arrived
            if items[i].audit and not items[i].routed and items[i].status != "junk"
        ]
        chosen = selection.select_window(candidates, slots=per_run, params=params, rng=rng, drawn=drawn)
        for c in candidates:
            items[int(c.output_id)].exposed = True
        for ids in chosen.junk.values():
            for j in ids:
                items[int(j)].status = "junk"
        for pick in chosen.picks:
            it = items[int(pick.output_id)]
            if pick.stratum == "audit" and not it.audit:  # a new member
                it.audit, it.status, it.rank = True, "waiting", float(rng.uniform())
            if pick.stratum != "audit" or pick.routed:
                it.routed, it.pick_score = True, float(scores[int(pick.output_id)])
                it.status = "waiting" if it.status == "pool" else it.status
        # Reviewers work the queue as claims hand it out, up to this run's share of the budget.
        waiting = [i for i in arrived if items[i].status == "waiting"]
        routed = sorted((i for i in waiting if items[i].routed), key=lambda i: -items[i].pick_score)
        audited = sorted((i for i in waiting if not items[i].routed), key=lambda i: items[i].rank)
        unpassed = [i for i in arrived if items[i].audit and items[i].routed and not items[i].passed]
        target = done + round(worked * per_run)
        while done < target and (routed or audited):
            audit_turn = audit_every and audited and ((done + 1) % audit_every == 0 or not routed)
            i = (audited if audit_turn else routed).pop(0)
            items[i].status = "reviewed"
            if not audit_turn:
                unpassed = _pass(items, unpassed, items[i])
            done += 1
    population = [
        estimate.Output(
            failed=bool(data.failed[i]) if it.status == "reviewed" else None,
            audit=it.audit,
            routed=it.routed,
            passed=it.passed,
            score=float(scores[i]),
        )
        for i, it in items.items()
        if it.status != "junk"
    ]
    truth = float(np.mean([data.failed[i] for i, it in items.items() if it.status != "junk"]))
    return truth, estimate.every_review(population)


def _candidate(data: Traffic, i: int, scores: np.ndarray, item: _Item) -> Candidate:
    return Candidate(
        str(i), float(scores[i]), prompt=data.prompts[i], response=data.responses[i], fresh=not item.exposed
    )


def _pass(items: dict[int, _Item], unpassed: list[int], served: _Item) -> list[int]:
    """Routing's order reached ``served``: it and the reviewed audit members routing chose at or
    above it are passed (``reviewing._pass``); returns the routed members still unpassed."""
    served.passed = served.audit
    left = []
    for i in unpassed:
        it = items[i]
        if it is served or (it.status == "reviewed" and it.pick_score >= served.pick_score):
            it.passed = True
        else:
            left.append(i)
    return left


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
    rerank: float = 0.0,
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
            truth, est = one_replay(
                data, rng, batches=batches, reviews=reviews, params=params, worked=worked, rerank=rerank
            )
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
        "rerank": rerank,
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
