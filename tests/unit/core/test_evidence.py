"""Stop on evidence: keep while routing beats random, stop once it does not and the rate is known."""

from __future__ import annotations

import pytest

from core.evidence import gain_per_100_labels, recommend


def test_routing_that_still_beats_the_audit_is_kept() -> None:
    advice = recommend((50, 30), (40, 6), interval_width=0.2, drifted=False)
    assert advice.action == "keep" and "60%" in advice.why and "15%" in advice.why


def test_routing_no_better_than_random_lowers_the_budget_then_stops_once_the_rate_is_known() -> None:
    assert recommend((50, 9), (100, 18), interval_width=0.12, drifted=False).action == "lower the budget"
    stop = recommend((50, 9), (100, 18), interval_width=0.04, drifted=False)
    assert stop.action == "stop" and "4%" in stop.why


def test_drift_resumes_and_too_few_reviews_say_so() -> None:
    assert recommend((50, 9), (100, 18), interval_width=0.04, drifted=True).action == "resume"
    early = recommend((20, 9), (3, 1), interval_width=None, drifted=False)
    assert early.action == "not enough evidence" and "has 20 and 3" in early.why


def test_the_learning_curves_slope_over_the_latest_versions() -> None:

    assert gain_per_100_labels([(20, 0.6), (30, 0.62)]) is None  # two versions: no slope yet
    rising = [(20, 0.60), (30, 0.62), (40, 0.64), (50, 0.66)]
    assert gain_per_100_labels(rising) == pytest.approx(0.2)  # 0.02 AUROC per 10 labels
    # Only the latest five count: an early climb does not hide a flat end.
    flat_end = [(10, 0.3), (20, 0.5), (30, 0.7), (40, 0.7), (50, 0.7), (60, 0.7), (70, 0.7)]
    assert gain_per_100_labels(flat_end) == pytest.approx(0.0, abs=1e-12)
    assert gain_per_100_labels([(30, 0.6), (30, 0.7), (30, 0.65)]) is None  # no spread in labels


def test_new_failure_modes_are_failures_unlike_every_failure_before_them() -> None:
    import numpy as np

    from core.evidence import marginal_value

    axis = np.eye(4, dtype=np.float32)
    near = (axis[0] + 0.1 * axis[1]) / np.linalg.norm(axis[0] + 0.1 * axis[1])
    history = [
        (True, axis[0]),  # before the window: the first mode
        (False, axis[2]),
        (True, near),  # in the window: like the first mode
        (False, axis[1]),
        (True, axis[3]),  # new
        (True, axis[3]),  # the same as the one just found
        (True, None),  # a failure without an embedding: counted, never new
    ]
    found = marginal_value(history, last=5, floor=0.5)
    assert (found.reviews, found.failures, found.new_modes) == (5, 4, 1)
    assert marginal_value(history, last=7, floor=0.5).new_modes == 2  # the first one is new too
    assert marginal_value(history, last=5, floor=0.999).new_modes == 2  # stricter: near is new
    assert marginal_value([], floor=0.5).reviews == 0
