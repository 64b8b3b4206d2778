"""What the workbench refuses: hostile model output stays text, viewers cannot judge, forms need
their CSRF token, and a signed-out browser is sent to the sign-in page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import XSS, Workbench, on_item, screenshot
from tests.conftest import PASSWORD


def _csrf(page: Page) -> str:
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token, "the page carries no CSRF token"
    return token


def _no_live_markup(page: Page) -> None:
    """Nothing the model wrote became an element: no inline script, no image, no handler."""
    main = page.locator("main")
    expect(main.locator("script")).to_have_count(0)
    expect(main.locator("img")).to_have_count(0)
    expect(page.locator("script:not([src])")).to_have_count(0)
    expect(page.locator("[onerror]")).to_have_count(0)
    expect(main.locator("b", has_text="bold")).to_have_count(0)


def test_model_output_is_inert_text_in_the_browser(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", "/ui/queues/default")
    row = page.locator(f'[data-href="/ui/outputs/{workbench.xss}"]')
    expect(row).to_contain_text('<script>alert("x")</script>')
    _no_live_markup(page)

    page.goto(f"/ui/outputs/{workbench.xss}")
    expect(page.get_by_test_id("response")).to_have_text(XSS)
    expect(page.locator(".left section").first.locator("pre")).to_have_text(XSS)
    samples = page.locator(".sample pre")
    expect(samples).to_have_text([XSS, "<b>bold</b> & <i>friends</i>"])
    expect(page.get_by_label("Corrected response")).to_have_value(XSS)
    _no_live_markup(page)
    screenshot(page, "item-hostile")

    # The reviewer's own note and correction echo the payload: they stay text as well.
    page.keyboard.press("n")
    page.keyboard.type(XSS)
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type(XSS + " fixed")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("recorded")).to_be_visible()
    page.goto(f"/ui/outputs/{workbench.xss}")
    expect(page.get_by_test_id("reviews")).to_contain_text(XSS)
    expect(page.locator(".correction-text")).to_have_text(XSS + " fixed")
    _no_live_markup(page)
    (stored,) = workbench.output(workbench.xss)["reviews"]
    assert (stored["note"], stored["correction"]) == (XSS, XSS + " fixed")
    assert workbench.dialogs == [], "the payload ran"


def test_a_viewer_cannot_record_verdicts(workbench: Workbench) -> None:
    first = workbench.items[0]
    page = workbench.signed_in("vic", "/ui/queues/default")
    expect(page.get_by_role("link", name=re.compile("Start reviewing"))).to_have_count(0)
    page.keyboard.press("Enter")

    page.goto(f"/ui/outputs/{first}")
    expect(page.get_by_test_id("response")).to_be_visible()
    expect(page.locator("#verdict")).to_have_count(0)
    expect(page.get_by_test_id("claim")).to_have_count(0)
    expect(page.locator('[data-key="u"], [data-key="s"], [data-key="j"]')).to_have_count(0)
    page.keyboard.press("p")
    page.keyboard.press("f")

    # Forged requests with the viewer's own cookie and CSRF token are refused too.
    token = _csrf(page)
    for path, form in [
        (f"/ui/outputs/{first}/review", {"verdict": "pass"}),
        (f"/ui/outputs/{first}/skip", {}),
        ("/ui/undo", {}),
    ]:
        refused = page.request.post(path, form={**form, "csrf_token": token}, max_redirects=0)
        assert refused.status == 403, (path, refused.status)
        assert refused.json()["error"]["code"] == "forbidden"
    api = page.request.post(
        "/v1/reviews", data={"output_id": first, "verdict": "pass"}, headers={"X-CSRF-Token": token}
    )
    assert api.status == 403 and api.json()["error"]["code"] == "forbidden"

    page.goto("/ui/queues/default/next")
    expect(page.locator("h1")).to_have_text("403 · forbidden")
    expect(page.locator("main")).to_contain_text("role 'viewer' may not review")
    screenshot(page, "viewer-refused")
    stored = workbench.output(first)
    assert (stored["status"], stored["reviews"]) == ("queued", [])


def test_forms_without_the_csrf_token_are_refused(workbench: Workbench) -> None:
    first = workbench.items[0]
    page = workbench.signed_in("ana", f"/ui/outputs/{first}")
    expect(page.get_by_test_id("free")).to_be_visible()

    # A page whose tokens were stripped (as a cross-site form would lack them) cannot post.
    page.evaluate(
        """() => {
            document.querySelectorAll('input[name="csrf_token"]').forEach((e) => e.remove());
            const headers = JSON.parse(document.body.getAttribute("hx-headers"));
            delete headers["X-CSRF-Token"];
            document.body.setAttribute("hx-headers", JSON.stringify(headers));
        }"""
    )
    page.keyboard.press("p")
    expect(page.locator("h1")).to_have_text("403 · csrf_failed")
    assert workbench.output(first)["reviews"] == []

    page.goto(f"/ui/outputs/{first}")
    token = _csrf(page)
    missing = page.request.post(f"/ui/outputs/{first}/review", form={"verdict": "pass"}, max_redirects=0)
    wrong = page.request.post(
        f"/ui/outputs/{first}/review", form={"verdict": "pass", "csrf_token": token[::-1]}, max_redirects=0
    )
    assert (missing.status, wrong.status) == (403, 403)
    assert missing.json()["error"]["code"] == wrong.json()["error"]["code"] == "csrf_failed"
    assert workbench.output(first)["reviews"] == []
    # The same request with the page's token goes through: the token was all that was missing.
    sent = page.request.post(
        f"/ui/outputs/{first}/review", form={"verdict": "pass", "csrf_token": token}, max_redirects=0
    )
    assert sent.status == 303
    assert [r["verdict"] for r in workbench.output(first)["reviews"]] == ["pass"]

    # The sign-in form is protected too (a double-submit token, as there is no session yet).
    stranger = workbench.open()
    forged = stranger.request.post(
        f"{workbench.url}/ui/login", form={"username": "ana", "password": PASSWORD}, max_redirects=0
    )
    assert forged.status == 403 and "rr_session" not in forged.headers.get("set-cookie", "")


def test_a_signed_out_browser_is_sent_to_sign_in_and_back(workbench: Workbench) -> None:
    page = workbench.open()
    page.goto("/ui/queues/default")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/queues/default$"))
    expect(page.get_by_label("Username")).to_be_focused()
    screenshot(page, "login")

    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_test_id("who")).to_have_count(0)
    screenshot(page, "login-refused")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/queues/default$"))
    expect(page.get_by_test_id("who")).to_contain_text("ana · reviewer")
    page.keyboard.press("Enter")
    on_item(page, workbench.items[0])

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(f"/ui/outputs/{workbench.items[0]}")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))


def test_the_pages_policy_blocks_script_that_did_not_come_from_the_server(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", "/ui/queues/default")
    response = page.request.get("/ui/queues/default")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    # Even if markup ever slipped through, an inline script would not run (and an inline handler
    # would not either); the page's own scripts still work: the keyboard moves the selection.
    ran = page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__injected = 1';
            document.body.appendChild(s);
            const img = document.createElement('img');
            img.setAttribute('onerror', 'window.__handler = 1');
            img.src = 'data:,x';
            document.body.appendChild(img);
            return new Promise(r => setTimeout(() => r([window.__injected, window.__handler]), 300));
        }"""
    )
    assert ran == [None, None]
    expect(page.locator("body")).to_have_attribute("hx-boost", "true")
    assert page.evaluate("() => typeof window.htmx") == "object"  # the vendored script is allowed


def test_pages_have_an_icon_and_log_no_404_for_it(workbench: Workbench) -> None:
    page = workbench.signed_in("ana", "/ui/")
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.reload()
    page.wait_for_load_state("networkidle")
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon == "/ui/static/favicon.svg"
    assert page.request.get(icon).headers["content-type"].startswith("image/svg+xml")
    assert page.request.get("/favicon.ico").status == 200  # followed to the icon
    assert missing == []
