"""Pure evaluation metrics: how well a score ranks failures above non-failures, with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def auroc(
    failed: Sequence[bool] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Area under the ROC curve: the chance that a random failure outscores a random non-failure
    (ties count half). Mann-Whitney U computed from mid-ranks; with ``weights``, each failure/pass
    pair counts by the product of their weights (reviews weighted back to the traffic they stand for)."""
    y = np.asarray(failed, dtype=bool)
    s = np.asarray(score, dtype=float)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    pos, neg = float(w[y].sum()), float(w[~y].sum())
    if not y.any() or y.all() or pos <= 0 or neg <= 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    # Per run of tied scores: the passes' weight strictly below it, and half of the tied passes'.
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    run = np.repeat(np.arange(len(starts)), np.diff(np.concatenate([starts, [len(s)]])))
    neg_w = np.where(y, 0.0, w)
    per_run = np.bincount(run, weights=neg_w)
    below = np.concatenate([[0.0], np.cumsum(per_run)[:-1]])
    credit = below[run] + per_run[run] / 2
    return float((w[y] * credit[y]).sum() / (pos * neg))


def auprc(failed: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Average precision of finding failures when reviewing in descending score order."""
    y = np.asarray(failed, dtype=bool)
    s = np.asarray(score, dtype=float)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


def prr(failed: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Prediction-rejection ratio: how much of the oracle's gain over random rejection the score gets.

    Rejecting outputs in descending score order, the error left (failures not yet rejected, over all
    outputs) traces a curve; PRR = (area_random - area_score) / (area_random - area_oracle). 1 is
    perfect, 0 is random, negative is worse than random.
    """
    y = np.asarray(failed, dtype=float)
    s = np.asarray(score, dtype=float)
    n, errors = len(y), y.sum()
    if errors == 0 or errors == n:
        return float("nan")
    k = np.arange(n + 1)
    left = errors - np.concatenate([[0.0], np.cumsum(y[np.argsort(-s, kind="mergesort")])])
    random = errors * (1 - k / n)
    oracle = np.maximum(errors - k, 0)
    return float((random.mean() - left.mean()) / (random.mean() - oracle.mean()))


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    failed: Sequence[bool] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    *,
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The metric and its percentile bootstrap interval (resampling outputs with replacement)."""
    y = np.asarray(failed, dtype=bool)
    s = np.asarray(score, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        v = metric(y[idx], s[idx])
        if not np.isnan(v):
            values.append(v)
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return metric(y, s), float(lo), float(hi)


def brier(failed: Sequence[bool] | np.ndarray, p_fail: Sequence[float] | np.ndarray) -> float:
    """Mean squared error of the failure probabilities (0 is perfect; always 0.25 scores 0.25)."""
    y, p = np.asarray(failed, dtype=float), np.asarray(p_fail, dtype=float)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def reliability(
    failed: Sequence[bool] | np.ndarray, p_fail: Sequence[float] | np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """The reliability diagram's points: per equal-width bin of p_fail that holds outputs, their mean
    p_fail, their failure rate and how many there are."""
    y, p = np.asarray(failed, dtype=float), np.clip(np.asarray(p_fail, dtype=float), 0.0, 1.0)
    index = np.minimum((p * bins).astype(int), bins - 1)
    return [
        {
            "p_fail": float(p[index == b].mean()),
            "failure_rate": float(y[index == b].mean()),
            "n": int((index == b).sum()),
        }
        for b in range(bins)
        if (index == b).any()
    ]


def ece(failed: Sequence[bool] | np.ndarray, p_fail: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the outputs-weighted mean gap between p_fail and the failure rate
    over ``bins`` equal-width bins."""
    points = reliability(failed, p_fail, bins)
    total = sum(pt["n"] for pt in points)
    if not total:
        return float("nan")
    return float(sum(pt["n"] * abs(pt["p_fail"] - pt["failure_rate"]) for pt in points) / total)
