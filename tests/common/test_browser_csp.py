"""The Content-Security-Policy in a real browser: every main page, the API docs, the admin's pages of our models
and its pin panel load with nothing blocked (Chromium reports each blocked script, style or image on the console,
and the page hears a `securitypolicyviolation` event), on the demo data, which has something on every page
(extracted clips, a decided vote, a locked character, a pin, a generated clip). The admin has the site's policy,
style attributes included. Never `playwright install`."""

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from characters.models import Character, Clip, Mark, PinnedCharacter, Story
from generation.models import GenerationJob
from tests.support import browser as browser_support
from tests.support.browser import log_in, screenshot, wait_for_images
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services as voting
from voting.models import CharacterSubmission, VotingSession

media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page

PASSWORD = "csp-demo-pass-1"


def browser_test(test):
    for mark in browser_support.BROWSER_MARKS:
        test = mark(test)
    return test


@pytest.fixture(autouse=True)
def close_connections_opened_beside_playwright(request):
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    request.getfixturevalue("browser")
    yield
    connections.close_all()


def collect_violation_events(page) -> list[dict]:
    """Every `securitypolicyviolation` event the pages fire (what, where), across navigations."""
    events: list[dict] = []
    page.expose_binding("reportCspViolation", lambda source, event: events.append(event))
    page.add_init_script(
        """document.addEventListener("securitypolicyviolation", (e) => window.reportCspViolation({
             page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));"""
    )
    return events


def open_vote_with_split_tallies() -> VotingSession:
    """A second story with an open vote, one vote each for two designs (bars half full), so the session page,
    its override and deadlock pages have something to show."""
    story = StoryFactory(title="Orbit")
    frame = CandidateFrameFactory(clip=ClipFactory(story=story))
    designs = [
        voting.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name, character_name=name
        )
        for name in ("Ada", "Bo")
    ]
    # Two designs open a vote by themselves (VOTING_AUTO_START), as the demo's did.
    session = VotingSession.objects.filter(story=story).first() or voting.session_start(story=story)
    for design in designs:
        voting.vote_cast(submission_id=design.pk, voter=UserFactory())
    return session


def admin_log_in(page, base: str) -> None:
    page.goto(f"{base}{reverse('admin:login')}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")


def visit(page, url: str):
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    assert "script-src" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    return response


@browser_test
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


