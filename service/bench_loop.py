"""`review-router bench loop`: replay a labelled dataset as traffic and play the reviewer with its
labels, to see how each strategy spends the same review budget over rounds.

Every output starts with its cold-start score. Each round every strategy picks ``share * N`` of the
outputs not reviewed yet, the labels of its picks are revealed, and (``topk`` and ``ours``) a learned
scorer is retrained on that strategy's reviews, weighted by 1 / inclusion probability, to rescore
the pool. ``random`` picks uniformly, ``topk`` the highest scores, ``ours`` is ``select_window``.

Failure clusters are defined once per dataset, independently of the strategies: k-means
(k = round(sqrt(failures / 2)), a common rule of thumb) on the embeddings of the failed outputs.

The audit estimate (``ours``) is of the failure rate of the whole replayed dataset: in each round
everything reviewed before counts as known, the round's deterministic picks too, and its audit
slice stands for the rest; rounds combine with ``workers.estimate.combine``. Its coverage is measured
by redrawing only the audit slices (same deterministic picks), once per seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from service.bench_loop_report import plot, table
from service.bench_scoring import (
    GENERAL,
    Labelled,
    _median_filled,
    load_general,
    load_generated,
    score_dataset,
)
from service.settings import Settings
from workers import jobs, learned, selection
from workers.clients import Embedder, get_embedder
from workers.estimate import CERTAIN, Estimate, ReviewedPick, audit_only, combine, failure_rate
from workers.metrics import auroc
from workers.scoring import ScoringInput

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERAL_DATA = REPO_ROOT / "data" / "halueval" / "general_data.jsonl.gz"
GENERATED = "generated"
STRATEGIES = ("random", "topk", "ours")
ALL_ROWS = 10**9


@dataclass
class Dataset:
    """One labelled dataset as the loop sees it: inputs, labels, signals, vectors, cold-start scores."""

    name: str
    items: list[ScoringInput]
    failed: np.ndarray
    signals: list[dict[str, float | None]]
    vectors: np.ndarray
    cold: np.ndarray


@dataclass
class Round:
    """What one strategy did in one round (indices into the dataset, picks in the order given)."""

    pool: np.ndarray
    picks: np.ndarray
    probabilities: np.ndarray
    strata: list[str]
    junk: np.ndarray
    pool_auroc: float | None


# --- data ------------------------------------------------------------------------------------


def default_benchmark() -> list[Path]:
    """The generated QA benchmark files: the finished .gz first, then any part files."""
    folder = REPO_ROOT / "benchmarks"
    return sorted(folder.glob("qa_smollm2*.jsonl.gz")) + sorted(folder.glob("qa_smollm2*.jsonl"))


def load(name: str, *, general: Path, benchmark: Sequence[Path]) -> list[Labelled]:
    """HaluEval general (every row) or the generated QA benchmark (all its datasets as one)."""
    if name == GENERAL:
        return load_general(general, ALL_ROWS)
    if name == GENERATED:
        by_dataset = load_generated([p for p in benchmark if p.exists()])
        return [x for _, rows in sorted(by_dataset.items()) for x in rows]
    raise ValueError(f"unknown dataset {name!r}: use {GENERAL!r} or {GENERATED!r}")


def prepare(
    name: str, labelled: Sequence[Labelled], settings: Settings, embedder: Embedder | None, out: Path
) -> Dataset:
    """Signals, vectors and cold-start scores, from ``out/cache_<name>_<n>.npz`` when it is there."""
    items = [x.item for x in labelled]
    ids = np.array([i.output_id for i in items])
    cache = out / f"cache_{name}_{len(items)}.npz"
    if cache.exists():
        stored = np.load(cache)
        if not np.array_equal(stored["ids"], ids):
            raise ValueError(f"{cache} holds other outputs; delete it")
        signals, vectors, cold = json.loads(str(stored["signals"])), stored["vectors"], stored["cold"]
    else:
        encoder = embedder or get_embedder(settings.embedding_model_path, settings.embedding_batch_size)
        signals, vectors, raw = score_dataset(
            items, encoder, jobs._params(settings), max_chars=settings.embedding_max_chars
        )
        filled = _median_filled(raw)
        cold = filled if filled is not None else np.full(len(items), 0.5)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, ids=ids, signals=np.array(json.dumps(signals)), vectors=vectors, cold=cold)
    failed = np.array([x.failed for x in labelled], dtype=bool)
    return Dataset(name, items, failed, signals, np.asarray(vectors, dtype=np.float32), cold)


def failure_clusters(vectors: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, int]:
    """Cluster label of each failed output (-1 for the others) and the number of clusters."""
    labels = np.full(len(failed), -1)
    n_failed = int(failed.sum())
    if n_failed == 0:
        return labels, 0
    k = min(n_failed, max(1, round(math.sqrt(n_failed / 2))))
    labels[failed] = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors[failed])
    return labels, k


# --- the loop --------------------------------------------------------------------------------


def pick(
    strategy: str, data: Dataset, pool: np.ndarray, scores: np.ndarray, budget: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """One strategy's picks from the pool: indices, inclusion probabilities, strata and junk."""
    k = min(budget, len(pool))
    if strategy == "random":
        return rng.choice(pool, size=k, replace=False), np.full(k, k / len(pool)), ["random"] * k, pool[:0]
    if strategy == "topk":
        top = pool[np.argsort(-scores[pool], kind="stable")[:k]]
        return top, np.ones(k), ["topk"] * k, pool[:0]
    candidates = [
        selection.Candidate(
            output_id=str(i),
            score=float(scores[i]),
            vector=data.vectors[i],
            prompt=data.items[i].prompt,
            response=data.items[i].response,
            finish_reason=data.items[i].finish_reason,
        )
        for i in pool
    ]
    chosen = selection.select_window(candidates, slots=budget, params=selection.SelectionParams(), rng=rng)
    junk = sorted({int(i) for ids in chosen.junk.values() for i in ids})
    return (
        np.array([int(p.output_id) for p in chosen.picks], dtype=int),
        np.array([p.inclusion_probability for p in chosen.picks], dtype=float),
        [p.stratum for p in chosen.picks],
        np.array(junk, dtype=int),
    )


