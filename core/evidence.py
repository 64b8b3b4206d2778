"""Stop on evidence: do more reviews still pay? From the queue's latest routed reviews against its
random audit, the width of its failure-rate interval, and whether its traffic drifts.

- **resume** (or keep) while the traffic drifts: what was learned may not hold.
- **keep** while the latest routed reviews find clearly more failures than random review would.
- **stop** once routing finds no more than random *and* the failure rate is known to within
  ``STOP_WIDTH``: further labels buy neither failures nor precision.
- **lower the budget** when routing finds no more than random but the rate is still uncertain: a
  smaller budget spent on the audit keeps narrowing the estimate.
- **not enough evidence** until the latest window and the audit each have their minimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.estimate import wilson

RECENT = 50
MIN_AUDIT = 10
STOP_WIDTH = 0.05


@dataclass(frozen=True)
class Recommendation:
    action: str  # keep, lower the budget, stop, resume, not enough evidence
    why: str
    recent_yield: float | None = None
    audit_rate: float | None = None


def recommend(
    recent: tuple[int, int], audit: tuple[int, int], *, interval_width: float | None, drifted: bool
) -> Recommendation:
    """``recent``: (reviews, failures) of the latest routed reviews; ``audit``: of every audit review."""
    (n_r, f_r), (n_a, f_a) = recent, audit
    if drifted:
        return Recommendation("resume", "the traffic drifts: keep reviewing, the audit share is raised")
    if n_r < RECENT or n_a < MIN_AUDIT:
        return Recommendation(
            "not enough evidence",
            f"needs {RECENT} routed and {MIN_AUDIT} audit reviews, has {n_r} and {n_a}",
        )
    recent_low, _ = wilson(f_r / n_r, n_r)
    _, audit_high = wilson(f_a / n_a, n_a)
    yield_r, rate_a = f_r / n_r, f_a / n_a
    numbers = f"the latest {n_r} routed reviews found {yield_r:.0%} failures, the audit {rate_a:.0%} of {n_a}"
    if recent_low > audit_high:
        return Recommendation("keep", f"{numbers}: routing still finds more than random", yield_r, rate_a)
    if interval_width is not None and not math.isnan(interval_width) and interval_width <= STOP_WIDTH:
        return Recommendation(
            "stop",
            f"{numbers}, and the failure rate is known to within {interval_width:.0%}: more labels buy "
            "neither failures nor precision",
            yield_r,
            rate_a,
        )
    return Recommendation(
        "lower the budget",
        f"{numbers}: routing is no longer clearly better than random; a smaller budget still narrows "
        "the estimate",
        yield_r,
        rate_a,
    )


#: Versions of the learned scorer the learning curve's slope is taken over (the latest ones).
CURVE_VERSIONS = 5


def gain_per_100_labels(points: list[tuple[int, float]]) -> float | None:
    """What the last labels bought the scorer: the least-squares slope of cross-validated AUROC
    against labels over the latest ``CURVE_VERSIONS`` versions, per 100 labels (None with fewer than
    three versions or no spread in labels). Near zero or below, more labels stopped paying for the
    ranking; they may still pay for the failure rate's interval."""
    latest = sorted(points)[-CURVE_VERSIONS:]
    if len(latest) < 3:
        return None
    x = [float(n) for n, _ in latest]
    y = [a for _, a in latest]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((v - mx) ** 2 for v in x)
    if sxx == 0:
        return None
    return 100.0 * sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx


@dataclass(frozen=True)
class Marginal:
    """What the latest reviews bought: failures, and failures unlike any found before them."""

    reviews: int
    failures: int
    new_modes: int  # failures whose nearest earlier failure is less than ``floor`` alike
    floor: float


def marginal_value(
    history: Sequence[tuple[bool, np.ndarray | None]], *, last: int = RECENT, floor: float
) -> Marginal:
    """Over a queue's reviews in the order they were given (failed?, unit embedding), the latest
    ``last`` of them: how many failed, and how many of those failures were *new*, less than
    ``floor`` alike (cosine) to every failure reviewed before them. New failures per review falling
    toward zero while failures keep coming means reviewers see more of what they already know."""
    latest = history[-last:] if last > 0 else []
    start = len(history) - len(latest)
    seen = [v for failed, v in history[:start] if failed and v is not None]
    known = np.vstack(seen) if seen else np.zeros((0, 0), dtype=np.float32)
    failures = new = 0
    for failed, v in latest:
        if not failed:
            continue
        failures += 1
        if v is None:
            continue
        if not len(known) or float(np.max(known @ v)) < floor:
            new += 1
        known = np.vstack([known, v[None, :]]) if len(known) else v[None, :]
    return Marginal(reviews=len(latest), failures=failures, new_modes=new, floor=floor)
