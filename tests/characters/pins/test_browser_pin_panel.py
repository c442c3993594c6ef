"""The pin panel in a real browser (Debian's Chromium through Playwright) against the live server: log in as
staff, scrub a clip, pin Element 1, add an angle from another clip, deactivate it; after each step the
database and the stored files are checked. Never `playwright install`."""

from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse

from characters.clips import services
from characters.models import Clip, PinnedCharacter
from characters.pins import frames as pin_frames
from characters.pins import selectors as pin_selectors
from tests.support import browser as browser_support
from tests.support.browser import ARTIFACTS, screenshot, wait_for_images
from tests.support.pinning import decode_jpeg, frames_by_sequential_decoding, mean_abs_diff, pinned_files, upload_clip

pytestmark = browser_support.BROWSER_MARKS
# Shared fixtures (see tests/support/browser.py): bound here so pytest finds them for this module.
media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page


@pytest.fixture(autouse=True)
def close_connections_opened_beside_playwright(browser):
    """While Playwright's sync API runs, asyncio sees a running loop in this thread, so Django keeps the
    test's ORM connection in a context-local slot that pytest-django never closes; close it before the
    browser (and that loop) goes, or PostgreSQL keeps it open and the test database cannot be dropped."""
    yield
    connections.close_all()


def stored(name: str, root: Path) -> bytes:
    return (Path(root) / name).read_bytes()


def wait_for_preview(page, seconds: str):
    """Until the server-rendered preview shows the frame at `seconds`; returns its frame index."""
    page.wait_for_selector(f"[data-role=preview][data-state=ready][data-t='{seconds}']", timeout=30_000)
    return int(page.get_attribute("[data-role=preview]", "data-frame"))


def log_in_to_the_admin(page, base_url):
    page.goto(f"{base_url}{reverse('admin:login')}")
    page.fill("#id_username", "pinner")
    page.fill("#id_password", "pw-pinner-123")
    with page.expect_navigation():
        page.click("input[type=submit]")


