"""Stop on evidence: keep while routing beats random, stop once it does not and the rate is known."""

from __future__ import annotations

from core.evidence import recommend


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
