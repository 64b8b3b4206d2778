"""Pure estimation: a window's failure rate from its reviews, corrected for how they were picked.

Deterministic picks (inclusion probability 1) are known exactly. The audit slice is a simple random
sample without replacement of the rest of the window (minus junk and the deterministic picks), so
the rest's failures are the audit's failure rate scaled up to the rest: with every audit pick
reviewed this is exactly the Horvitz-Thompson sum ``sum_certain y + sum_audit y / pi``.

The 95% interval is Wilson's score interval on the rest's failure rate, with the audit size
inflated by the finite-population correction (``a (R - 1) / (R - a)`` for an audit of ``a`` out of
``R``), mapped back to the window. Unlike the normal interval it stays inside [0, 1], keeps a
non-zero width when the audit saw no failures (or only failures), and shrinks to the exact rate
when the audit covers the whole rest. Audit picks that were never reviewed are taken to be missing
at random (the audit rate is over the reviewed ones).

Windows combine (``combine``) by summing known failures, rests and windows; the rests' rates pool
into one weighted rate whose Wilson interval uses Kish's effective sample size. The same works for
repeated rounds over one shrinking pool when each round counts everything reviewed before it as
known: each round's estimate is then unbiased given the past, and the combination averages them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
CERTAIN = 1.0 - 1e-9  # inclusion probabilities at or above this are deterministic picks
HT = "horvitz-thompson (wilson, fpc)"


@dataclass(frozen=True)
class ReviewedPick:
    """One reviewed pick: its verdict and the probability that the selection picked it."""

    failed: bool
    inclusion_probability: float
    stratum: str = "audit"


@dataclass(frozen=True)
class Estimate:
    """A failure rate with its 95% interval, and the counts it was built from (for ``combine``)."""

    rate: float
    low: float
    high: float
    method: str
    n_audit: int
    n_reviews: int
    window: int = 0  # non-junk outputs the estimate is about
    known_failures: int = 0  # failures among the deterministic picks
    rest: int = 0  # outputs the audit was drawn from
    audit_failures: int = 0

    def covers(self, rate: float) -> bool:
        """Whether ``rate`` lies in the interval (a little slack for float round-off)."""
        return self.low - 1e-12 <= rate <= self.high + 1e-12


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` seen in ``n`` (possibly effective) draws."""
    if n <= 0:
        return 0.0, 1.0
    if math.isinf(n):
        return p, p
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def failure_rate(
    reviews: Sequence[ReviewedPick], window_size: int, junk: int = 0, *, z: float = Z95
) -> Estimate:
    """Failure rate of the window's non-junk outputs: known picks exactly, the rest from the audit."""
    window = window_size - junk
    if window < 0 or len(reviews) > window:
        raise ValueError(f"{len(reviews)} reviews do not fit a window of {window} non-junk outputs")
    if any(not 0.0 < r.inclusion_probability <= 1.0 + 1e-9 for r in reviews):
        raise ValueError("inclusion probabilities must lie in (0, 1]")
    certain = [r for r in reviews if r.inclusion_probability >= CERTAIN]
    audit = [r for r in reviews if r.inclusion_probability < CERTAIN]
    rest = window - len(certain)
    part = Estimate(
        rate=0.0,
        low=0.0,
        high=0.0,
        method=HT,
        n_audit=len(audit),
        n_reviews=len(reviews),
        window=window,
        known_failures=sum(r.failed for r in certain),
        rest=rest,
        audit_failures=sum(r.failed for r in audit),
    )
    return combine([part], z=z)


def combine(estimates: Sequence[Estimate], *, z: float = Z95) -> Estimate:
    """One estimate from several windows' (or rounds') estimates: totals add up, then Wilson."""
    window = sum(e.window for e in estimates)
    if window <= 0:
        raise ValueError("no outputs to estimate a failure rate for")
    known = sum(e.known_failures for e in estimates)
    sampled = [e for e in estimates if e.rest > 0 and e.n_audit > 0]
    unsampled = sum(e.rest for e in estimates if e.rest > 0 and e.n_audit == 0)
    rest = sum(e.rest for e in sampled)
    p, low_p, high_p = 0.0, 0.0, 0.0
    if rest:
        p = sum(e.rest * e.audit_failures / e.n_audit for e in sampled) / rest
        # Kish: the variance of the weighted mean of the rests' rates, per unit p(1 - p), with FPC
        unit_variance = sum((e.rest / rest) ** 2 * _fpc(e.n_audit, e.rest) / e.n_audit for e in sampled)
        low_p, high_p = wilson(p, 1 / unit_variance if unit_variance > 0 else math.inf, z)
    method = HT if len(estimates) == 1 else f"{HT}, {len(estimates)} windows"
    if unsampled:
        method += f"; {unsampled} outputs without an audit (bounds only)"
    return Estimate(
        rate=(known + rest * p) / window,
        low=(known + rest * low_p) / window,
        high=(known + rest * high_p + unsampled) / window,
        method=method,
        n_audit=sum(e.n_audit for e in estimates),
        n_reviews=sum(e.n_reviews for e in estimates),
        window=window,
        known_failures=known,
        rest=rest + unsampled,
        audit_failures=sum(e.audit_failures for e in estimates),
    )


