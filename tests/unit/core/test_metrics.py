"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics import auprc, auroc, bootstrap_ci, prr


def test_auroc_perfect_random_inverted_and_ties() -> None:
    y = [True, True, False, False]
    assert auroc(y, [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert auroc(y, [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert auroc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert auroc(y, [0.9, 0.1, 0.5, 0.05]) == pytest.approx(0.75)


def test_auprc_by_hand() -> None:
    # order: F, P, F -> precision at the failures: 1/1 and 2/3
    assert auprc([True, False, True], [0.9, 0.5, 0.1]) == pytest.approx((1 + 2 / 3) / 2)


def test_prr_is_one_for_the_oracle_zero_for_reversed_halfway() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=bool)
    assert prr(y, y.astype(float)) == pytest.approx(1.0)
    assert prr(y, -y.astype(float)) < 0
    rng = np.random.default_rng(0)
    big = rng.random(20000) < 0.2
    assert abs(prr(big, rng.random(20000))) < 0.05


def test_bootstrap_interval_contains_the_estimate() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(400) < 0.3
    s = y + rng.normal(0, 1, 400)
    value, lo, hi = bootstrap_ci(auroc, y, s, rounds=200)
    assert lo < value < hi and 0.6 < value < 0.9


def test_calibration_figures_against_known_answers() -> None:
    from core.metrics import brier, ece, reliability

    failed = [True, False, False, False, True, True, False, False, False, False]
    assert brier(failed, [1.0 if f else 0.0 for f in failed]) == 0.0
    assert brier(failed, [0.5] * 10) == pytest.approx(0.25)
    # two bins: p=0.1 (6 outputs, 1 failure) and p=0.75 (4 outputs, 2 failures)
    p = [0.75, 0.1, 0.1, 0.75, 0.75, 0.1, 0.1, 0.1, 0.75, 0.1]
    points = reliability(failed, p)
    assert [(pt["p_fail"], pt["n"]) for pt in points] == [(pytest.approx(0.1), 6), (pytest.approx(0.75), 4)]
    assert [pt["failure_rate"] for pt in points] == [pytest.approx(1 / 6), pytest.approx(0.5)]
    assert ece(failed, p) == pytest.approx((6 * abs(0.1 - 1 / 6) + 4 * abs(0.75 - 0.5)) / 10)
    rng = np.random.default_rng(0)
    q = rng.uniform(size=20000)
    assert ece(rng.uniform(size=20000) < q, q) < 0.02  # calibrated by construction


def test_weighted_auroc_counts_each_pair_by_its_weights() -> None:
    y = [True, True, False, False]
    s = [0.9, 0.1, 0.5, 0.05]
    # Pairs (fail, pass): (0.9>0.5) (0.9>0.05) (0.1<0.5) (0.1>0.05); weights 1, 3 | 2, 1.
    # Won weight: 1*2 + 1*1 + 0 + 3*1 = 6 of (1 + 3) * (2 + 1) = 12.
    assert auroc(y, s, [1.0, 3.0, 2.0, 1.0]) == pytest.approx(0.5)
    assert auroc(y, s, [1.0, 1.0, 1.0, 1.0]) == pytest.approx(auroc(y, s))
    # A tie between a failure and a pass counts half of its weight.
    assert auroc([True, False, False], [0.5, 0.5, 0.1], [2.0, 1.0, 1.0]) == pytest.approx(0.75)
    rng = np.random.default_rng(3)
    big_y, big_s = rng.random(500) < 0.3, np.round(rng.random(500), 2)  # many ties
    assert auroc(big_y, big_s, np.ones(500)) == pytest.approx(auroc(big_y, big_s))
    # Integer weights are the same as repeating the rows.
    w = rng.integers(1, 4, 500)
    assert auroc(big_y, big_s, w) == pytest.approx(auroc(np.repeat(big_y, w), np.repeat(big_s, w)))
