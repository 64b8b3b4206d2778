"""A reviewer works the queue by keyboard in a real browser: claim, pass, fail, correct, undo."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from service.settings import QueueConfig
from service.storage.tables import Output
from tests.browser.conftest import Workbench, on_item, screenshot


def test_a_reviewer_signs_in_and_clears_an_easy_item_in_two_keystrokes(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    page = workbench.sign_in("ana")
    # Signing in lands on the dashboard; the queues are one link away.
    expect(page).to_have_url(re.compile(r"/ui/dashboard$"))
    page.get_by_role("link", name="Queues").click()
    expect(page.get_by_test_id("waiting-default")).to_have_text(str(len(workbench.items)))
    screenshot(page, "queues")
    page.get_by_role("link", name="default", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/queues/default$"))
    screenshot(page, "queue")

    page.keyboard.press("Enter")
    on_item(page, first)
    expect(page.get_by_test_id("claim")).to_contain_text("Yours until")
    expect(page.get_by_test_id("p-fail")).to_have_text("0.93")
    # no learned model yet: the score is a cold-start rank, never called a probability
    expect(page.locator(".pfail")).to_contain_text("cold-start rank")
    # the highest of the seeded scores: the top share of the scored outputs (1 of 9 here)
    expect(page.get_by_test_id("rank-share")).to_have_text("top 11% of recent traffic")
    expect(page.locator(".pfail")).not_to_contain_text("p_fail")
    screenshot(page, "item")
    page.keyboard.press("p")

    on_item(page, second)
    expect(page.get_by_test_id("recorded")).to_contain_text("Recorded pass")
    expect(page.get_by_test_id("claim")).to_contain_text("Yours until")
    stored = workbench.output(first)
    assert stored["status"] == "reviewed"
    assert [(r["verdict"], r["reviewer"], r["categories"], r["correction"]) for r in stored["reviews"]] == [
        ("pass", "ana", [], None)
    ]
    assert workbench.output(second)["status"] == "queued"


def test_the_item_page_shows_why_it_was_flagged(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", f"/ui/outputs/{workbench.items[0]}")
    why = page.locator("section.why")
    expect(why).to_contain_text("p_fail 0.93")
    expect(why).to_contain_text("uncertain: p_fail 0.93, samples disagree with the response")
    # The drivers read as the reasons write them, each with its evidence and its percentile.
    expect(why.locator(".drivers li")).to_have_text(
        [
            "other samples disagree with it (dispersion 0.62, 94th percentile)",
            "unlike recent traffic (cosine distance 0.31 to its nearest outputs, 81st percentile)",
        ]
    )
    samples = page.locator(".sample")
    expect(samples).to_have_count(2)
    expect(samples.nth(0)).to_have_class(re.compile(r"\bagrees\b"))
    expect(samples.nth(1)).to_have_class(re.compile(r"\bdiffers\b"))
    # Its cluster's members are listed, the one that was not picked too.
    members = page.get_by_test_id("cluster-members").locator("li")
    expect(members).to_have_count(2)
    expect(members.nth(0)).to_contain_text("0.79")
    expect(members.nth(1)).to_contain_text("Christopher Marlowe wrote Hamlet")
    similar = page.get_by_test_id("similar").locator("li")
    expect(similar).to_have_count(1)
    expect(similar).to_contain_text("fail")
    expect(similar).to_contain_text("cosine 0.87")
    expect(similar).to_contain_text("factual_error")  # what the reviewer found wrong with it


def test_failing_with_categories_by_keyboard_stores_them(workbench: Workbench) -> None:
    first = workbench.items[0]
    taxonomy = workbench.settings.failure_categories
    page = workbench.signed_in("ana", "/ui/queues/default")
    page.keyboard.press("Enter")
    on_item(page, first)
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("3")
    page.keyboard.press("2")
    expect(page.locator("[data-category-key]:checked")).to_have_count(2)
    page.keyboard.press("f")

    on_item(page, workbench.items[1])
    expect(page.get_by_test_id("recorded")).to_contain_text("Recorded fail")
    (stored,) = workbench.output(first)["reviews"]
    assert (stored["verdict"], stored["categories"]) == ("fail", [taxonomy[0], taxonomy[1]])
    # The editor was never touched: its prefilled original is no correction.
    assert stored["correction"] is None


def test_failing_with_a_correction_by_keyboard_stores_it(workbench: Workbench) -> None:
    first = workbench.items[0]
    original = workbench.output(first)["response"]
    corrected = "The correct answer, written by the reviewer."
    page = workbench.signed_in("ana", "/ui/queues/default")
    page.keyboard.press("Enter")
    on_item(page, first)

    page.keyboard.press("e")
    editor = page.get_by_label("Corrected response")
    expect(editor).to_be_focused()
    expect(editor).to_have_value(original)
    page.keyboard.press("Control+a")
    page.keyboard.type(corrected)
    page.keyboard.press("Control+Enter")

    on_item(page, workbench.items[1])
    expect(page.get_by_test_id("recorded")).to_contain_text("Recorded fail")
    (stored,) = workbench.output(first)["reviews"]
    assert (stored["verdict"], stored["correction"], stored["reviewer"]) == ("fail", corrected, "ana")

    # Back to the corrected item (k): the page shows the stored correction.
    page.keyboard.press("k")
    on_item(page, first)
    expect(page.get_by_test_id("reviews")).to_contain_text("fail by ana")
    expect(page.locator(".correction-text")).to_have_text(corrected)
    expect(page.locator("#verdict")).to_have_count(0)


def test_a_note_typed_after_n_is_stored_with_the_verdict(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", "/ui/queues/default")
    page.keyboard.press("Enter")
    on_item(page, workbench.items[0])
    page.keyboard.press("n")
    expect(page.get_by_label("Note")).to_be_focused()
    page.keyboard.type("pass fail keys are ignored while typing")
    page.keyboard.press("Escape")
    page.keyboard.press("p")

    on_item(page, workbench.items[1])
    (stored,) = workbench.output(workbench.items[0])["reviews"]
    assert (stored["verdict"], stored["note"]) == ("pass", "pass fail keys are ignored while typing")


def test_undo_takes_back_the_last_verdict(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    page = workbench.signed_in("ana", "/ui/queues/default")
    page.keyboard.press("Enter")
    on_item(page, first)
    page.keyboard.press("p")
    on_item(page, second)
    assert workbench.output(first)["status"] == "reviewed"

    page.keyboard.press("u")
    on_item(page, first)
    expect(page.get_by_test_id("undone")).to_be_visible()
    expect(page.get_by_test_id("claim")).to_contain_text("Yours until")
    taken_back = workbench.output(first)
    assert (taken_back["status"], taken_back["reviews"]) == ("queued", [])

    # The item is open again: judge it afresh.
    page.keyboard.press("f")
    on_item(page, second)
    assert [r["verdict"] for r in workbench.output(first)["reviews"]] == ["fail"]


def test_undo_brings_back_the_categories_note_and_correction_to_fix_them(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    page = workbench.signed_in("ana", f"/ui/outputs/{first}")
    page.keyboard.press("1")
    page.keyboard.press("n")
    page.keyboard.type("wrong year")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("It opened in 1889.")
    page.keyboard.press("Control+Enter")
    on_item(page, second)
    (stored,) = workbench.output(first)["reviews"]
    page.keyboard.press("u")
    on_item(page, first)
    expect(page.get_by_test_id("undone")).to_be_visible()
    checked = page.locator('input[name="categories"]:checked')
    expect(checked).to_have_count(len(stored["categories"]))
    expect(page.get_by_label("Note")).to_have_value("wrong year")
    expect(page.get_by_label("Corrected response")).to_have_value("It opened in 1889.")
    # fixing one thing and saving keeps the rest of what was typed
    page.keyboard.press("e")
    page.keyboard.press("Control+Enter")
    on_item(page, second)
    (again,) = workbench.output(first)["reviews"]
    assert (again["categories"], again["note"], again["correction"]) == (
        stored["categories"],
        "wrong year",
        "It opened in 1889.",
    )


def test_j_and_k_walk_the_queue_without_a_verdict(workbench: Workbench) -> None:
    first, second, third = workbench.items[:3]
    page = workbench.signed_in("ana", f"/ui/outputs/{first}")
    page.keyboard.press("j")
    on_item(page, second)
    page.keyboard.press("j")
    on_item(page, third)
    page.keyboard.press("k")
    on_item(page, second)
    # walking on gave it back: it is open to anyone again, and looking does not claim it
    expect(page.get_by_test_id("free")).to_contain_text("Nobody holds this item")
    assert all(workbench.output(i)["reviews"] == [] for i in (first, second, third))


def test_help_overlay_lists_the_keys(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", f"/ui/outputs/{workbench.items[0]}")
    overlay = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(overlay).to_be_hidden()
    page.keyboard.press("?")
    expect(overlay).to_be_visible()
    keys = overlay.locator("kbd")
    for key in ("Enter", "p", "f", "1", "9", "e", "Ctrl", "n", "s", "u", "j", "k", "?", "Esc"):
        expect(keys.filter(has_text=re.compile(rf"^{re.escape(key)}$"))).not_to_have_count(0)
    screenshot(page, "help", full_page=False)  # the overlay covers the window
    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()
    # The header's ? button opens it for people who use the mouse.
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(overlay).to_be_visible()
    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()


def test_similar_past_items_are_shown_only_when_alike_and_still_reviewed(workbench: Workbench) -> None:
    first = workbench.items[0]
    with workbench.sessions() as session, session.begin():
        output = session.get(Output, first)
        assert output is not None
        # the hostile item is very alike but was never reviewed; the past one is too far apart
        output.similar = [
            {"id": workbench.xss, "similarity": 0.95},
            {"id": workbench.past, "similarity": 0.3},
        ]
    page = workbench.signed_in("ana", f"/ui/outputs/{first}")
    on_item(page, first)
    expect(page.get_by_role("heading", name="Similar past items")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("cosine 0.30")


def test_the_posted_metadata_is_a_table_with_routing_keys_marked(
    start_workbench: Callable[..., Workbench],
) -> None:
    queues = [
        QueueConfig(name="vip", metadata={"tier": "gold"}),
        QueueConfig(name="default", budget_per_day=50),
    ]
    workbench = start_workbench(queues=queues)
    first = workbench.items[0]
    with workbench.sessions() as session, session.begin():
        output = session.get(Output, first)
        assert output is not None
        output.meta = {"tier": "gold", "ticket": "T-4711", "retrieval": {"k": 5}, "note": "<b>not bold</b>"}
    page = workbench.signed_in("ana", f"/ui/outputs/{first}")
    table = page.get_by_test_id("metadata")
    expect(table.locator("tr")).to_have_count(4)
    expect(table.locator("tr.routing th")).to_have_text("tier routes")
    expect(table.locator("tr", has_text="ticket").locator("td")).to_have_text("T-4711")
    expect(table.locator("tr", has_text="retrieval").locator("td")).to_have_text('{"k": 5}')
    expect(table.locator("tr", has_text="note").locator("td")).to_have_text("<b>not bold</b>")  # escaped text
    screenshot(page, "item-metadata")


def test_a_filtered_queue_is_walked_within_its_filter(workbench: Workbench) -> None:
    billing = workbench.items[2]
    with workbench.sessions() as session, session.begin():
        output = session.get(Output, billing)
        assert output is not None
        output.app = "billing"
    page = workbench.signed_in("ana", "/ui/queues/default")
    filters = page.get_by_test_id("filters")
    filters.get_by_label("App").fill("billing")
    filters.get_by_role("button", name="Filter").click()
    expect(page.locator("main")).to_contain_text("1 match the filter")
    expect(page.locator("tr[data-row]")).to_have_count(1)
    screenshot(page, "queue-filtered")

    page.keyboard.press("Enter")  # the filter stays on while she walks the queue
    on_item(page, billing)
    page.keyboard.press("p")
    expect(page).to_have_url(re.compile(r"/ui/queues/default\?done=1"))
    expect(page.get_by_role("status")).to_contain_text("that this filter keeps")
    page.get_by_role("link", name="clear").click()
    expect(page.locator("tr[data-row]")).to_have_count(len(workbench.items) - 1)