def test_scrub_pin_add_an_angle_and_deactivate(live_server, page, media_root, django_user_model, mixed_clip, good_clip):
    ARTIFACTS.mkdir(exist_ok=True)
    admin = django_user_model.objects.create_superuser("pinner", "pinner@example.com", "pw-pinner-123")
    story = services.story_create(title="Robot Saga", created_by=admin)
    # Committed at once (transactional test): the in-process extraction runs, giving candidates and last frames.
    first = upload_clip(mixed_clip, story, admin)
    second = upload_clip(good_clip, story, admin)
    for clip in (first, second):
        clip.refresh_from_db()
        assert clip.status == Clip.Status.READY, clip.error_message

    log_in_to_the_admin(page, live_server.url)
    page.goto(f"{live_server.url}{reverse('admin:characters_clip_change', args=[first.pk])}")
    ranges = []
    page.on("response", lambda r: ranges.append(r.status) if "/media/clips/" in r.url else None)
    with page.expect_navigation():
        page.click("a.pin-character-link")
    assert page.url.endswith(reverse("admin:characters_clip_pin", args=[first.pk]))
    assert page.locator(".breadcrumbs").inner_text().endswith("Pin character")
    page.wait_for_function("() => document.querySelector('[data-role=player]').readyState >= 1")

    # Scrub to 6.5 s, then one frame on: frame 196 of the 30 fps clip starts at 6.534 s.
    page.locator("[data-role=scrubber]").fill("6.5")
    assert wait_for_preview(page, "6.500") == 195
    page.click("[data-step=frame][data-amount='1']")
    assert page.locator("[data-role=clock]").inner_text() == "00:06.534"
    assert page.locator("[data-role=frame]").inner_text() == "196"
    assert wait_for_preview(page, "6.534") == 196
    page.wait_for_function("() => Math.abs(document.querySelector('[data-role=player]').currentTime - 6.534) < 0.002")
    assert 206 in ranges  # the video seeks because the media view answers Range requests
    # ±1 s and back again land on the same time.
    page.click("[data-step=second][data-amount='-1']")
    assert page.locator("[data-role=clock]").inner_text() == "00:05.534"
    page.click("[data-step=second][data-amount='1']")
    assert wait_for_preview(page, "6.534") == 196
    preview_src = page.get_attribute("[data-role=preview-image]", "src")
    assert preview_src.startswith("blob:")
    screenshot(page, "pin-panel-before.png")

    page.fill("[data-role=label]", "Main Robot")
    with page.expect_navigation():
        page.click("button[value='pin:1']")

    pin = PinnedCharacter.objects.get()
    assert (pin.story, pin.element_index, pin.label, pin.is_active) == (story, 1, "Main Robot", True)
    assert (pin.source_clip, pin.source_frame_seconds, pin.pinned_by) == (first, 6.534, admin)
    name = f"pinned/{story.pk}/1_frontal.jpg"
    assert pin.frontal_image.name == name and pinned_files(media_root) == [name]
    frontal = stored(name, media_root)
    assert frontal == pin_frames.pin_frame_for(clip=first, frame_timestamp=6.534).jpeg  # what the preview showed
    frames = frames_by_sequential_decoding(mixed_clip, [195, 196, 197])
    assert mean_abs_diff(decode_jpeg(frontal), frames[196]) < min(
        mean_abs_diff(decode_jpeg(frontal), frames[195]), mean_abs_diff(decode_jpeg(frontal), frames[197])
    )
    assert "Pinned @Element1 · Main Robot." in page.locator(".messagelist").inner_text()
    card = page.locator(".pin-slot[data-element='1']")
    assert "Main Robot" in card.inner_text() and card.locator(".cps-status").text_content() == "Active"
    assert wait_for_images(page, ".pin-slot[data-element='1'] .pin-slot__frontal img") == [1280]
    assert page.locator("button[value^='pin:']").evaluate_all("bs => bs.map(b => b.value)") == [
        "pin:2",
        "pin:3",
        "pin:4",
    ]

    # Another clip of the story: jump to a candidate frame and add it as an angle of Element 1.
    with page.expect_navigation():
        page.click(f".pin-clips__item[data-clip-id='{second.pk}']")
    candidate = page.locator(".pin-candidate").nth(1)
    seconds = candidate.get_attribute("data-seconds")
    candidate.click()
    assert page.locator("[data-role=timestamp]").input_value() == seconds
    frame_index = wait_for_preview(page, seconds)
    with page.expect_navigation():
        page.click(f"button[value='angle:{pin.pk}']")

    angle = pin.angles.get()
    assert (angle.position, angle.source_clip, angle.source_frame_seconds) == (1, second, float(seconds))
    angle_name = f"pinned/{story.pk}/1_angle_1.jpg"
    assert angle.image.name == angle_name and pinned_files(media_root) == [angle_name, name]
    assert stored(angle_name, media_root) == pin_frames.pin_frame_for(clip=second, frame_timestamp=seconds).jpeg
    assert frame_index == pin_frames.frame_index_at(float(seconds), 30, second.frame_count)
    assert "1/6 angles" in page.locator(".pin-slot[data-element='1']").inner_text()
    wait_for_images(page, ".pin-slot img, .pin-candidate img, .pin-clips img")

    # Deactivate: kept with its files, no longer used.
    with page.expect_navigation():
        page.click(".pin-slot[data-element='1'] [data-action=deactivate]")
    pin.refresh_from_db()
    assert pin.is_active is False and pin_selectors.story_active_pins(story) == []
    assert pinned_files(media_root) == [angle_name, name] and stored(name, media_root) == frontal
    card = page.locator(".pin-slot[data-element='1']")
    assert card.locator(".cps-status").text_content() == "Inactive"
    assert card.locator("[data-action=reactivate]").count() == 1
    wait_for_preview(page, seconds)
    wait_for_images(page, ".pin-slot img, .pin-candidate img, .pin-clips img")
    screenshot(page, "pin-panel.png")
    assert page.js_errors == []
