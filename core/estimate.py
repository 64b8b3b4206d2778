"""Pure estimation: a queue's failure rate from its reviews, corrected for how they were picked.

``every_review`` is the queue's estimate: routing's reviews are known exactly, and the outputs
routing has not reached fail at the rate of the random audit's members among them, which routing
chose blind to the audit (``core.selection``), so they are a uniform sample of exactly that part.
``audit_only`` is the same from the audit members alone, the plain check.

Every interval is Wilson's score interval on the unknown part's failure rate, with the sample size
inflated by the finite-population correction (``a (R - 1) / (R - a)`` for ``a`` reviews of ``R``),
mapped back to the whole. Unlike the normal interval it stays inside [0, 1], keeps a non-zero
width when the sample saw no failures (or only failures), and shrinks to the exact rate when the
sample covers the whole unknown part. Audit members not reviewed yet are missing at random: the
audit is reviewed in random order (``selection.review_ranks``). A member a reviewer skipped is not:
people skip the hard ones. Until someone gives it a verdict it is *withheld*, and the interval takes
it at both extremes (a pass for the low bound, a failure for the high one), so a sample thinned by
skips widens the interval instead of quietly moving the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


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
    known_failures: int = 0  # failures among routing's reviews
    rest: int = 0  # outputs routing has not reached: what the sample stands for
    audit_failures: int = 0
    withheld: int = 0  # audit members skipped without a verdict: in the interval at both extremes
    gain: float = 1.0  # variance the scores saved the unknown part's rate (``assisted_rate``)

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


def bounded_wilson(
    failed: float, withheld: float, n: float, population: int, z: float = Z95, *, gain: float = 1.0
) -> tuple[float, float]:
    """Wilson's interval on a sample's failure rate when some of its draws have no verdict and may
    not be missing at random: of ``n`` draws (effective size, finite-population corrected against
    ``population``), a share ``failed`` failed among all of them and a share ``withheld`` has no
    verdict. The low bound counts the withheld as passes, the high bound as failures (the worst
    case either way), each Wilson's bound on that rate. ``gain`` is how many times fewer draws a
    model-assisted rate needs than a plain one for the same variance (``assisted_rate``)."""
    fpc = _fpc(n, population)
    size = n * gain / fpc if fpc > 0 else math.inf
    return wilson(failed, size, z)[0], wilson(failed + withheld, size, z)[1]


def _fpc(n: float, population: int) -> float:
    """Finite-population correction of a mean's variance: (R - a) / (R - 1), 0 for a census."""
    if n >= population:
        return 0.0
    if population <= 1:
        return 1.0
    return (population - n) / (population - 1)


# --- every review counts -------------------------------------------------------------------------

#: Audit reviews the unknown part of the traffic needs before its point estimate rests on them alone.
MIN_AUDITS = 3
EVERY_REVIEW = (
    "every review: routing's known, the rest from audit reviews routing has not reached (wilson, fpc)"
)


@dataclass(frozen=True)
class Output:
    """One output of the traffic an estimate is about: its verdict once reviewed (None: not yet);
    whether the random audit drew it (``audit``), whether routing chose it (``routed``, an audit
    member included: routing does not look at the audit), and, for an audit member routing chose,
    whether routing's score order has reached it (``passed``)."""

    failed: bool | None
    audit: bool = False
    routed: bool = False
    passed: bool = False
    inclusion_probability: float = 1.0  # an audit member's: the audit's rate when it was drawn
    skipped: bool = False  # a reviewer skipped it
    score: float | None = None  # its score now (a sampled member's blind one): what assists the rest

    @property
    def known(self) -> bool:
        """Reviewed in routing's turn: part of the total exactly. An audit member counts once routing's
        score order has reached it, as it would have without the audit."""
        return self.failed is not None and self.routed and (not self.audit or self.passed)

    @property
    def sampled(self) -> bool:
        """A reviewed audit member that routing has not reached: a draw from the unknown part."""
        return self.failed is not None and self.audit and not self.known

    @property
    def withheld(self) -> bool:
        """An audit member a reviewer skipped, still without a verdict: a draw that may not be
        missing at random."""
        return self.failed is None and self.audit and self.skipped


