"""How far a target width raises a queue's audit share: the missing audit reviews over a day's
reviews, where a day is the budget or the reviewers' own pace when that is slower."""

from __future__ import annotations

import pytest

from core import budget
from service.settings import QueueConfig, Settings
from workers.picking import _may_select, params_for


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


@pytest.mark.parametrize(
    ("budget_per_day", "picked_today", "waiting", "may"),
    [
        (1000, 0, 18, False),  # 2 slots of a 20-pick backlog, a batch is 5: wait for more
        (1000, 0, 15, True),  # a batch is open
        (1000, 0, 0, True),  # the queue ran dry: refill whatever is open
        (1000, 0, 20, False),  # no slot at all
        (100, 47, 17, True),  # at the highest share only 3 are left, and 3 slots are open: it may run
        (100, 47, 18, False),  # ...but not with 2: no share spends the day's last few
    ],
)
def test_a_selection_is_skipped_only_when_no_audit_share_could_make_it_worth_it(
    budget_per_day: int, picked_today: int, waiting: int, may: bool
) -> None:
    config = QueueConfig(name="q", budget_per_day=budget_per_day, backlog_limit=20, audit_share=0.1)
    settings = Settings(max_audit_share=0.5, drift_audit_share=0.3, refill_share=0.25)
    assert _may_select(settings, config, picked_today=picked_today, waiting=waiting) is may
    # whenever it says no, no share the queue may draw with would have selected
    if not may:
        for share in (0.1, 0.3, 0.5):
            routing = budget.routing_budget(budget_per_day, share)
            slots = budget.open_slots(
                budget_per_day=routing, picked_today=picked_today, backlog_limit=20, waiting=waiting
            )
            left = routing - picked_today
            assert not budget.worth_selecting(slots=slots, waiting=waiting, budget_left=left, batch=5)
