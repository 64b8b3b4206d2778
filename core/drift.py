"""Has the traffic changed? The recent outputs' embeddings against a reference window's.

Both windows are projected on the pooled data's leading principal components and compared component
by component with Welch's t-test; the smallest p-value, times the number of components (Bonferroni),
says whether the recent traffic is about something else. Embeddings are what the outputs *are*
about, so the test needs no history at the time of scoring (novelty and score percentiles depend on
what was seen before, which changes as an instance warms up). The test runs at every selection, so
its threshold is strict: a false alarm only raises the audit share for a while.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

COMPONENTS = 10
ALPHA = 1e-4
MIN_EACH = 30


@dataclass(frozen=True)
class Drift:
    """One comparison: the window sizes, the largest standardised shift of a component, the
    Bonferroni-corrected p-value, and whether it is below ``alpha``."""

    recent: int
    reference: int
    shift: float
    p_value: float
    drifted: bool


def embedding_shift(
    recent: np.ndarray, reference: np.ndarray, *, components: int = COMPONENTS, alpha: float = ALPHA
) -> Drift | None:
    """Compare two windows of embeddings (rows); None when either has fewer than ``MIN_EACH``."""
    if len(recent) < MIN_EACH or len(reference) < MIN_EACH:
        return None
    pooled = np.vstack([recent, reference]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    k = min(components, centred.shape[1], len(pooled) - 1)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:k].T
    a, b = projected[: len(recent)], projected[len(recent) :]
    _, p = stats.ttest_ind(a, b, axis=0, equal_var=False)
    p_value = float(min(1.0, np.nanmin(p) * k))
    spread = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2)
    shift = float(np.nanmax(np.abs(a.mean(axis=0) - b.mean(axis=0)) / np.where(spread > 0, spread, 1.0)))
    return Drift(
        recent=len(recent), reference=len(reference), shift=shift, p_value=p_value, drifted=p_value < alpha
    )


def of_recent(newest_first: Sequence[np.ndarray], *, window: int, reference: int) -> Drift | None:
    """The latest ``window`` outputs' embeddings (newest first) against the ``reference`` before them."""
    if len(newest_first) < window + MIN_EACH:
        return None
    rows = np.vstack(newest_first[: window + reference])
    return embedding_shift(rows[:window], rows[window:])
