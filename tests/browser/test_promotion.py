"""Reviewed failures become assets: a verdict given in the browser reaches its export."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import Workbench, on_item, screenshot
from tests.conftest import credentials_in


def admin_client(workbench: Workbench) -> httpx.Client:
    headers = credentials_in(workbench.sessions, "admin", "curator")
    return httpx.Client(base_url=workbench.url, headers=headers, timeout=10)


def test_a_correction_typed_in_the_browser_lands_in_the_fine_tuning_export(workbench: Workbench) -> None:
    first, second = workbench.items[:2]
    with admin_client(workbench) as admin:
        made = admin.post("/v1/collections", json={"name": "corrections", "kind": "finetune_set"})
        assert made.status_code == 201, made.text
        rule = {
            "name": "corrected-failures",
            "collection": "corrections",
            "condition": {"verdict": "fail", "has_correction": True},
        }
        assert admin.post("/v1/promotion-rules", json=rule).status_code == 201

        page = workbench.signed_in("ana", "/ui/queues/default")
        page.keyboard.press("Enter")
        on_item(page, first)
        page.keyboard.press("e")
        editor = page.locator("[data-editor]")
        expect(editor).to_be_focused()
        editor.fill("Corrected: the answer, with its source.")
        page.keyboard.press("Control+Enter")
        on_item(page, second)

        export = admin.get(
            "/v1/collections/corrections/versions/latest/export", params={"format": "openai-chat"}
        )
        assert export.status_code == 200, export.text
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert len(lines) == 1
        messages = lines[0]["messages"]
        assert messages[-1] == {"role": "assistant", "content": "Corrected: the answer, with its source."}
        asked = workbench.output(first)["messages"][0]["content"]
        assert any(m["role"] == "user" and m["content"] == asked for m in messages)

        # Undoing the verdict withdraws it: the next version no longer holds it.
        page.keyboard.press("u")
        on_item(page, first)
        expect(page.get_by_test_id("undone")).to_be_visible()
        after = admin.get(
            "/v1/collections/corrections/versions/latest/export", params={"format": "openai-chat"}
        )
        assert after.status_code == 200 and after.text.strip() == ""


def test_a_reviewer_promotes_an_item_by_hand_from_its_page(workbench: Workbench) -> None:
    with admin_client(workbench) as admin:
        made = admin.post("/v1/collections", json={"name": "support-regressions", "kind": "eval_suite"})
        assert made.status_code == 201, made.text
        page = workbench.signed_in("ana", f"/ui/outputs/{workbench.items[0]}")
        # no verdict yet: nothing to promote (the verdict is what a collection keeps)
        expect(page.get_by_test_id("promote")).to_have_count(0)
        page.keyboard.press("2")  # hallucination
        page.keyboard.press("f")
        on_item(page, workbench.items[1])
        page.goto(f"/ui/outputs/{workbench.items[0]}")
        promote = page.get_by_test_id("promote")
        promote.get_by_label("collection").select_option("support-regressions")
        promote.get_by_role("button", name="Promote").click()
        expect(page.get_by_test_id("promoted")).to_be_visible()
        screenshot(page, "item-promoted")
        page.goto("/ui/collections/support-regressions")
        expect(page.locator("main")).to_contain_text("support-regressions")
        screenshot(page, "collection")
        export = admin.get(
            "/v1/collections/support-regressions/versions/latest/export", params={"format": "eval-jsonl"}
        )
        [line] = [json.loads(x) for x in export.text.splitlines()]
        assert line["categories"] == ["hallucination"] and line["metadata"]["output_id"] == workbench.items[0]


def test_the_collection_pages_fit_their_content_and_say_what_is_missing(workbench: Workbench) -> None:
    page = workbench.signed_in("ada", "/ui/collections")
    # no collection yet: the form to make one comes first, and no rule can be pointed at nothing
    forms = page.locator("h2")
    expect(forms.filter(has_text="New collection")).to_have_count(1)
    headings = [h for h in forms.all_inner_texts() if h in ("New collection", "New rule")]
    assert headings == ["New collection", "New rule"]
    expect(page.get_by_test_id("new-rule")).to_contain_text("create one above first")
    expect(page.locator('select[name="collection"]')).to_have_count(0)

    first = workbench.items[0]
    with admin_client(workbench) as admin:
        assert admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"}).status_code == 201
        assert (
            admin.post("/v1/collections", json={"name": "tuning", "kind": "finetune_set"}).status_code == 201
        )
        reviewer = credentials_in(workbench.sessions, "reviewer", "rev")
        admin.post(
            "/v1/reviews",
            json={"output_id": first, "verdict": "fail", "correction": "x " * 200},
            headers=reviewer,
        )
        promoted = admin.post(
            "/v1/collections/suite/promotions", json={"output_ids": [first]}, headers=reviewer
        )
        assert promoted.status_code in (200, 201), promoted.text
        assert admin.post("/v1/collections/suite/versions", json={}, headers=reviewer).status_code == 201
    page.goto("/ui/collections/suite")
    # the fine-tuning set exists but has no version: said as it is
    expect(page.get_by_test_id("held-back")).to_contain_text("tuning has no version yet")
    ideal = page.locator('table[data-testid="items"] td').nth(2)
    assert ideal.bounding_box()["width"] > 150, "the ideal answer has room to be read"  # type: ignore[index]
    screenshot(page, "collection-page")
