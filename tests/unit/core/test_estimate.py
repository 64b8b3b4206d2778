"""The queue's failure-rate estimate: every review counted, unbiased as routing empties the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.estimate import (
    Estimate,
    Output,
    assisted_rate,
    audit_only,
    audits_needed,
    every_review,
    wilson,
)
from core.selection import top_up_audit


def population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and failures where high scores fail more often (what routing exploits)."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(size=n)
    failed = rng.uniform(size=n) < 0.05 + 0.4 * score**3
    return score, failed


# --- every review counts -------------------------------------------------------------------------


def blind_design(
    score: np.ndarray,
    failed: np.ndarray,
    picks: int,
    audit: int,
    rng: np.random.Generator,
    *,
    waiting: int = 0,
    audits_reviewed: float = 1.0,
    passing: bool = True,
) -> list[Output]:
    """The audit draws ``audit`` members from every output; routing chooses the top ``picks`` by a
    noisy score, blind to the audit, and its score order reaches all but the ``waiting`` last of
    them (passing the audit members among them); a random share of the members it has not reached
    is reviewed at the audit's turns, before routing chose anything. ``passing=False`` forgets
    which members routing reached (the mistake the estimate must not make)."""
    members = set(rng.choice(len(score), size=audit, replace=False).tolist())
    seen = np.argsort(-(score + rng.normal(0, 0.05, size=len(score)))).tolist()
    routed, reached = set(seen[:picks]), set(seen[: picks - waiting])
    unreached = [i for i in rng.permutation(sorted(members)).tolist() if i not in reached]
    reviewed = reached | set(unreached[: round(audits_reviewed * len(unreached))])
    return [
        Output(
            bool(failed[i]) if i in reviewed else None,
            audit=i in members,
            routed=i in routed,
            passed=passing and i in members and i in reached,
        )
        for i in range(len(score))
    ]


@pytest.mark.parametrize(
    ("picks", "audit", "waiting", "audits_reviewed"),
    [(300, 40, 0, 1.0), (150, 30, 0, 1.0), (300, 40, 100, 0.5), (60, 60, 20, 0.3)],
)
def test_every_review_counts_and_the_interval_covers_the_truth(
    picks: int, audit: int, waiting: int, audits_reviewed: float
) -> None:
    score, failed = population(3000, seed=1)
    rng = np.random.default_rng(7)
    estimates = [
        every_review(
            blind_design(score, failed, picks, audit, rng, waiting=waiting, audits_reviewed=audits_reviewed)
        )
        for _ in range(400)
    ]
    truth = failed.mean()
    assert abs(np.mean([e.rate for e in estimates]) - truth) < 0.005
    assert 0.93 <= np.mean([e.covers(truth) for e in estimates]) <= 0.99


def test_an_audit_reviewed_before_routing_moved_on_still_describes_what_routing_left() -> None:
    """Routing takes the failures out of the rest the audit was drawn from. Counting the members it
    reached as routing's (passed) keeps the estimate unbiased; treating them as samples of the rest
    overestimates, as the estimate did before routing was blind to the audit."""
    score, failed = population(3000, seed=1)
    rng = np.random.default_rng(11)
    truth = failed.mean()
    right = [every_review(blind_design(score, failed, 600, 60, rng)).rate for _ in range(400)]
    wrong = [every_review(blind_design(score, failed, 600, 60, rng, passing=False)).rate for _ in range(400)]
    assert abs(np.mean(right) - truth) < 0.004
    assert np.mean(wrong) - truth > 0.02


def test_known_reviews_make_it_narrower_than_the_audit_alone() -> None:
    score, failed = population(3000, seed=1)
    outputs = blind_design(score, failed, 300, 40, np.random.default_rng(8))
    counted = every_review(outputs)
    plain = audit_only(outputs)
    assert plain is not None and plain.method.startswith("audit members alone")
    assert counted.n_reviews == 300 + sum(o.sampled for o in outputs)
    assert counted.high - counted.low < plain.high - plain.low


def test_the_parts_of_the_estimate_by_hand() -> None:
    known = [Output(n < 15, routed=True) for n in range(20)]  # routing's reviews: 15 of 20 failed
    known += [Output(True, audit=True, routed=True, passed=True)] * 2  # members routing reached
    waiting = [Output(None, routed=True) for _ in range(10)]
    sampled = [Output(n == 0, audit=True) for n in range(4)]  # reviewed at the audit's turn
    sampled += [Output(True, audit=True, routed=True)]  # routing chose it, has not reached it yet
    rest = [Output(None, audit=True)] * 3 + [Output(None)] * 60
    e = every_review(known + waiting + sampled + rest)
    unknown = 100 - 22
    assert (e.known_failures, e.rest, e.n_audit, e.audit_failures, e.n_reviews) == (17, unknown, 5, 2, 27)
    assert e.rate == pytest.approx((17 + unknown * 2 / 5) / 100)
    low, high = wilson(2 / 5, 5 * (unknown - 1) / (unknown - 5))
    assert (e.low, e.high) == (
        pytest.approx((17 + unknown * low) / 100),
        pytest.approx((17 + unknown * high) / 100),
    )
    # with fewer than MIN_AUDITS samples the point falls back on every review's rate
    few = every_review(known + waiting + sampled[:2] + rest)
    assert few.rate == pytest.approx((17 + 75 * 18 / 24) / 97)
    # with none, the interval spans everything the unknown part could hold
    none = every_review(known + waiting + rest)
    assert (none.low, none.high) == (pytest.approx(17 / 95), pytest.approx((17 + 73) / 95))
    assert audit_only(known + waiting + rest) is not None  # the reached members are reviewed
    assert audit_only([*waiting, Output(None), Output(True, routed=True)]) is None
    with pytest.raises(ValueError, match="no reviewed"):
        every_review([Output(None)])


def test_a_census_is_exact_and_unanimous_reviews_still_leave_doubt() -> None:
    census = [Output(s % 3 == 0, routed=s < 10, audit=s >= 10) for s in range(30)]
    exact = every_review(census)
    assert exact.rate == exact.low == exact.high == pytest.approx(10 / 30)
    sampled = [Output(False if s % 5 == 0 else None, audit=s % 5 == 0) for s in range(100)]
    doubt = every_review(sampled)
    assert doubt.rate == 0.0 and doubt.low == 0.0 and 0.05 < doubt.high < 0.3


@pytest.mark.parametrize(("failures", "sampled", "rest"), [(2, 10, 900), (0, 5, 4000), (30, 60, 300)])
def test_audits_needed_is_the_fewest_sampled_reviews_that_make_the_interval_that_narrow(
    failures: int, sampled: int, rest: int
) -> None:
    e = Estimate(0.2, 0.0, 1.0, "", sampled, 50, window=rest + 40, rest=rest, audit_failures=failures)
    p = (failures + 0.5) / (sampled + 1)

    def width(n: int) -> float:
        return 2 * 1.959963984540054 * math.sqrt(p * (1 - p) / n * (rest - n) / (rest - 1)) * rest / e.window

    n = audits_needed(e, 0.1)
    assert width(n) <= 0.1 < width(n - 1)
    assert audits_needed(e, 0.5) < n < audits_needed(e, 0.05) <= rest
    assert audits_needed(Estimate(0.2, 0.2, 0.2, "", 0, 5, window=5, rest=0), 0.1) == 0


def topped_up_design(
    score: np.ndarray, failed: np.ndarray, rng: np.random.Generator, *, first: float, share: float
) -> list[Output]:
    """The audit draws at ``first``; routing chooses 200 by a noisy score; a target width raises the
    share, and the outputs routing has not chosen are topped up to ``share`` (``top_up_audit``);
    routing then chooses 200 more, blind to the audit, and reaches all but the last 50; half the
    members it has not reached are reviewed at the audit's turns."""
    n = len(score)
    member = rng.uniform(size=n) < first
    rate = np.full(n, first)
    order = np.argsort(-(score + rng.normal(0, 0.05, size=n))).tolist()
    early = set(order[:200])
    eligible = [i for i in range(n) if i not in early]
    joins = top_up_audit([first if not member[i] else 1.0 for i in eligible], share, rng)
    for i, joined in zip(eligible, joins, strict=True):
        member[i] = member[i] or joined
        rate[i] = share
    routed, reached = set(order[:400]), set(order[:350])
    unreached = [i for i in rng.permutation(n).tolist() if member[i] and i not in reached]
    reviewed = reached | set(unreached[: len(unreached) // 2])
    return [
        Output(
            bool(failed[i]) if i in reviewed else None,
            audit=bool(member[i]),
            routed=i in routed,
            passed=bool(member[i]) and i in reached,
            inclusion_probability=float(rate[i]),
        )
        for i in range(n)
    ]


def test_a_share_raised_for_a_backlog_tops_up_the_audit_and_stays_unbiased() -> None:
    """A target width raises the audit's share after routing has chosen some outputs: the ones it has
    not chosen are topped up to the new share, the ones it has keep theirs. Every member left to
    stand for the unknown part then stands at its own rate, and the estimate stays unbiased and
    covers, with more members to review than the first draw left."""
    score, failed = population(3000, seed=1)
    rng = np.random.default_rng(5)
    designs = [topped_up_design(score, failed, rng, first=0.05, share=0.3) for _ in range(400)]
    estimates = [every_review(d) for d in designs]
    truth = failed.mean()
    assert abs(np.mean([e.rate for e in estimates]) - truth) < 0.005
    assert 0.93 <= np.mean([e.covers(truth) for e in estimates]) <= 0.99
    members = np.mean([sum(o.audit for o in d) for d in designs])
    assert 0.27 * 2600 < members < 0.33 * 3000  # about 30% of what routing had not chosen, not 5%


def test_skipped_audit_members_widen_the_interval_at_both_extremes() -> None:
    known = [Output(n < 15, routed=True) for n in range(20)]
    sampled = [Output(n < 2, audit=True) for n in range(5)]
    skipped = [Output(None, audit=True, skipped=True)] * 2
    rest = [Output(None)] * 73
    e = every_review(known + sampled + skipped + rest)
    plain = every_review(known + sampled + [Output(None, audit=True)] * 2 + rest)
    unknown = 80
    assert (e.withheld, plain.withheld, e.rate) == (2, 0, plain.rate)  # the point stays the sample's
    n = 7 * (unknown - 1) / (unknown - 7)
    assert e.low == pytest.approx((15 + unknown * wilson(2 / 7, n)[0]) / 100)
    assert e.high == pytest.approx((15 + unknown * wilson(4 / 7, n)[1]) / 100)
    assert e.low < plain.low and e.high > plain.high
    # a skip is forgotten once someone gives the member a verdict
    assert every_review(known + sampled + [Output(True, audit=True, skipped=True)] * 2 + rest).withheld == 0
    only = audit_only(known + sampled + skipped + rest)
    assert only is not None and only.withheld == 2
    assert (
        only.high - only.low
        > audit_only(known + sampled + rest).high - audit_only(known + sampled + rest).low
    )


def test_reviewers_skipping_the_failures_cannot_pull_the_interval_off_the_truth() -> None:
    """Reviewers who skip the hard audit members (here half of the failing ones) bias the sample
    low; counted as missing at random, the interval misses the truth far more often than 5%."""
    score, failed = population(3000, seed=1)
    rng = np.random.default_rng(5)
    truth = failed.mean()
    honest, naive = [], []
    for _ in range(300):
        design = blind_design(score, failed, 150, 150, rng)
        hard = [o.sampled and o.failed and rng.uniform() < 0.5 for o in design]
        honest.append(
            every_review(
                [
                    Output(None, audit=True, skipped=True) if h else o
                    for o, h in zip(design, hard, strict=True)
                ]
            )
        )
        naive.append(
            every_review([Output(None, audit=True) if h else o for o, h in zip(design, hard, strict=True)])
        )
    assert np.mean([e.covers(truth) for e in naive]) < 0.8
    assert np.mean([e.covers(truth) for e in honest]) >= 0.95


# --- model-assisted ------------------------------------------------------------------------------


def test_the_model_assisted_rate_by_hand() -> None:
    """The sample's rate, moved along its own slope of verdict on score to the population's mean
    score; the gain is the plain rate's variance over the residuals'."""
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] * 2
    failed = [s >= 0.7 for s in scores[:10]] + [s >= 0.5 for s in scores[10:]]
    population = [0.1] * 60 + [0.9] * 20  # mean 0.3: lower than the sample's 0.55
    result = assisted_rate(failed, scores, [1.0] * 20, population)
    assert result is not None
    f, y = np.array(scores), np.array(failed, dtype=float)
    slope = np.cov(f, y, bias=True)[0, 1] / np.var(f)
    residuals = y - y.mean() - slope * (f - f.mean())
    assert result[0] == pytest.approx(y.mean() + slope * (0.3 - f.mean()))
    assert result[1] == pytest.approx(np.var(y, ddof=1) / (np.sum(residuals**2) / 18))
    # scores on another scale, or pointing the other way, give the same rate: the slope is fitted
    flipped = assisted_rate(failed, [5 - 3 * s for s in scores], [1.0] * 20, [5 - 3 * s for s in population])
    assert flipped is not None and flipped[0] == pytest.approx(result[0])
    assert flipped[1] == pytest.approx(result[1])
    # too few draws, scores with no spread, or verdicts with none: no assistance
    assert assisted_rate(failed[:19], scores[:19], [1.0] * 19, population) is None
    assert assisted_rate(failed, [0.5] * 20, [1.0] * 20, population) is None
    assert assisted_rate([True] * 20, scores, [1.0] * 20, population) is None


def calibrated_design(
    rng: np.random.Generator, *, picks: int, audit: int, skill: float
) -> tuple[list[Output], float]:
    """3,000 outputs whose failure probability follows a latent trait; the product's score is a
    calibrated but noisy read of it; routing takes the top ``picks`` by score, blind to the audit of
    ``audit`` members, and every member it left is reviewed."""
    trait = np.random.default_rng(3).normal(size=3000)
    failed = np.random.default_rng(4).uniform(size=3000) < 1 / (1 + np.exp(1.0 - skill * trait))
    score = 1 / (1 + np.exp(1.0 - skill * trait - rng.normal(0, 0.3, size=3000)))
    members = set(rng.choice(3000, size=audit, replace=False).tolist())
    routed = set(np.argsort(-score)[:picks].tolist())
    outputs = [
        Output(
            bool(failed[i]) if i in routed or i in members else None,
            audit=i in members,
            routed=i in routed,
            passed=i in members and i in routed,
            score=float(score[i]),
        )
        for i in range(3000)
    ]
    return outputs, float(failed.mean())


def test_scores_that_predict_the_verdicts_narrow_the_interval_and_it_still_covers() -> None:
    rng = np.random.default_rng(9)
    assisted, plain = [], []
    for _ in range(300):
        outputs, truth = calibrated_design(rng, picks=300, audit=60, skill=3.0)
        assisted.append(every_review(outputs))
        plain.append(every_review(outputs, assisted=False))
    assert all(e.method.startswith("every review") for e in assisted + plain)
    assert np.mean([e.gain for e in assisted]) > 1.4 and {e.gain for e in plain} == {1.0}
    assert abs(np.mean([e.rate for e in assisted]) - truth) < 0.005
    assert 0.93 <= np.mean([e.covers(truth) for e in assisted]) <= 0.99
    width = np.mean([e.high - e.low for e in assisted])
    assert width < 0.88 * np.mean([e.high - e.low for e in plain])


def test_scores_that_say_nothing_leave_the_interval_as_wide_as_the_sample_alone() -> None:
    rng = np.random.default_rng(10)
    widths = []
    for _ in range(100):
        outputs, _ = calibrated_design(rng, picks=300, audit=60, skill=3.0)
        noise = [Output(o.failed, o.audit, o.routed, o.passed, score=float(rng.uniform())) for o in outputs]
        e, plain = every_review(noise), every_review(noise, assisted=False)
        widths.append((e.high - e.low) / (plain.high - plain.low))
    assert 0.93 < np.mean(widths) <= 1.0


def test_the_audit_alone_stays_the_plain_check_and_assisted_audits_needed_are_fewer() -> None:
    outputs, _ = calibrated_design(np.random.default_rng(11), picks=300, audit=60, skill=3.0)
    counted, plain = every_review(outputs), every_review(outputs, assisted=False)
    check = audit_only(outputs)
    assert check is not None and check.gain == 1.0 and check.method.startswith("audit members alone")
    assert counted.gain > 1.0 and counted.method != plain.method
    assert counted.high - counted.low < plain.high - plain.low
    assert audits_needed(counted, 0.05) < audits_needed(plain, 0.05)
