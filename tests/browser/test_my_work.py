"""A reviewer's own work in a real browser: their verdicts with filters, today's and this week's
counts, what is left of the day, and revising a past verdict from its item page with the history kept."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Workbench, on_item, screenshot


def test_a_reviewer_finds_a_past_verdict_in_my_work_and_revises_it(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    page = workbench.signed_in("ana", "/ui/queues/default")
    page.keyboard.press("Enter")
    on_item(page, first)
    page.keyboard.press("f")
    on_item(page, second)
    page.keyboard.press("p")
    on_item(page, workbench.items[2])

    page.get_by_role("link", name="My work").click()
    expect(page.get_by_test_id("my-counts")).to_contain_text("today 2")
    expect(page.get_by_test_id("my-counts")).to_contain_text("this week 2")
    budget = page.get_by_test_id("budgets").locator("tbody tr")
    expect(budget).to_have_count(1)
    expect(budget.locator("td")).to_have_text(["default", "5", "2", "50", "48"])
    rows = page.get_by_test_id("my-reviews").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("pass")  # newest first
    screenshot(page, "my-work")

    # Only the fails: the first item's verdict, which the reviewer now thinks was wrong.
    page.get_by_label("Verdict").select_option("fail")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    rows.nth(0).get_by_role("link").click()
    on_item(page, first)
    revise = page.get_by_test_id("revise")
    revise.get_by_text("Revise the verdict").click()
    revise.get_by_label("Why it is revised").fill("the date was right after all")
    revise.get_by_role("button", name="Revise to pass").click()
    on_item(page, first)
    expect(page.get_by_test_id("revised")).to_contain_text("Verdict revised to pass")
    history = page.get_by_test_id("reviews").locator("li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("fail by ana")
    expect(history.nth(1)).to_contain_text("pass by ana")
    expect(history.nth(1)).to_contain_text("revision")
    expect(history.nth(1)).to_contain_text("the date was right after all")
    screenshot(page, "revised")
    stored = workbench.output(first)
    assert [(r["kind"], r["verdict"]) for r in stored["reviews"]] == [
        ("primary", "fail"),
        ("revision", "pass"),
    ]

    page.goto("/ui/my-work?period=today")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("revised since")  # the first verdict, replaced


def test_someone_who_gave_no_verdict_is_not_offered_a_revision(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", f"/ui/outputs/{workbench.past}")
    expect(page.get_by_test_id("reviews").locator("li")).to_have_count(1)  # rosa's verdict
    expect(page.get_by_test_id("revise")).to_have_count(0)
