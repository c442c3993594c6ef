"""The Content-Security-Policy in a real browser: every main page, the API docs and the admin pin panel load
with nothing blocked (Chromium reports each blocked script, style or image on the console), on the demo data,
which has something on every page (extracted clips, a decided vote, a locked character, a pin, a generated clip).
Never `playwright install`."""

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from characters.models import Character, Clip, Story
from generation.models import GenerationJob
from tests.support import browser as browser_support
from tests.support.browser import log_in
from voting.models import CharacterSubmission

pytestmark = browser_support.BROWSER_MARKS
media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page

PASSWORD = "csp-demo-pass-1"


@pytest.fixture(autouse=True)
def close_connections_opened_beside_playwright(browser):
    yield
    connections.close_all()


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    assert "script-src" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")


def test_no_page_breaks_the_content_security_policy(live_server, page):
    call_command("load_demo_data", password=PASSWORD)
    story = Story.objects.get(slug="the-astronaut")
    clip = story.clips.filter(status=Clip.Status.READY).first()
    character = Character.objects.first()
    job = GenerationJob.objects.first()
    assert clip and character and job and CharacterSubmission.objects.exists()
    base = live_server.url

    visit(page, f"{base}/accounts/login/")
    log_in(page, base, "alice", PASSWORD)
    pages = [
        "/",
        reverse("story-detail", args=[story.pk]),
        reverse("clip-detail", args=[clip.pk]),
        reverse("submission-create", args=[story.pk]),
        reverse("character-detail", args=[character.character_id]),
        reverse("gallery"),
        reverse("generation-create", args=[story.pk]),
        reverse("generation-job", args=[job.job_id]),
        reverse("my-wallet"),
        reverse("api-docs"),
    ]
    for path in pages:
        visit(page, base + path)
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)  # the docs page's script ran
    assert page.csp_violations == [], page.csp_violations
    assert page.js_errors == []


def test_the_admin_and_its_pin_panel_keep_to_the_policy(live_server, page):
    call_command("load_demo_data", password=PASSWORD)
    clip = Clip.objects.filter(status=Clip.Status.READY).first()
    base = live_server.url
    page.goto(f"{base}{reverse('admin:login')}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    for path in [
        reverse("admin:index"),
        reverse("admin:characters_clip_change", args=[clip.pk]),
        reverse("admin:characters_clip_pin", args=[clip.pk]),
    ]:
        visit(page, base + path)
    # The panel's script ran: the player is loaded and the server-rendered preview came back.
    page.wait_for_function("() => document.querySelector('[data-role=player]').readyState >= 1")
    page.wait_for_selector("[data-role=preview][data-state=ready]", timeout=30_000)
    assert page.csp_violations == [], page.csp_violations
    assert page.js_errors == []


def test_the_policy_is_on_and_would_catch_an_inline_script(live_server, page):
    """The collector sees a violation when there is one: an inline script injected into a served page."""
    visit(page, f"{live_server.url}/accounts/login/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    assert any("script-src" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()  # expected here; the fixture fails a test on any that remain
