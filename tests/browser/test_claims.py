"""Two reviewers in two browsers: claims keep them apart, leases expire, skips hand items on."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Workbench, item_of, on_item, screenshot


def _finished(page: Page) -> bool:
    return "/ui/queues/default?done=1" in page.url


def test_two_reviewers_are_never_shown_the_same_item(workbench: Workbench) -> None:
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ben = workbench.signed_in("ben", "/ui/queues/default")
    seen: dict[str, list[str]] = {"ana": [], "ben": []}
    # Both start at the same moment, then pass item after item as fast as the pages come back.
    ana.keyboard.press("Enter")
    ben.keyboard.press("Enter")
    walking = {"ana": ana, "ben": ben}
    while walking:
        for name, page in list(walking.items()):
            expect(page).to_have_url(re.compile(r"/ui/outputs/[0-9a-f]+|/ui/queues/default\?done=1$"))
            if _finished(page):
                del walking[name]
                continue
            current = item_of(page)
            assert current not in seen[name], f"{name} was shown {current} twice"
            expect(page.get_by_test_id("claim")).to_contain_text("Yours until")
            seen[name].append(current)
        for page in walking.values():
            page.keyboard.press("p")
        for name, page in walking.items():
            expect(page).not_to_have_url(re.compile(rf"/ui/outputs/{seen[name][-1]}(\?|$)"))

    assert not set(seen["ana"]) & set(seen["ben"])
    assert sorted(seen["ana"] + seen["ben"]) == sorted(workbench.items)
    assert seen["ana"] and seen["ben"], "both reviewers worked the queue"
    for output_id in workbench.items:
        (only,) = workbench.output(output_id)["reviews"]
        assert only["reviewer"] == ("ana" if output_id in seen["ana"] else "ben")
    expect(ana.get_by_role("status")).to_contain_text("Nothing more is waiting for you")


def test_an_item_held_by_another_reviewer_says_so(workbench: Workbench) -> None:
    first = workbench.items[0]
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    on_item(ana, first)

    ben = workbench.signed_in("ben", "/ui/queues/default")
    expect(ben.locator(f'[data-href="/ui/outputs/{first}"] td').last).to_have_text("ana")
    ben.keyboard.press("Enter")
    expect(ben).not_to_have_url(re.compile(first))
    assert item_of(ben) == workbench.items[1]

    # Ben follows a link to ana's item: he is told who holds it and gets no verdict form.
    ben.goto(f"/ui/outputs/{first}")
    taken = ben.get_by_test_id("taken")
    expect(taken).to_contain_text("Taken by ana")
    expect(ben.locator("#verdict")).to_have_count(0)
    expect(ben.get_by_test_id("claim")).to_have_count(0)
    screenshot(ben, "item-taken")
    taken.get_by_role("link", name="Open another item").click()
    on_item(ben, workbench.items[1])


def test_looking_at_an_item_claims_nothing_and_c_keeps_it(workbench: Workbench) -> None:
    first = workbench.items[0]
    ana = workbench.signed_in("ana", f"/ui/outputs/{first}")
    expect(ana.get_by_test_id("free")).to_contain_text("looking does not claim it")
    ben = workbench.signed_in("ben", f"/ui/outputs/{first}")
    expect(ben.get_by_test_id("free")).to_be_visible()  # ana only looked: it is still free

    ana.keyboard.press("c")
    on_item(ana, first)
    expect(ana.get_by_test_id("claim")).to_contain_text("Yours until")
    ben.reload()
    expect(ben.get_by_test_id("taken")).to_contain_text("Taken by ana")
    expect(ben.locator("#verdict")).to_have_count(0)


def test_an_expired_lease_returns_the_item_to_the_queue(workbench: Workbench) -> None:
    first = workbench.items[0]
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    on_item(ana, first)
    expect(ana.get_by_test_id("claim")).to_contain_text("Yours until")
    ben = workbench.signed_in("ben", f"/ui/outputs/{first}")
    expect(ben.get_by_test_id("taken")).to_contain_text("Taken by ana")

    workbench.expire_claim(first)  # ana walked away; her lease ran out
    ben.reload()
    expect(ben.get_by_test_id("free")).to_be_visible()
    ben.keyboard.press("c")
    expect(ben.get_by_test_id("claim")).to_contain_text("Yours until")

    # Ana comes back to her open page and passes: refused, ben holds it now.
    ana.keyboard.press("p")
    expect(ana.locator("h1")).to_have_text("409 · conflict")
    expect(ana.locator("main")).to_contain_text("ben is reviewing this item")
    screenshot(ana, "verdict-refused")
    assert workbench.output(first)["reviews"] == []
    # Her address bar still names the item; reloading it says who has it now.
    ana.reload()
    on_item(ana, first)
    expect(ana.get_by_test_id("taken")).to_contain_text("Taken by ben")

    ben.keyboard.press("f")
    on_item(ben, workbench.items[1])
    assert [(r["verdict"], r["reviewer"]) for r in workbench.output(first)["reviews"]] == [("fail", "ben")]


def test_an_expired_lease_puts_the_item_back_in_the_next_reviewers_walk(workbench: Workbench) -> None:
    first = workbench.items[0]
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    on_item(ana, first)
    ben = workbench.signed_in("ben", "/ui/queues/default")

    workbench.expire_claim(first)
    ben.keyboard.press("Enter")
    on_item(ben, first)
    expect(ben.get_by_test_id("claim")).to_contain_text("Yours until")


def test_a_skipped_item_goes_to_someone_else(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    ana = workbench.signed_in("ana", "/ui/queues/default")
    ana.keyboard.press("Enter")
    on_item(ana, first)
    ana.keyboard.press("s")
    on_item(ana, second)

    ben = workbench.signed_in("ben", "/ui/queues/default")
    ben.keyboard.press("Enter")
    on_item(ben, first)
    expect(ben.get_by_test_id("claim")).to_contain_text("Yours until")
    assert workbench.output(first)["reviews"] == []