def rescored(data: Dataset, history: Sequence[Round], scores: np.ndarray) -> np.ndarray:
    """Scores from a model retrained on the reviews so far; the old scores when labels are too few."""
    idx = np.concatenate([r.picks for r in history])
    weights = np.asarray(learned.review_weights(np.concatenate([r.probabilities for r in history]).tolist()))
    try:
        model = learned.train(
            [data.signals[i] for i in idx], data.vectors[idx], data.failed[idx].tolist(), weights.tolist()
        )
    except learned.NotEnoughLabels:
        return scores
    return model.predict(data.signals, data.vectors)


def play(strategy: str, data: Dataset, *, budget: int, rounds: int, seed: int) -> list[Round]:
    """Run one strategy through every round on the dataset, reviewing with its labels."""
    rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
    # learned's PCA (randomized SVD past 500 rows) draws from numpy's global generator: pin it for reruns
    np.random.seed(seed)
    scores = data.cold.copy()
    reviewed = np.zeros(len(data.failed), dtype=bool)
    history: list[Round] = []
    for r in range(rounds):
        pool = np.flatnonzero(~reviewed)
        if len(pool) == 0:
            break
        y = data.failed[pool]
        quality = auroc(y, scores[pool]) if 0 < y.sum() < len(y) else math.nan
        picks, probabilities, strata, junk = pick(strategy, data, pool, scores, budget, rng)
        history.append(Round(pool, picks, probabilities, strata, junk, _finite(quality)))
        reviewed[picks] = True
        if strategy != "random" and r < rounds - 1:
            scores = rescored(data, history, scores)
    return history


# --- measures --------------------------------------------------------------------------------


