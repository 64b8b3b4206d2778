"""How far a target width raises a queue's audit share: the missing audit reviews over a day's
reviews, where a day is the budget or the reviewers' own pace when that is slower."""

from __future__ import annotations

import pytest

from service.settings import QueueConfig, Settings
from workers.picking import params_for


@pytest.mark.parametrize(
    ("pace", "needed", "share"),
    [
        (None, 0, 0.1),  # nothing wanted: the queue's own share
        (None, 20, 0.2),  # 20 of a 100-review budget
        (40, 20, 0.5),  # reviewers did 40 in the last day: 20 of them is half
        (400, 20, 0.2),  # faster than the budget: the budget still caps a day
        (40, 2, 0.1),  # never below the queue's own share
        (10, 20, 0.5),  # never above the cap
    ],
)
def test_a_target_width_raises_the_share_over_a_days_reviews(
    pace: int | None, needed: int, share: float
) -> None:
    config = QueueConfig(name="q", budget_per_day=100, audit_share=0.1, target_width=0.1)
    settings = Settings(max_audit_share=0.5, drift_audit_share=0.3)
    assert params_for(settings, config, needed=needed, pace=pace).audit_share == pytest.approx(share)


def test_drift_raises_the_share_the_target_builds_on() -> None:
    config = QueueConfig(name="q", budget_per_day=100, audit_share=0.1)
    settings = Settings(max_audit_share=0.5, drift_audit_share=0.3)
    assert params_for(settings, config, drifting=True).audit_share == pytest.approx(0.3)
    assert params_for(settings, config, drifting=True, needed=40, pace=100).audit_share == pytest.approx(0.4)