def _fpc(n: int, population: int) -> float:
    """Finite-population correction of a mean's variance: (R - a) / (R - 1), 0 for a census."""
    if n >= population:
        return 0.0
    return (population - n) / (population - 1)


def audit_only(reviews: Sequence[ReviewedPick], *, z: float = Z95) -> Estimate:
    """The plain audit rate (audit failures / audit size) with a Wilson interval, for comparison:
    it describes the rest, not the window, whenever the deterministic picks hold more failures."""
    audit = [r for r in reviews if r.inclusion_probability < CERTAIN]
    failures = sum(r.failed for r in audit)
    p = failures / len(audit) if audit else 0.0
    low, high = wilson(p, len(audit), z)
    return Estimate(
        rate=p,
        low=low,
        high=high,
        method="audit only (wilson)",
        n_audit=len(audit),
        n_reviews=len(reviews),
        audit_failures=failures,
    )


# --- every review counts -------------------------------------------------------------------------

#: Audit reviews the rest of the traffic needs before they alone stand for its unreviewed outputs.
MIN_AUDITS = 3
EVERY_REVIEW = "every review known; waiting picks at routing's rate, the rest at the audit's (wilson)"


@dataclass(frozen=True)
class Output:
    """One output of the traffic an estimate is about: its verdict once reviewed (None: not yet),
    and whether routing chose it or a random audit drew it (reviewed or still waiting)."""

    failed: bool | None
    audit: bool = False
    routed: bool = False


@dataclass(frozen=True)
class Group:
    """Outputs whose unreviewed members are predicted alike: how many, how many reviewed (and
    failed), and how many of those a random audit drew (and failed)."""

    outputs: int
    reviewed: int
    failures: int
    audited: int
    audit_failures: int

    @classmethod
    def of(cls, outputs: Sequence[Output]) -> Group:
        reviewed = [o for o in outputs if o.failed is not None]
        return cls(
            outputs=len(outputs),
            reviewed=len(reviewed),
            failures=sum(bool(o.failed) for o in reviewed),
            audited=sum(o.audit for o in reviewed),
            audit_failures=sum(o.audit and bool(o.failed) for o in reviewed),
        )

    def rate(self, fallback: tuple[float, int]) -> tuple[float, int]:
        """The rate its unreviewed members fail at and how many reviews it rests on: the audit's when
        it drew ``MIN_AUDITS``, else all its reviews', else ``fallback``."""
        if self.audited >= MIN_AUDITS:
            return self.audit_failures / self.audited, self.audited
        if self.reviewed:
            return self.failures / self.reviewed, self.reviewed
        return fallback


def every_review(outputs: Sequence[Output], *, z: float = Z95) -> Estimate:
    """The failure rate of all these outputs, every review counted.

    A reviewed output is known. Of the unreviewed, picks routing chose and nobody reviewed yet fail
    like the routed picks already reviewed (the queue is worked in score order, so the waiting ones
    are the next in line); everything else routing did not choose (never picked, or audit picks
    waiting) fails at the rate of the reviewed audit picks, a uniform draw from what routing did not
    choose, reviewed in random order (``selection.review_ranks``). With fewer than ``MIN_AUDITS``
    audit reviews the rest falls back on its other reviews, then on every review. The variance adds
    the two predictions' (rates smoothed by half a failure, so unanimous reviews still leave doubt);
    the interval is Wilson's on the effective sample size, like ``combine``.
    """
    total = len(outputs)
    reviewed = sum(o.failed is not None for o in outputs)
    if total == 0 or reviewed == 0:
        raise ValueError("no reviewed outputs to estimate a failure rate from")
    everyone = Group.of(outputs)
    overall = (everyone.failures / everyone.reviewed, everyone.reviewed)
    groups = [
        Group.of([o for o in outputs if o.routed and not o.audit]),  # waiting picks: routing's rate
        Group.of([o for o in outputs if o.audit or not o.routed]),  # the rest: the audit's rate
    ]
    expected, variance = 0.0, 0.0
    for g in groups:
        unreviewed = g.outputs - g.reviewed
        if not unreviewed:
            continue
        rate, basis = g.rate(overall)
        expected += unreviewed * rate
        smoothed = (rate * basis + 0.5) / (basis + 1.0)
        variance += unreviewed**2 * smoothed * (1 - smoothed) / basis
    rate = (everyone.failures + expected) / total
    smoothed = (rate * reviewed + 0.5) / (reviewed + 1.0)
    effective = smoothed * (1 - smoothed) * total**2 / variance if variance > 0 else math.inf
    low, high = wilson(rate, effective, z)
    return Estimate(
        rate=rate,
        low=min(low, rate),
        high=max(high, rate),
        method=EVERY_REVIEW,
        n_audit=everyone.audited,
        n_reviews=reviewed,
        window=total,
        known_failures=everyone.failures,
        rest=total - reviewed,
        audit_failures=everyone.audit_failures,
    )