def catching(data: Dataset, runs: dict[str, list[Round]], clusters: np.ndarray) -> dict[str, Any]:
    """Failures caught per 100 reviews, clusters touched (and how evenly: the exp of the entropy of the
    caught failures' clusters) and the labels needed to catch as many failures as random did."""
    per_100 = {s: _per_100(data.failed[np.concatenate([r.picks for r in h])]) for s, h in runs.items()}
    random_caught = int(data.failed[np.concatenate([r.picks for r in runs["random"]])].sum())
    out: dict[str, Any] = {}
    for strategy, history in runs.items():
        rows, touched, order = [], set(), []
        for n, r in enumerate(history, start=1):
            caught = data.failed[r.picks]
            touched |= {int(c) for c in clusters[r.picks] if c >= 0}
            order.append(caught)
            random_round = data.failed[runs["random"][n - 1].picks] if n <= len(runs["random"]) else caught
            rows.append(
                {
                    "round": n,
                    "reviews": len(r.picks),
                    "failures": int(caught.sum()),
                    "per_100": _per_100(caught),
                    "ratio_to_random": _ratio(_per_100(caught), _per_100(random_round)),
                    "clusters_covered": len(touched),
                    "pool_auroc": r.pool_auroc,
                    "strata": {s: r.strata.count(s) for s in sorted(set(r.strata))},
                    "junk": len(r.junk),
                }
            )
        sequence = np.concatenate(order)
        reached = np.flatnonzero(np.cumsum(sequence) >= random_caught)
        out[strategy] = {
            "rounds": rows,
            "reviews": len(sequence),
            "failures": int(sequence.sum()),
            "per_100": per_100[strategy],
            "ratio_to_random": _ratio(per_100[strategy], per_100["random"]),
            "clusters_covered": len(touched),
            "effective_clusters": _effective(clusters[np.concatenate([r.picks for r in history])]),
            "labels_to_match_random": int(reached[0]) + 1 if len(reached) else None,
        }
    return out


def _effective(labels: np.ndarray) -> float | None:
    counts = np.bincount(labels[labels >= 0])
    p = counts[counts > 0] / max(1, counts.sum())
    return round(float(np.exp(-(p * np.log(p)).sum())), 2) if len(p) else None


def audit_frame(r: Round) -> np.ndarray:
    """What the round's audit is drawn from: the pool minus junk and the round's deterministic picks."""
    return np.setdiff1d(r.pool, np.concatenate([r.junk, r.picks[r.probabilities >= CERTAIN]]))


def round_reviews(data: Dataset, history: Sequence[Round], r: int, audit: np.ndarray) -> list[ReviewedPick]:
    """Round r's reviews, for an estimate about the whole dataset: everything reviewed before is known."""
    now = history[r]
    known = np.concatenate([h.picks for h in history[:r]] + [now.picks[now.probabilities >= CERTAIN]])
    p = len(audit) / max(1, len(audit_frame(now)))
    return [ReviewedPick(bool(y), 1.0, "known") for y in data.failed[known]] + [
        ReviewedPick(bool(y), p, "audit") for y in data.failed[audit]
    ]


