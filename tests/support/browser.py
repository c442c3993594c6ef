"""Shared pieces of the browser tests: Debian's Chromium through Playwright against the live server.

Never run `playwright install`: the tests drive the system Chromium and skip when it is absent.
A browser test module takes what it needs, e.g.

    from tests.support import browser as bs
    pytestmark = bs.BROWSER_MARKS
    media_root, media_through_our_view, browser, page = bs.media_root, bs.media_through_our_view, bs.browser, bs.page

(fixtures bound to module names are found by pytest like fixtures defined there).
"""

from pathlib import Path

import pytest
from django.db import connections

from tests.support.factories import verify_email
from tests.support.media import own_media_root_for_every_test as media_root  # noqa: F401 -- bound by the modules
from tests.support.paths import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture(autouse=True)
def media_through_our_view(monkeypatch):
    """Let our Range-aware media view answer /media/, as it does in the product.

    Django's live server puts its own media handler (`static.serve`, which ignores Range) in front
    of the URLconf; without this the test would check Django's handler instead of ours.
    """
    from django.test.testcases import _MediaFilesHandler

    monkeypatch.setattr(_MediaFilesHandler, "_should_handle", lambda self, path: False)


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def is_csp_violation(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


def new_page(browser):
    """A page in a fresh context (its own cookies: one signed-in person), collecting script errors in `js_errors`
    and what the Content-Security-Policy blocked (Chromium's console reports) in `csp_violations`."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    violations: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda message: violations.append(f"{page.url}: {message.text}") if is_csp_violation(message.text) else None,
    )
    page.js_errors = errors
    page.csp_violations = violations
    return page


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    violations = list(page.csp_violations)
    page.context.close()
    # The live server's threads leave their database connections open; close them so the test
    # database can be dropped cleanly on PostgreSQL.
    connections.close_all()
    # Every browser test runs under the site's policy: anything it blocked is a broken page.
    assert not violations, f"the Content-Security-Policy blocked: {violations}"


def log_in(page, base_url, username, password):
    verify_email(username)
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", username)  # allauth's field: a username or an email address
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator(".site-nav__user").inner_text() == username


def wait_for_images(page, selector):
    """Scroll every image into view (they load lazily) and wait until each has decoded pixels."""
    images = page.locator(selector)
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(img => img.complete && img.naturalWidth > 0)", arg=selector
    )
    return page.eval_on_selector_all(selector, "imgs => imgs.map(img => img.naturalWidth)")


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of a full-page shot
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
