"""A real browser (Debian's Chromium through Playwright) on the real preference centre.

Screenshots land in ``test-artifacts/preference_centre/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest

from preference_centre.store import CustomerState
from tests.pc_fixtures import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveCentre,
    have_chromium,
    live_centre,
    open_form,
    preferences_link,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("preference_centre_browser"),
    pytest.mark.skipif(not have_chromium(), reason=f"{CHROMIUM} missing (scripts/bootstrap --browser installs it)"),
]

CUSTOMERS = [("b-en", "en"), ("b-zh", "zh-CN"), ("b-hu", "hu"), ("b-unsub", "hu"), ("b-victim", "en")]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def centre(tmp_path_factory) -> Iterator[LiveCentre]:
    with live_centre(tmp_path_factory.mktemp("pc_browser"), CUSTOMERS) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(
    ("customer", "lang", "choice", "confirmation"),
    [
        ("b-en", "en", "monthly", "Saved."),
        ("b-zh", "zh-CN", "yearly", "已保存。"),
        ("b-hu", "hu", "yearly", "Mentve."),
    ],
)
def test_customer_changes_frequency_in_the_browser(centre: LiveCentre, page, customer, lang, choice, confirmation):
    page.goto(preferences_link(centre, customer))
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("input[value=weekly]").is_checked()  # the current choice is pre-selected
    shot(page, f"preferences-{lang}")
    page.locator(f"label.option:has(input[value={choice}])").click()
    page.locator("button[type=submit]").click()
    page.wait_for_url("**done=saved*")
    assert confirmation in page.locator(".flash.ok").inner_text()
    assert page.locator(f"input[value={choice}]").is_checked()
    shot(page, f"preferences-saved-{lang}")
    assert centre.store.state(customer) == CustomerState(choice)
    assert [(c.new, c.source) for c in centre.store.changes(customer)] == [(choice, "page")]
    assert page.problems == []  # no CSP violations, no script errors


def test_desktop_layout(centre: LiveCentre, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(preferences_link(centre, "b-en") + "?lang=en")
    box = page.locator("main.card").bounding_box()
    assert box and box["width"] <= 560 and box["x"] > 300  # a centred card, not a stretched form
    shot(page, "preferences-desktop-en")
    context.close()


def test_unsubscribe_page_then_one_click_then_opt_back_in(centre: LiveCentre, page):
    page.goto(centre.unsubscribe_url("b-unsub"))
    shot(page, "unsubscribe-hu")
    assert centre.store.changes("b-unsub") == []  # opening the link changes nothing
    page.locator("button.danger").click()
    page.wait_for_selector(".done")
    assert "Sikeresen leiratkoztál" in page.locator("h1").inner_text()
    shot(page, "unsubscribed-hu")
    assert centre.store.state("b-unsub").suppression == "unsubscribed"

    page.locator(".aside a").click()  # "changed your mind?"
    page.wait_for_selector("button[value=resubscribe]")
    shot(page, "resubscribe-hu")
    page.locator("label.option:has(input[value=monthly])").click()
    page.locator("button[value=resubscribe]").click()
    page.wait_for_url("**done=resubscribed*")
    assert "Örülünk" in page.locator(".flash.ok").inner_text()
    assert centre.store.state("b-unsub") == CustomerState("monthly", None)
    assert [c.source for c in centre.store.changes("b-unsub")] == ["one_click", "page", "page"]
    assert page.problems == []


def test_forged_cross_site_form_post_is_refused(centre: LiveCentre, page):
    """An attacker who knows the victim's link hosts a form that posts to it; the victim submits it."""
    link = preferences_link(centre, "b-victim")
    page.goto(link)  # the victim has a nonce cookie of their own
    with httpx.Client() as attacker:
        attacker_csrf = open_form(attacker, link)  # a genuine CSRF token, for the attacker's cookie
    evil = f"""<!doctype html><title>win a prize</title>
        <form method="post" action="{html.escape(link)}">
          <input type="hidden" name="csrf" value="{html.escape(attacker_csrf)}">
          <input type="hidden" name="frequency" value="never">
          <input type="hidden" name="action" value="save">
          <button id="go">Claim</button>
        </form>"""
    page.context.route("http://attacker.test/**", lambda route: route.fulfill(body=evil, content_type="text/html"))
    page.goto("http://attacker.test/")
    page.locator("#go").click()
    page.wait_for_load_state()
    assert "Please try again" in page.locator("h1").inner_text()
    shot(page, "csrf-refused-en")
    assert centre.store.changes("b-victim") == []
    assert centre.store.frequency("b-victim") == "weekly"
