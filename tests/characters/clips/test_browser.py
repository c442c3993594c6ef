"""A real browser (Debian's Chromium through Playwright) against the live server.

Never run `playwright install`: the test drives the system Chromium and skips when it is absent.
"""

from urllib.parse import urljoin

import pytest

from characters.clips import services
from characters.models import Clip
from tests.support import browser as browser_support
from tests.support.browser import ARTIFACTS, screenshot, wait_for_images

pytestmark = browser_support.BROWSER_MARKS
# Shared fixtures (see tests/support/browser.py): bound here so pytest finds them for this module.
media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page


@pytest.fixture
def contributor(django_user_model):
    return django_user_model.objects.create_user("carla", password="pw-carla-123")


def log_in(page, base_url):
    browser_support.log_in(page, base_url, "carla", "pw-carla-123")


def test_upload_a_clip_see_its_frames_and_seek_the_video(live_server, page, contributor, good_clip):
    ARTIFACTS.mkdir(exist_ok=True)
    log_in(page, live_server.url)

    page.fill("#id_title", "Browser Story")
    page.fill("#id_description", "Made by the browser test.")
    with page.expect_navigation():
        page.click("text=Create story")
    assert page.locator("h1").inner_text() == "Browser Story"

    page.set_input_files("input[type=file]", str(good_clip))
    # Without a broker the extraction runs in the request, so this navigation waits for it.
    with page.expect_navigation(timeout=180_000):
        page.click("text=Upload clip")
    clip = Clip.objects.get(story__title="Browser Story")
    assert clip.status == Clip.Status.READY, clip.error_message
    # The message says what is true when the page comes back: here the frames are there already.
    count = clip.candidates.count()
    assert f"Clip uploaded and ready: {count} candidate frames." in page.locator(".messages").inner_text()

    widths = wait_for_images(page, ".frame-grid img")
    assert widths and all(w > 0 for w in widths)
    assert len(widths) == clip.candidates.count()
    screenshot(page, "story-page.png")

    # The full JPEG behind a thumbnail opens.
    full_url = page.locator(".frame-grid a.frame__image").first.get_attribute("href")
    full = page.request.get(urljoin(page.url, full_url))
    assert full.headers["content-type"] == "image/jpeg"
    assert full.headers["accept-ranges"] == "bytes"  # served by our media view

    # The clip page: its video seeks, which needs the media view to answer Range requests.
    partial_responses = []
    page.on("response", lambda r: partial_responses.append(r.status) if "/media/clips/" in r.url else None)
    with page.expect_navigation():
        page.click(f"#clip-{clip.pk} .clip__title a")
    video = page.locator("video[data-role=player]")
    page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    duration = video.evaluate("v => v.duration")
    assert duration == pytest.approx(clip.duration_seconds, abs=0.2)
    assert video.evaluate("v => v.seekable.length > 0 && v.seekable.end(0)") == pytest.approx(duration, abs=0.2)
    target = round(duration * 0.6, 2)
    seeked = video.evaluate(
        """(v, t) => new Promise(resolve => {
               v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
               v.currentTime = t;
           })""",
        target,
    )
    assert seeked == pytest.approx(target, abs=0.1)
    assert 206 in partial_responses  # the browser asked for ranges and got them
    assert page.locator("svg.quality-chart rect").count() == clip.candidates.count()
    wait_for_images(page, ".frame-grid img, .last-frame img")
    screenshot(page, "clip-page.png")

    page.goto(f"{live_server.url}/")
    wait_for_images(page, ".story-card__cover img")
    screenshot(page, "home-page.png")
    assert page.js_errors == []


def test_a_clip_that_finishes_while_the_page_is_open_shows_its_frames_without_a_reload(live_server, page, contributor):
    story = services.story_create(title="Waiting Story", created_by=contributor)
    clip = Clip.objects.create(
        story=story,
        uploader=contributor,
        video="clips/x/waiting.mp4",
        position=1,
        status=Clip.Status.EXTRACTING,
        progress=35,
        duration_seconds=4,
        width=640,
        height=360,
    )
    log_in(page, live_server.url)
    api_statuses = []
    page.on("response", lambda r: api_statuses.append(r.status) if f"/api/v1/clips/{clip.pk}" in r.url else None)
    page.goto(f"{live_server.url}{story.get_absolute_url()}")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    progress = f"#clip-{clip.pk} .progress"
    assert page.locator(progress).get_attribute("aria-valuenow") == "35"

    Clip.objects.filter(pk=clip.pk).update(progress=70)
    page.wait_for_selector(f"{progress}[aria-valuenow='70']", timeout=20_000)
    assert page.locator(f"#clip-{clip.pk} .progress__fill").evaluate("el => el.style.width") == "70%"
    assert 200 in api_statuses  # polled through the clip API with the session cookie

    # The clip finishes with no person in it, as the pipeline would record it.
    Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.READY, progress=100, frames_analysed=4)

    page.wait_for_selector(f"#clip-{clip.pk}[data-status=ready]", timeout=20_000)
    assert "No person was found in this clip" in page.locator(f"#clip-{clip.pk}").inner_text()
    assert page.evaluate("() => window.stillTheSamePage") is True
    assert page.js_errors == []
