"""Which selection runs call a queue's webhook, and what they say."""

from __future__ import annotations

from core.notifications import Selected, events


def run(**overrides: object) -> Selected:
    values: dict[str, object] = {
        "queue": "support",
        "waiting_before": 3,
        "added": 5,
        "picked_today_before": 10,
        "budget_per_day": 50,
    }
    values.update(overrides)
    return Selected(**values)  # type: ignore[arg-type]


def test_a_quiet_run_calls_nobody() -> None:
    assert events(run()) == []


def test_new_items_after_an_empty_queue_are_announced_with_a_link() -> None:
    (event,) = events(run(waiting_before=0), link="https://rr.example/ui/queues/support")
    assert event["event"] == "items_waiting" and event["added"] == 5
    assert event["text"].startswith("review-router: 5 new items wait in queue support")
    assert "<https://rr.example/ui/queues/support|open the queue>" in event["text"]


def test_the_budget_is_announced_once_when_it_is_reached() -> None:
    (event,) = events(run(picked_today_before=47, added=3))
    assert event["event"] == "budget_reached" and event["picked_today"] == 50
    assert events(run(picked_today_before=50, added=0)) == []  # already spent: said before


def test_drift_names_the_raised_audit_share() -> None:
    (event,) = events(run(drifting=True, audit_share=0.3))
    assert event["event"] == "drift" and "raised to 30%" in event["text"]