def estimating(data: Dataset, history: Sequence[Round], seeds: int) -> dict[str, Any]:
    """The audit estimate per round and combined, against the truth, and its coverage over ``seeds``
    redraws of the audit slices (the deterministic picks stay as they were)."""
    n = len(data.failed)
    truths = [float(np.delete(data.failed, r.junk).mean()) for r in history]
    windows = [n - len(r.junk) for r in history]
    truth = float(np.dot(truths, windows) / sum(windows))
    frames = [audit_frame(r) for r in history]

    def design(audits: Sequence[np.ndarray]) -> tuple[list[Estimate], Estimate, Estimate]:
        reviews = [round_reviews(data, history, r, a) for r, a in enumerate(audits)]
        rounds = [failure_rate(rv, n, len(h.junk)) for rv, h in zip(reviews, history, strict=True)]
        return rounds, combine(rounds), audit_only([p for rv in reviews for p in rv if p.stratum == "audit"])

    audits = [r.picks[r.probabilities < CERTAIN] for r in history]
    rounds, combined, plain = design(audits)
    # select_window's own inclusion probabilities must be a / |frame|, or the estimate is off
    mismatch = [
        i + 1
        for i, (r, f) in enumerate(zip(history, frames, strict=True))
        if np.any(
            np.abs(r.probabilities[r.probabilities < CERTAIN] - (r.probabilities < CERTAIN).sum() / len(f))
            > 1e-9
        )
    ]
    rng = np.random.default_rng(12345)
    redrawn = [
        design([rng.choice(f, size=len(a), replace=False) for f, a in zip(frames, audits, strict=True)])
        for _ in range(seeds)
    ]
    return {
        "true_rate": truth,
        "rounds": [
            {"round": i + 1, "true_rate": t, "estimate": _estimate(e)}
            for i, (t, e) in enumerate(zip(truths, rounds, strict=True))
        ],
        "combined": _estimate(combined),
        "audit_only": _estimate(plain),
        "probability_mismatch_rounds": mismatch,
        "repeated": {
            "seeds": seeds,
            "coverage": _mean([x[1].covers(truth) for x in redrawn]),
            "coverage_per_round": [_mean([x[0][r].covers(t) for x in redrawn]) for r, t in enumerate(truths)],
            "coverage_audit_only": _mean([x[2].covers(truth) for x in redrawn]),
            "bias": _mean([x[1].rate - truth for x in redrawn]),
            "mean_width": _mean([x[1].high - x[1].low for x in redrawn]),
            "audit_only_bias": _mean([x[2].rate - truth for x in redrawn]),
        },
    }


# --- report ----------------------------------------------------------------------------------


def _per_100(caught: np.ndarray) -> float | None:
    return round(100 * float(caught.mean()), 2) if len(caught) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def _mean(values: Sequence[float | bool]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def _estimate(e: Estimate) -> dict[str, Any]:
    keys = ("rate", "low", "high", "method", "n_audit", "n_reviews")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(e).items() if k in keys}


def run_loop(
    settings: Settings,
    *,
    datasets: list[str],
    rounds_budget_share: float = 0.05,
    rounds: int = 8,
    seeds: int = 200,
    out: Path,
    embedder: Embedder | None = None,
    general: Path = GENERAL_DATA,
    benchmark: Sequence[Path] | None = None,
) -> int:
    """Replay each dataset through ``rounds`` review rounds per strategy; print, save JSON and plots."""
    import matplotlib

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    sources = default_benchmark() if benchmark is None else list(benchmark)
    results: dict[str, Any] = {}
    for name in datasets:
        data = prepare(name, load(name, general=general, benchmark=sources), settings, embedder, out)
        n = len(data.failed)
        if n == 0 or data.failed.all() or not data.failed.any():
            print(f"{name}: skipped ({n} outputs, needs both failures and non-failures)")
            continue
        budget = max(1, round(rounds_budget_share * n))
        clusters, k = failure_clusters(data.vectors, data.failed)
        runs = {s: play(s, data, budget=budget, rounds=rounds, seed=0) for s in STRATEGIES}
        results[name] = {
            "n": n,
            "failed": int(data.failed.sum()),
            "failure_rate": float(data.failed.mean()),
            "budget": budget,
            "rounds": len(runs["random"]),
            "clusters": k,
            "strategies": catching(data, runs, clusters),
            "estimate": estimating(data, runs["ours"], seeds),
        }
        print()
        print(table(name, results[name]), flush=True)
        plot(name, results[name], out / f"loop_{name}.png")
    seconds = time.perf_counter() - started
    report = {
        "share": rounds_budget_share,
        "rounds": rounds,
        "seeds": seeds,
        "failure_clusters": "k-means on the failed outputs' embeddings, k = round(sqrt(failures / 2))",
        "selection_params": asdict(selection.SelectionParams()),
        "matplotlib": matplotlib.__version__,
        "seconds": round(seconds, 1),
        "datasets": results,
    }
    (out / "loop.json").write_text(json.dumps(report, indent=2))
    print(f"\n{seconds:.0f} s; written to {out / 'loop.json'} and {out}/loop_*.png")
    return 0
