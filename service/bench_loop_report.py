"""Printing and plotting the review-loop benchmark's results (``service.bench_loop``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _num(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _pct(e: dict[str, Any]) -> str:
    return f"{100 * e['rate']:5.1f}% [{100 * e['low']:5.1f}, {100 * e['high']:5.1f}]"


def table(name: str, result: dict[str, Any]) -> str:
    """One dataset's results: failures caught per strategy and round, then the audit estimate."""
    runs, est, rep = result["strategies"], result["estimate"], result["estimate"]["repeated"]
    lines = [
        f"{name}: n={result['n']}, failed={result['failed']} ({100 * result['failure_rate']:.1f}%), "
        f"{result['budget']} reviews/round x {result['rounds']} rounds, "
        f"{result['clusters']} failure clusters (k-means)",
        "  failures per 100 reviews",
        f"  {'strategy':<9}{''.join(format(f'r{i + 1}', '>7') for i in range(result['rounds']))}"
        f"{'all':>8}{'x rand':>8}{'clusters (effective)':>22}{'labels to match random':>24}",
    ]
    for strategy, run in runs.items():
        labels = run["labels_to_match_random"]
        match = (
            "not reached" if labels is None else f"{labels} ({100 * labels / runs['random']['reviews']:.0f}%)"
        )
        lines.append(
            f"  {strategy:<9}{''.join(_num(r['per_100'], '>7.1f') for r in run['rounds'])}"
            f"{_num(run['per_100'], '.1f'):>8}{_num(run['ratio_to_random'], '.2f'):>8}"
            f"{run['clusters_covered']:>9}/{result['clusters']:<3}"
            f"({_num(run['effective_clusters'], '.1f'):>5}){match:>26}"
        )
    lines.append(f"  audit estimate of the failure rate (ours); true {100 * est['true_rate']:.1f}%")
    lines += [
        f"    round {r['round']}: {_pct(r['estimate'])}  ({r['estimate']['n_audit']} audited)"
        for r in est["rounds"]
    ]
    lines.append(f"    all rounds: {_pct(est['combined'])}; plain audit rate: {_pct(est['audit_only'])}")
    if rep["seeds"]:
        single = [100 * c for c in rep["coverage_per_round"]]
        lines.append(
            f"    over {rep['seeds']} audit redraws the 95% interval covers the truth "
            f"{100 * rep['coverage']:.1f}% of the time (single rounds {min(single):.0f}-{max(single):.0f}%), "
            f"bias {100 * rep['bias']:+.2f} pts, width {100 * rep['mean_width']:.1f} pts; "
            f"plain audit rate: covers {100 * rep['coverage_audit_only']:.1f}%, "
            f"bias {100 * rep['audit_only_bias']:+.2f} pts"
        )
    if est["probability_mismatch_rounds"]:
        lines.append(
            f"    inclusion probabilities != a / frame in rounds {est['probability_mismatch_rounds']}"
        )
    return "\n".join(lines)


def plot(name: str, result: dict[str, Any], path: Path) -> None:
    """Cumulative failures caught, clusters covered and the audit estimate, round by round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for strategy, run in result["strategies"].items():
        reviews = np.cumsum([0] + [r["reviews"] for r in run["rounds"]])
        axes[0].plot(
            reviews, np.cumsum([0] + [r["failures"] for r in run["rounds"]]), marker="o", label=strategy
        )
        axes[1].plot(
            reviews, [0] + [r["clusters_covered"] for r in run["rounds"]], marker="o", label=strategy
        )
    axes[0].set(title="failures caught", xlabel="reviews")
    axes[1].set(title=f"failure clusters covered (of {result['clusters']})", xlabel="reviews")
    est = result["estimate"]
    rounds = est["rounds"] + [{"round": len(est["rounds"]) + 1, "estimate": est["combined"]}]
    x = [r["round"] for r in rounds]
    rate = np.array([r["estimate"]["rate"] for r in rounds])
    err = [rate - [r["estimate"]["low"] for r in rounds], [r["estimate"]["high"] for r in rounds] - rate]
    axes[2].errorbar(x, rate, yerr=err, fmt="o", capsize=3, label="audit estimate (95%)")
    axes[2].axhline(est["true_rate"], color="k", linestyle="--", label="true rate")
    axes[2].set(title="failure rate: estimate per round, then combined", xlabel="round (last: combined)")
    for ax in axes:
        ax.legend()
    fig.suptitle(f"{name}: review loop")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
