"""Pure figures of a replay: how many failures a review order found against random and against
single signals sorted alone, and how well scores rank what is still unreviewed.

A replay reviews outputs of a labelled pool of ``N`` outputs in some order. ``lift_at(share)`` is the
failure rate of the first ``round(share * N)`` reviews divided by the pool's failure rate: random
review has expected lift 1. A single signal "sorted alone" reviews the pool in descending order of
that signal (missing values last); both directions are reported, since a signal's sign is not known
in advance on new traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.metrics import auroc

SHARES = (0.05, 0.10, 0.20, 0.30)


def reviews_at(share: float, pool: int) -> int:
    """How many reviews ``share`` of a pool of ``pool`` outputs is (at least one)."""
    return max(1, round(share * pool))


def lift_at(failed_in_order: Sequence[bool], *, pool: int, base_rate: float, share: float) -> float | None:
    """Failure rate of the first ``share`` of the pool reviewed, over the pool's; None if not reached."""
    n = reviews_at(share, pool)
    if len(failed_in_order) < n or base_rate <= 0:
        return None
    return float(np.mean(np.asarray(failed_in_order[:n], dtype=float)) / base_rate)


def order_by(values: Sequence[float | None], *, descending: bool = True) -> np.ndarray:
    """Indices sorted by value (descending by default), missing values last, ties by index."""
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=float)
    missing = np.isnan(v)
    key = np.where(missing, np.inf, -v if descending else v)
    return np.lexsort((np.arange(len(v)), key))


def sorted_lift(
    values: Sequence[float | None],
    failed: Sequence[bool] | np.ndarray,
    *,
    share: float,
    descending: bool = True,
) -> float | None:
    """Lift at ``share`` when the pool is reviewed in order of one value alone."""
    y = np.asarray(failed, dtype=bool)
    if not len(y) or not y.any() or all(x is None for x in values):
        return None
    order = order_by(values, descending=descending)
    return lift_at(y[order].tolist(), pool=len(y), base_rate=float(y.mean()), share=share)


@dataclass(frozen=True)
class SignalLift:
    signal: str
    present: float  # share of the pool that has the signal
    auroc: float | None  # as oriented (higher = riskier)
    lift: dict[str, float | None]  # "10%" -> lift, descending (the signal's own orientation)
    lift_reversed: dict[str, float | None]  # ascending


def share_label(share: float) -> str:
    """How a share of the pool is named in reports: 0.1 -> "10%"."""
    return f"{share * 100:g}%"


def signal_lifts(
    signals: Sequence[Mapping[str, float | None]],
    failed: Sequence[bool],
    shares: Sequence[float] = SHARES,
) -> list[SignalLift]:
    """Every signal present anywhere in the pool, sorted alone, both ways."""
    names = sorted({k for s in signals for k, v in s.items() if v is not None})
    y = np.asarray(failed, dtype=bool)
    out = []
    for name in names:
        values = [s.get(name) for s in signals]
        present = np.array([v is not None for v in values])
        area = auroc(y[present], np.array([v for v in values if v is not None], dtype=float))
        out.append(
            SignalLift(
                signal=name,
                present=float(present.mean()),
                auroc=None if np.isnan(area) else area,
                lift={share_label(s): sorted_lift(values, y, share=s) for s in shares},
                lift_reversed={
                    share_label(s): sorted_lift(values, y, share=s, descending=False) for s in shares
                },
            )
        )
    return out


def unreviewed_auroc(
    scores: Mapping[str, float | None], failed: Mapping[str, bool], reviewed: set[str]
) -> float | None:
    """AUROC of the scores of the outputs not reviewed yet (unscored ones are left out)."""
    ids = [i for i, s in scores.items() if i not in reviewed and s is not None and i in failed]
    if not ids:
        return None
    area = auroc([failed[i] for i in ids], [float(scores[i] or 0.0) for i in ids])
    return None if np.isnan(area) else area


def by_stratum(strata: Sequence[str], failed: Sequence[bool]) -> dict[str, dict[str, float]]:
    """Picks and failure yield per stratum."""
    out: dict[str, dict[str, float]] = {}
    for stratum in sorted(set(strata)):
        hits = [f for s, f in zip(strata, failed, strict=True) if s == stratum]
        out[stratum] = {"picks": len(hits), "failures": sum(hits), "yield": sum(hits) / len(hits)}
    return out
