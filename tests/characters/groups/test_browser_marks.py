"""Marking a character that is not a face on the clip page, in a real browser (Debian's Chromium, the site's CSP)."""

import pytest
from django.db import connections

from characters.clips import services as clip_services
from characters.models import Appearance, CharacterGroup, Mark
from demo import clips
from tests.support import browser as browser_support
from tests.support.browser import log_in
from tests.support.factories import StoryFactory, UserFactory
from tests.support.pinning import upload_clip

pytestmark = browser_support.BROWSER_MARKS
media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page

R = clips.RobotShot


@pytest.fixture(autouse=True)
def close_connections_opened_beside_playwright(browser):
    yield
    connections.close_all()


def test_a_contributor_drags_a_box_and_the_page_shows_the_job_and_the_character(live_server, page, tmp_path):
    user = UserFactory(username="marker")
    story = StoryFactory(created_by=user)
    path, truth = clips.robot_clip(tmp_path / "robot.mp4", [R("rocket", 4, start=(0.1, 0.2), end=(0.4, 0.25))])
    other, _ = clips.robot_clip(tmp_path / "robot_2.mp4", [R("chelsea", 4, start=(0.6, 0.3), end=(0.3, 0.2))])
    clip = clip_services.clip_extract_frames(clip_id=upload_clip(path, story, user).pk)
    clip_services.clip_extract_frames(clip_id=upload_clip(other, story, user).pk)
    base = live_server.url
    log_in(page, base, "marker", "pass-word-123")
    page.goto(f"{base}/clips/{clip.pk}/")
    assert page.locator("#mark-character").is_visible()
    page.wait_for_function("() => document.querySelector('[data-role=player]').readyState >= 2")
    page.evaluate("""() => new Promise(done => {
        const video = document.querySelector('[data-role=player]');
        video.addEventListener('seeked', done, {once: true});
        video.currentTime = 2.0;
    })""")
    page.click('[data-role="mark-grab"]')
    canvas = page.locator('[data-role="mark-canvas"]')
    canvas.scroll_into_view_if_needed()
    rect = canvas.bounding_box()
    box = min(truth, key=lambda item: abs(item[0] - 2.0))[1]
    sx, sy = rect["width"] / clip.width, rect["height"] / clip.height
    page.mouse.move(rect["x"] + box["x"] * sx, rect["y"] + box["y"] * sy)
    page.mouse.down()
    page.mouse.move(rect["x"] + (box["x"] + box["width"] / 2) * sx, rect["y"] + (box["y"] + box["height"] / 2) * sy)
    page.mouse.move(rect["x"] + (box["x"] + box["width"]) * sx, rect["y"] + (box["y"] + box["height"]) * sy)
    page.mouse.up()
    assert "px at" in page.locator('[data-role="mark-box"]').inner_text()
    page.fill("#mark-label", "Robo")
    with page.expect_navigation(timeout=120_000):  # tasks run in the request here: done, then the page reloads
        page.click('[data-role="mark-submit"]')
    mark = Mark.objects.get()
    assert mark.status == "done" and abs(mark.seconds - 2.0) < 0.05
    assert abs(mark.box["x"] - box["x"]) <= 8 and abs(mark.box["width"] - box["width"]) <= 8
    group = CharacterGroup.objects.get(kind="marked")
    assert group.label == "Robo" and Appearance.objects.filter(group=group).exclude(clip=clip).exists()
    row = page.locator(f'.group-row[data-group-id="{group.pk}"]')
    assert "Robo" in row.inner_text() and "marked" in row.inner_text().lower()
    job = page.locator('[data-role="mark-job"]').first.inner_text().lower()
    assert "done" in job and "found in 4 sampled frames of the 1 other clip searched" in job
    # Run it again from the page: queued with a new token, run (in the request here), and the page reloads.
    first_token, first_finished = mark.task_id, mark.finished_at
    with page.expect_navigation(timeout=120_000):
        page.locator('[data-role="mark-job"]').first.locator('[data-role="mark-rerun"]').click()
    mark.refresh_from_db()
    assert mark.status == "done" and mark.task_id != first_token and mark.finished_at > first_finished
    assert Appearance.objects.filter(mark=mark).exclude(clip=clip).exists()
    assert page.js_errors == []