def every_review(outputs: Sequence[Output], *, z: float = Z95, assisted: bool = True) -> Estimate:
    """The failure rate of all these outputs, every review counted.

    The design (``core.selection``): the audit draws members uniformly, routing chooses from every
    output without looking at the audit, audit members are reviewed in random order at the audit's
    turns, and routing's score order *passes* an audit member it chose as it passes any routed pick
    (reviewing it then, or counting the verdict it already has). So the outputs routing has not
    passed (``known`` is false) hold the audit members it has not passed as a uniform sample, and
    their reviewed part as a random one: the unknown part fails at their rate, with no model of
    which outputs routing would pick. Routing's reviews are known exactly and shrink that part,
    and as routing takes failures out of it the sample sees that, so the estimate does not go stale.

    Members drawn at different rates (a raised audit share) weigh ``1/inclusion_probability``. With
    fewer than ``MIN_AUDITS`` sampled reviews the point estimate of the unknown part falls back on
    every review's rate; the interval is always Wilson's on the sample (finite-population corrected,
    Kish's effective size), so with no sample it spans everything the unknown part could hold.
    Withheld members (skipped, no verdict) join the sample at both extremes (``bounded_wilson``).
    With ``assisted`` and scores that predict the sample's verdicts, the unknown part's rate is the
    regression estimate on the scores of all of it (``assisted_rate``), and its interval narrows by
    as much as the scores explain.
    """
    total = len(outputs)
    reviewed = [o for o in outputs if o.failed is not None]
    if total == 0 or not reviewed:
        raise ValueError("no reviewed outputs to estimate a failure rate from")
    known = [o for o in outputs if o.known]
    sample = [o for o in outputs if o.sampled]
    withheld = [o for o in outputs if o.withheld]
    known_failures = sum(bool(o.failed) for o in known)
    sample_failures = sum(bool(o.failed) for o in sample)
    rest = total - len(known)
    p, low_p, high_p, gain = 0.0, 0.0, 0.0, 1.0
    if rest:
        # Members drawn at different rates weigh 1/rate (Hajek), with Kish's effective sample size.
        weights = [1.0 / max(o.inclusion_probability, 1e-9) for o in sample]
        drawn_rate = sum(w * bool(o.failed) for w, o in zip(weights, sample, strict=True)) / sum(
            weights or [1]
        )
        model = (
            assisted_rate(
                [bool(o.failed) for o in sample],
                [o.score for o in sample],
                weights,
                [o.score for o in outputs if not o.known],
            )
            if assisted
            else None
        )
        if model is not None:
            drawn_rate, gain = model
        everyone = sum(bool(o.failed) for o in reviewed) / len(reviewed)
        p = drawn_rate if len(sample) >= MIN_AUDITS else everyone
        low_p, high_p = 0.0, 1.0  # no sample: the unknown part could hold anything
        if sample:
            drawn = weights + [1.0 / max(o.inclusion_probability, 1e-9) for o in withheld]
            n = sum(drawn) ** 2 / sum(w * w for w in drawn)
            judged = sum(weights) / sum(drawn)
            low_p, high_p = bounded_wilson(drawn_rate * judged, 1.0 - judged, n, rest, z, gain=gain)
        low_p, high_p = min(low_p, p), max(high_p, p)
    return Estimate(
        rate=(known_failures + rest * p) / total,
        low=(known_failures + rest * low_p) / total,
        high=(known_failures + rest * high_p) / total,
        method=ASSISTED if gain > 1.0 else EVERY_REVIEW,
        n_audit=len(sample),
        n_reviews=len(reviewed),
        window=total,
        known_failures=known_failures,
        rest=rest,
        audit_failures=sample_failures,
        withheld=len(withheld),
        gain=gain,
    )


# --- model-assisted ------------------------------------------------------------------------------

