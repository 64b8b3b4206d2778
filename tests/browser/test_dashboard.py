"""The dashboard after a reviewer's first verdicts: the failure rate with its interval, what routing
found, the scorer's state and the plots, drawn from the queue's real reviews."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.browser.conftest import Workbench, on_item, screenshot


def test_the_dashboard_shows_what_the_first_reviews_bought(start_workbench: Callable[..., Workbench]) -> None:
    workbench = start_workbench()
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    for n, output_id in enumerate(workbench.items[:4]):
        on_item(ana, output_id)
        ana.keyboard.press("f" if n % 2 == 0 else "p")
        on_item(ana, workbench.items[n + 1])  # the verdict is in once the next item is open

    ana.get_by_role("link", name="Dashboard").click()
    expect(ana).to_have_url(re.compile(r"/ui/dashboard$"))
    panel = ana.get_by_test_id("dashboard-default")
    report = workbench.api("/v1/queues/default/report")
    rate = report["stats"]["estimate"]
    shown = f"{rate['rate'] * 100:.1f}% [{rate['low'] * 100:.1f}, {rate['high'] * 100:.1f}]"
    expect(panel.get_by_test_id("rate-default")).to_have_text(shown)
    # 2 failures in 4 routed reviews (and the reviewed past output counts as known too)
    assert report["lift"]["routed_reviews"] == 4 and report["lift"]["routed_failures"] == 2
    expect(panel.get_by_test_id("lift-default")).to_contain_text("50 failures per 100 routed reviews")
    expect(panel).to_contain_text("cold start")
    assert report["recommendation"]["action"] == "not enough evidence"
    expect(panel.get_by_test_id("advice-default")).to_contain_text("Not enough evidence: needs 50 routed")
    plots = panel.locator(".plots img")
    expect(plots).to_have_count(2)  # no reliability diagram before a learned scorer
    for n in range(2):
        assert plots.nth(n).get_attribute("src", timeout=1000).startswith("data:image/svg+xml;base64,")  # type: ignore[union-attr]
        assert plots.nth(n).evaluate("img => img.naturalWidth") > 0
    assert sum(day["reviews"] for day in report["throughput"]) == 4
    found = report["lift"]
    assert found["recall_low"] <= found["recall"] <= found["recall_high"] <= 1.0
    expect(panel.get_by_test_id("recall-default")).to_contain_text(f"{found['recall'] * 100:.0f}%")
    latest = report["marginal"]
    assert (latest["reviews"], latest["failures"]) == (4, 2) and 0 <= latest["new_modes"] <= 2
    expect(panel.get_by_test_id("marginal-default")).to_contain_text(
        f"2 failures in the last 4 reviews, {latest['new_modes']} of them unlike any failure found before"
    )
    assert report["topics"] == []  # a handful of outputs: too few for two topics
    # Each app's and model's own rate: the hostile app's output was not reviewed, so it has none yet.
    groups = panel.get_by_test_id("groups-default")
    names = {(g["by"], g["name"]): g for g in report["groups"]}
    assert names["app", "hostile"]["reviews"] == 0 and names["app", "hostile"]["estimate"] is None
    assert sum(g["outputs"] for g in report["groups"] if g["by"] == "app") == report["stats"]["outputs"]
    expect(groups.locator("tbody tr")).to_have_count(len(report["groups"]))
    expect(groups.locator("tbody tr", has_text="hostile")).to_contain_text("not available yet")
    screenshot(ana, "dashboard")
    assert workbench.page_errors == []
