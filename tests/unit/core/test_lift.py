"""Replay figures: lift against random and single signals, AUROC on the unreviewed, strata."""

from __future__ import annotations

import pytest

from core import lift


def test_lift_is_the_reviewed_failure_rate_over_the_pools() -> None:
    # A pool of 100 with 20 failures; the first 10 reviews found 6 failures: 0.6 / 0.2 = 3x.
    order = [True] * 6 + [False] * 4 + [False] * 10
    assert lift.lift_at(order, pool=100, base_rate=0.2, share=0.10) == pytest.approx(3.0)
    assert lift.lift_at(order, pool=100, base_rate=0.2, share=0.20) == pytest.approx(1.5)
    assert lift.lift_at(order, pool=100, base_rate=0.2, share=0.30) is None  # not reached


def test_a_signal_sorted_alone_is_measured_both_ways_with_missing_values_last() -> None:
    values = [5.0, None, 1.0, 4.0, 2.0, 3.0, None, 0.0, 6.0, 7.0]
    failed = [False, True, True, False, True, False, True, True, False, False]
    # Descending: 7, 6, 5, 4, 3, 2, ... -> the top 20% (2) are both passes.
    assert lift.sorted_lift(values, failed, share=0.2) == 0.0
    # Ascending: 0, 1 -> both failures: rate 1.0 over 0.5.
    assert lift.sorted_lift(values, failed, share=0.2, descending=False) == pytest.approx(2.0)
    assert lift.order_by(values).tolist()[-2:] == [1, 6]


def test_signal_lifts_cover_every_signal_present() -> None:
    signals = [{"a": float(i), "b": None} for i in range(10)]
    failed = [i >= 8 for i in range(10)]
    rows = lift.signal_lifts(signals, failed, shares=(0.2,))
    assert [r.signal for r in rows] == ["a"]
    assert rows[0].auroc == 1.0 and rows[0].lift == {"20%": pytest.approx(5.0)}
    assert rows[0].lift_reversed == {"20%": 0.0}


def test_auroc_on_the_unreviewed_leaves_reviewed_and_unscored_outputs_out() -> None:
    scores = {"a": 0.9, "b": 0.1, "c": 0.8, "d": None, "e": 0.2}
    failed = {"a": True, "b": False, "c": False, "d": True, "e": True}
    assert lift.unreviewed_auroc(scores, failed, reviewed={"a"}) == 0.5  # c > e (wrong), e > b (right)
    assert lift.unreviewed_auroc(scores, failed, reviewed={"a", "c", "e"}) is None  # no failure left


def test_strata_report_picks_and_yield() -> None:
    out = lift.by_stratum(["audit", "uncertain", "uncertain", "audit"], [False, True, False, False])
    assert out == {
        "audit": {"picks": 2, "failures": 0, "yield": 0.0},
        "uncertain": {"picks": 2, "failures": 1, "yield": 0.5},
    }
