"""The dashboard's arithmetic: lift with its interval, and the periods outputs are counted in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.usecases.report import group_rates, lift, period_start


def test_lift_is_the_routed_rate_over_the_audit_rate_with_an_interval_around_it() -> None:
    view = lift((100, 40), (50, 10))
    assert view.failures_per_100_routed == pytest.approx(40.0) and view.audit_rate == pytest.approx(0.2)
    assert view.lift == pytest.approx(2.0)
    assert view.low is not None and view.high is not None and 1.0 < view.low < 2.0 < view.high < 4.0
    # more reviews on both sides: a narrower interval around the same lift
    wide, narrow = lift((100, 40), (50, 10)), lift((1000, 400), (500, 100))
    assert narrow.high - narrow.low < wide.high - wide.low  # type: ignore[operator]


def test_lift_needs_both_sides_and_says_nothing_without_audit_failures() -> None:
    assert lift((10, 5), (0, 0)).lift is None and lift((10, 5), (0, 0)).low is None
    only_passes = lift((10, 5), (20, 0))
    assert only_passes.lift is None and only_passes.low is not None and only_passes.low > 1.0


def test_periods_start_at_midnight_utc_and_weeks_on_monday() -> None:
    wednesday = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    assert period_start(wednesday, "day") == datetime(2026, 12, 2, tzinfo=UTC)
    assert period_start(wednesday, "week") == datetime(2026, 11, 30, tzinfo=UTC)


def test_each_app_and_model_gets_its_own_rate_from_its_own_reviews() -> None:
    from core.estimate import Output

    support = [Output(failed=True, routed=True)] * 4 + [Output(failed=False, audit=True)] * 3
    support += [Output(failed=None)] * 93
    search = [Output(failed=False, routed=True)] * 2 + [Output(failed=True, audit=True)] * 3
    search += [Output(failed=None)] * 45
    quiet = [Output(failed=None)] * 10
    rates = group_rates(
        {
            ("app", "support"): support,
            ("app", "search"): search,
            ("app", "quiet"): quiet,
            ("model", "gpt"): support + search + quiet,
        }
    )
    assert [(g.by, g.name, g.outputs, g.reviews, g.failures) for g in rates] == [
        ("app", "support", 100, 7, 4),
        ("app", "search", 50, 5, 3),
        ("app", "quiet", 10, 0, 0),
        ("model", "gpt", 160, 12, 7),
    ]
    by_name = {g.name: g.estimate for g in rates}
    # support's unreviewed 93 fail at its audit's rate (0 of 3); search's 45 at its audit's (3 of 3).
    assert by_name["support"] is not None and by_name["support"].rate == pytest.approx(4 / 100)
    assert by_name["search"] is not None and by_name["search"].rate == pytest.approx((3 + 45) / 50)
    assert by_name["quiet"] is None  # nothing reviewed: no rate to claim
    assert all(g.estimate is None or g.estimate.low <= g.estimate.rate <= g.estimate.high for g in rates)
