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

#: Reviews a score stratum needs before it stands on its own (the lowest stratum takes what is left).
STRATUM_REVIEWS = 20
#: Audit reviews a stratum needs for them alone to stand for its unreviewed outputs.
STRATUM_AUDITS = 3
BY_SCORE = "stratified by score: reviewed known, the rest from its stratum's audit (wilson)"


@dataclass(frozen=True)
class Output:
    """One output of the traffic an estimate is about: its current score, its verdict once reviewed
    (None: not reviewed), and whether it was reviewed because a random audit drew it."""

    score: float | None
    failed: bool | None
    audit: bool = False


@dataclass(frozen=True)
class Stratum:
    """A run of outputs adjacent in score: how many, how many reviewed (and failed), and how many of
    those reviews a random audit drew (and failed)."""

    low: float | None
    high: float | None
    outputs: int
    reviewed: int
    failures: int
    audited: int
    audit_failures: int

    @property
    def unreviewed_rate(self) -> tuple[float, int]:
        """The rate its unreviewed outputs are taken to fail at, and how many reviews it rests on:
        the audit's when it has ``STRATUM_AUDITS`` (routing chose the others for their scores, and the
        unreviewed are exactly what routing did not choose), else every review's."""
        if self.audited >= STRATUM_AUDITS:
            return self.audit_failures / self.audited, self.audited
        return (self.failures / self.reviewed if self.reviewed else 0.0), self.reviewed


def strata(outputs: Sequence[Output], *, min_reviews: int = STRATUM_REVIEWS) -> list[Stratum]:
    """Cut the outputs, highest score first, into strata of at least ``min_reviews`` reviews each;
    the last stratum takes what is left (joining the one before when it has too few). Unscored
    outputs rank lowest."""
    ranked = sorted(outputs, key=lambda o: -math.inf if o.score is None else o.score, reverse=True)
    cuts: list[list[Output]] = []
    current: list[Output] = []
    seen = 0
    for o in ranked:
        current.append(o)
        seen += o.failed is not None
        if seen >= min_reviews:
            cuts.append(current)
            current, seen = [], 0
    if current:
        if cuts and seen < min_reviews:
            cuts[-1] += current
        else:
            cuts.append(current)
    return [
        Stratum(
            low=c[-1].score,
            high=c[0].score,
            outputs=len(c),
            reviewed=sum(o.failed is not None for o in c),
            failures=sum(bool(o.failed) for o in c),
            audited=sum(o.audit and o.failed is not None for o in c),
            audit_failures=sum(o.audit and bool(o.failed) for o in c),
        )
        for c in cuts
    ]


def by_score(outputs: Sequence[Output], *, min_reviews: int = STRATUM_REVIEWS, z: float = Z95) -> Estimate:
    """The failure rate of all these outputs, every review counted.

    A reviewed output is known. The unreviewed ones are predicted stratum by stratum: outputs are cut
    by score into strata of ``min_reviews`` reviews, and a stratum's unreviewed outputs fail at the
    rate of its audit reviews (a random draw among what routing did not choose, which is what they
    are), or of all its reviews where the audit drew too few (near the top, where routing reviews
    almost everything and in score order). The variance adds each stratum's, with its rate smoothed
    by half a failure so that unanimous reviews still leave doubt; the interval is Wilson's on the
    effective sample size, like ``combine``. Routing and review order depend on the score, so this
    holds as far as who got reviewed within a stratum is random given the score.
    """
    total = len(outputs)
    reviewed = sum(o.failed is not None for o in outputs)
    if total == 0 or reviewed == 0:
        raise ValueError("no reviewed outputs to estimate a failure rate from")
    cut = strata(outputs, min_reviews=min_reviews)
    known = sum(s.failures for s in cut)
    expected, variance = 0.0, 0.0
    for s in cut:
        unreviewed = s.outputs - s.reviewed
        rate, basis = s.unreviewed_rate
        expected += unreviewed * rate
        smoothed = (rate * basis + 0.5) / (basis + 1.0)
        variance += unreviewed**2 * smoothed * (1 - smoothed) / basis
    rate = (known + expected) / total
    smoothed = (rate * reviewed + 0.5) / (reviewed + 1.0)
    effective = smoothed * (1 - smoothed) * total**2 / variance if variance > 0 else math.inf
    low, high = wilson(rate, effective, z)
    return Estimate(
        rate=rate,
        low=min(low, rate),
        high=max(high, rate),
        method=f"{BY_SCORE}, {len(cut)} strata",
        n_audit=sum(s.audited for s in cut),
        n_reviews=reviewed,
        window=total,
        known_failures=known,
        rest=total - reviewed,
        audit_failures=sum(s.audit_failures for s in cut),
    )