#: Sampled reviews with scores before the scores may assist: below it the regression's fit on so
#: few verdicts overstates what the scores explain.
MIN_ASSISTED = 20
ASSISTED = (
    "every review: routing's known, the rest from audit reviews routing has not reached, "
    "assisted by the scores of all of it (regression, wilson, fpc)"
)


def assisted_rate(
    failed: Sequence[bool],
    scores: Sequence[float | None],
    weights: Sequence[float],
    population: Sequence[float | None],
) -> tuple[float, float] | None:
    """The regression estimate of a population's failure rate from a uniform sample of it, and the
    variance it saves: the sample's weighted rate corrected by how far the population's mean score
    lies from the sample's, along the sample's own slope of verdict on score (``ybar + b (F - fbar)``,
    the model-assisted difference estimator with its coefficient fitted, as in prediction-powered
    inference). The slope is fitted, so scores on any scale, pointing either way, or saying nothing
    (slope near 0) are all fine. Returns (rate, gain): gain is the plain rate's variance over the
    regression's (residuals on ``n - 2`` degrees of freedom), how many times fewer draws it needs.
    None when it would not help: too few scored draws (``MIN_ASSISTED``), no spread in the scores or
    the verdicts, or no variance saved. A draw or output without a score takes the mean score."""
    scored = [s for s in population if s is not None]
    if sum(s is not None for s in scores) < MIN_ASSISTED or not scored:
        return None
    centre = float(np.mean(scored))
    f = np.array([centre if s is None else float(s) for s in scores])
    y, w = np.asarray(failed, dtype=float), np.asarray(weights, dtype=float)
    ybar, fbar = np.average(y, weights=w), np.average(f, weights=w)
    sff, syy = float(w @ (f - fbar) ** 2), float(w @ (y - ybar) ** 2)
    if sff <= 1e-12 or syy <= 1e-12:
        return None
    slope = float(w @ ((f - fbar) * (y - ybar))) / sff
    see = float(w @ (y - ybar - slope * (f - fbar)) ** 2)
    n = len(y)
    gain = (syy / (n - 1)) / max(see / (n - 2), 1e-12)
    if gain <= 1.0:
        return None
    return min(1.0, max(0.0, float(ybar + slope * (centre - fbar)))), gain


AUDIT_ONLY = "audit members alone (wilson, fpc)"


def audit_only(outputs: Sequence[Output], *, z: float = Z95) -> Estimate | None:
    """The plain check beside ``every_review``: the audit members alone, a uniform draw of the
    traffic. Their own failure rate (those routing reached known, the rest from the ones reviewed at
    the audit's turn) stands for the traffic's, with Wilson's interval on the reviewed members
    (corrected for the traffic's size). None when no audit member has a verdict."""
    members = [o for o in outputs if o.audit]
    if not any(o.failed is not None for o in members):
        return None
    own = every_review(members, z=z, assisted=False)
    n = own.n_reviews
    judged = n / (n + own.withheld)  # withheld members take both extremes (see ``bounded_wilson``)
    low, high = bounded_wilson(own.rate * judged, 1.0 - judged, n + own.withheld, len(outputs), z)
    return Estimate(
        **{**own.__dict__, "low": min(low, own.rate), "high": max(high, own.rate), "method": AUDIT_ONLY}
    )


def audits_needed(e: Estimate, width: float, *, z: float = Z95) -> int:
    """How many sampled (audit) reviews the unknown part of ``e`` needs in all for its 95% interval
    to be about ``width`` wide: the normal approximation with the finite-population correction,
    at the sample's failure rate smoothed by half a failure (so a sample without failures still
    asks for some), less the variance the scores save it now (``Estimate.gain``). 0 when nothing is
    unknown."""
    if e.rest <= 0 or e.window <= 0:
        return 0
    p = (e.audit_failures + 0.5) / (e.n_audit + 1)
    v = (width * e.window / (2 * z * e.rest)) ** 2  # the rest's rate's variance the width allows
    spread = p * (1 - p) / max(e.gain, 1.0)
    return min(e.rest, math.ceil(spread * e.rest / (v * (e.rest - 1) + spread)))
