"""Quality control and administration in the browser: a blind second review, adjudication, the
agreement page, and accounts and API keys on the admin page."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.browser.conftest import Workbench, on_item, screenshot
from tests.conftest import PASSWORD


def test_a_second_reviewer_judges_blind_and_an_admin_settles_the_disagreement(
    start_workbench: Callable[..., Workbench],
) -> None:
    workbench = start_workbench(qc_share=1.0)
    first = workbench.items[0]
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    on_item(ana, first)
    ana.keyboard.press("1")
    ana.keyboard.press("f")
    on_item(ana, workbench.items[1])

    ben = workbench.signed_in("ben", "/ui/queues/default")
    ben.keyboard.press("Enter")
    on_item(ben, first)  # waiting second reviews come first
    expect(ben.get_by_test_id("claim")).to_contain_text("Second review")
    expect(ben.get_by_test_id("reviews")).to_have_count(0)
    expect(ben.locator("main")).not_to_contain_text("by ana")
    ben.keyboard.press("p")
    expect(ben.get_by_test_id("recorded")).to_contain_text("Recorded pass")

    ada = workbench.signed_in("ada", "/ui/")
    ada.get_by_role("link", name="1 disagreement waiting for adjudication").click()
    dispute = ada.get_by_test_id("dispute")
    expect(dispute).to_have_count(1)
    expect(dispute.locator(".reviews li")).to_have_text(
        [re.compile(r"^fail by ana\s+primary · factual_error$"), re.compile(r"^pass by ben\s+qc$")]
    )
    screenshot(ada, "adjudication")
    dispute.get_by_label("factual error").check()
    dispute.get_by_role("button", name="Rule fail").click()
    expect(ada.get_by_text("No disagreements are waiting.")).to_be_visible()
    kinds = [(r["kind"], r["verdict"], r["reviewer"]) for r in workbench.output(first)["reviews"]]
    assert sorted(kinds) == [
        ("adjudication", "fail", "ada"),
        ("primary", "fail", "ana"),
        ("qc", "pass", "ben"),
    ]

    ada.get_by_role("link", name="Quality").click()
    overall = ada.get_by_test_id("qc-overall")
    rows = overall.locator("tbody tr")
    expect(rows.nth(0).locator("td")).to_have_text(["All double reviews", "1", "0", "0%", "0.00"])
    expect(rows.nth(1).locator("td")).to_have_text(["ana & ben", "1", "0", "0%", "0.00"])
    screenshot(ada, "qc")


def test_an_admin_adds_a_reviewer_creates_a_key_and_deactivates_the_reviewer(workbench: Workbench) -> None:
    ada = workbench.signed_in("ada", "/ui/admin")
    ada.get_by_label("New username").fill("cy")
    ada.get_by_label("New password").fill(PASSWORD)
    ada.get_by_label("New role").select_option("reviewer")
    ada.get_by_role("button", name="Add account").click()
    row = ada.locator("tr", has=ada.locator("td", has_text=re.compile(r"^cy$")))
    expect(row).to_contain_text("reviewer")

    ada.get_by_label("Application name").fill("support-bot")
    ada.get_by_role("button", name="Create API key").click()
    shown = ada.get_by_test_id("new-key")
    expect(shown).to_contain_text("support-bot")
    key = shown.locator("pre").inner_text().strip()
    assert key and ada.locator("tr", has_text="support-bot").locator("code").inner_text().rstrip("…") in key
    screenshot(ada, "admin")
    # The key is shown once: reloading the page shows the admin page without it (and posts nothing).
    expect(ada).to_have_url(re.compile(r"/ui/admin$"))
    ada.reload()
    expect(ada.locator("h1")).to_have_text("Accounts and API keys")
    expect(ada.get_by_test_id("new-key")).to_have_count(0)
    expect(ada.locator("tr", has_text="support-bot")).to_have_count(1)
    expect(ada.locator("main")).not_to_contain_text(key)

    cy = workbench.sign_in("cy")
    expect(cy.get_by_test_id("who")).to_contain_text("cy · reviewer")

    row.get_by_label("Active").select_option("no")
    row.get_by_role("button", name="Save").click()
    expect(ada.locator("tr", has=ada.locator("td", has_text=re.compile(r"^cy$")))).to_contain_text("no")
    cy.goto("/ui/queues/default")
    expect(cy).to_have_url(re.compile(r"/ui/login\?next="))