@browser_test
def test_the_admin_and_its_pin_panel_keep_to_the_policy(live_server, page):
    """List and change pages of the models whose admin draws thumbnails, bars, swatches and charts, with rows in
    them, then the pin panel: no violation event, nothing on the console."""
    call_command("load_demo_data", password=PASSWORD)
    clip = Clip.objects.filter(status=Clip.Status.READY).first()
    character = Character.objects.exclude(color_palette={}).first()
    session = VotingSession.objects.first()
    submission = CharacterSubmission.objects.first()
    job = GenerationJob.objects.exclude(frame_scores=[]).first()
    pin = PinnedCharacter.objects.first()
    assert clip and character and session and submission and job and pin
    frame = clip.candidates.order_by("rank").first()
    # A mark still running: its row has a progress bar.
    mark = Mark.objects.create(
        clip=clip, created_by=clip.uploader, seconds=1.0, box={}, status=Mark.Status.RUNNING, progress=40
    )
    open_session = open_vote_with_split_tallies()
    base = live_server.url
    events = collect_violation_events(page)
    admin_log_in(page, base)

    def admin_pages(name: str, obj) -> list[str]:
        return [reverse(f"admin:{name}_changelist"), reverse(f"admin:{name}_change", args=[obj.pk])]

    paths = [
        reverse("admin:index"),
        *admin_pages("characters_story", clip.story),
        *admin_pages("characters_clip", clip),
        *admin_pages("characters_candidateframe", frame),
        *admin_pages("characters_character", character),
        *admin_pages("voting_votingsession", session),
        *admin_pages("voting_charactersubmission", submission),
        *admin_pages("generation_generationjob", job),
        *admin_pages("characters_mark", mark),
        *admin_pages("characters_pinnedcharacter", pin),
        # Our own admin pages (forms on Django's admin templates).
        reverse("admin:voting_votingsession_start"),
        reverse("admin:voting_votingsession_change", args=[open_session.pk]),
        reverse("admin:voting_votingsession_override", args=[open_session.pk]),
        reverse("admin:voting_votingsession_deadlock", args=[open_session.pk]),
        reverse("admin:marketplace_wallet_grant"),
        reverse("admin:characters_story_pin", args=[clip.story.pk]),
    ]
    for path in paths:
        # None left in the HTML we send (scripts may still style through the CSSOM, which CSP allows).
        assert " style=" not in visit(page, base + path).text(), path
    # What the pages draw is there: a progress bar, score meters, palette swatches, the consistency chart.
    visit(page, base + reverse("admin:characters_mark_changelist"))
    assert page.locator("progress.cps-progress").first.get_attribute("value") == "40"
    screenshot(page, "admin-csp-marks.png")
    visit(page, base + reverse("admin:characters_candidateframe_changelist"))
    rows = page.locator("#result_list tbody tr").count()
    assert rows and page.locator("#result_list meter.cps-quality__bar").count() == rows
    screenshot(page, "admin-csp-candidate-frames.png")
    visit(page, base + reverse("admin:characters_character_change", args=[character.pk]))
    assert page.locator("svg.cps-palette rect").count() == len(character.color_palette)
    wait_for_images(page, "img.cps-thumb")
    screenshot(page, "admin-csp-character.png")
    visit(page, base + reverse("admin:generation_generationjob_change", args=[job.pk]))
    assert page.locator("svg.bar-chart rect").count() == len(job.frame_scores)
    screenshot(page, "admin-csp-generation-job.png")
    visit(page, base + reverse("admin:voting_votingsession_change", args=[open_session.pk]))
    assert page.locator("progress.cps-tally__bar").evaluate_all("bars => bars.map(b => b.value)") == [50, 50]
    screenshot(page, "admin-csp-voting-session.png")
    visit(page, base + reverse("admin:voting_votingsession_override", args=[open_session.pk]))
    assert page.locator(".override-choice label").first.evaluate("el => getComputedStyle(el).display") == "flex"
    screenshot(page, "admin-csp-voting-override.png")
    visit(page, base + reverse("admin:characters_clip_changelist"))
    screenshot(page, "admin-csp-clips.png")

    visit(page, base + reverse("admin:characters_clip_pin", args=[clip.pk]))
    # The panel's script ran: the player is loaded and the server-rendered preview came back.
    page.wait_for_function("() => document.querySelector('[data-role=player]').readyState >= 1")
    page.wait_for_selector("[data-role=preview][data-state=ready]", timeout=30_000)
    screenshot(page, "admin-csp-pin-panel.png")
    assert events == []
    assert page.csp_violations == [], page.csp_violations
    assert page.js_errors == []


@browser_test
def test_the_admin_would_catch_a_style_attribute(live_server, page):
    """The admin's policy is the site's: a style attribute set from script is refused there, and the page hears it."""
    call_command("load_demo_data", password=PASSWORD)
    events = collect_violation_events(page)
    admin_log_in(page, live_server.url)
    visit(page, live_server.url + reverse("admin:index"))
    colour = page.evaluate(
        """() => { const h = document.querySelector("#site-name a"); h.setAttribute("style", "color: rgb(1, 2, 3)");
                   return getComputedStyle(h).color; }"""
    )
    page.wait_for_timeout(200)
    assert colour != "rgb(1, 2, 3)"
    assert [e["directive"] for e in events] == ["style-src-attr"], events
    page.csp_violations.clear()  # expected here; the fixture fails a test on any that remain


@pytest.mark.django_db
def test_the_admin_has_the_sites_policy(admin_client, client):
    """/admin/ answers with the same header as the site: no 'unsafe-inline' for styles or scripts."""
    admin_policy = admin_client.get(reverse("admin:index"))["Content-Security-Policy"]
    site_policy = client.get(reverse("account_login"))["Content-Security-Policy"]
    assert "'unsafe-inline'" not in admin_policy
    assert "style-src 'self'" in admin_policy and "style-src-attr" not in admin_policy

    def without_nonce(policy: str) -> str:
        return " ".join(word for word in policy.split() if not word.startswith("'nonce-"))

    assert without_nonce(admin_policy) == without_nonce(site_policy)


@browser_test
def test_the_policy_is_on_and_would_catch_an_inline_script(live_server, page):
    """The collector sees a violation when there is one: an inline script injected into a served page."""
    visit(page, f"{live_server.url}/accounts/login/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    assert any("script-src" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()  # expected here; the fixture fails a test on any that remain
