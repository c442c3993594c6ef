"""Renaming, merging and splitting characters on the pages, in a real browser (Debian's Chromium, the site's CSP)."""

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections
from PIL import Image

from characters.groups import services as group_services
from characters.models import CandidateFrame, CharacterGroup
from tests.characters.groups.test_character_groups import _descriptor, _track
from tests.support import browser as browser_support
from tests.support.browser import log_in, screenshot
from tests.support.factories import ClipFactory, StoryFactory, UserFactory

pytestmark = browser_support.BROWSER_MARKS
media_root = browser_support.media_root
media_through_our_view = browser_support.media_through_our_view
browser = browser_support.browser
page = browser_support.page


@pytest.fixture(autouse=True)
def close_connections_opened_beside_playwright(browser):
    yield
    connections.close_all()


def _jpeg(colour) -> ContentFile:
    buffer = io.BytesIO()
    Image.fromarray(np.full((90, 160, 3), colour, dtype=np.uint8)).save(buffer, "JPEG")
    return ContentFile(buffer.getvalue())


@pytest.fixture
def story(media_root):
    """Character A (three shots of one person) and Character B, with real thumbnails to look at."""
    story = StoryFactory(created_by=UserFactory(username="editor"))
    clip = ClipFactory(story=story, uploader=story.created_by)
    frames = []
    people = [1, 1, 1, 2]  # descriptor seeds: three shots of one person, one of another
    colours = [(200, 80, 60), (210, 90, 70), (60, 80, 200), (60, 160, 90)]
    for i, colour in enumerate(colours):
        name = default_storage.save(f"frames/edit-{i}.jpg", _jpeg(colour))
        frames.append(
            CandidateFrame.objects.create(
                clip=clip,
                seconds=i * 2,
                timestamp=f"00:0{i * 2}",
                image=name,
                thumbnail=name,
                width=1280,
                height=720,
                rank=i + 1,
                quality=80 - i,
                detections=[{"box": {"x": 0, "y": 0, "width": 50, "height": 50}, "pose": "frontal", "track": i}],
            )
        )
    tracks = [
        _track(i, i, i * 2, i * 2 + 1, _descriptor(person, 0.05, jitter_seed=i)) for i, person in enumerate(people)
    ]
    group_services.clip_record_tracks(clip=clip, tracks=tracks, frames=frames)
    return story


def test_a_contributor_renames_merges_and_splits_on_the_pages(live_server, page, story):
    a, b = CharacterGroup.objects.filter(story=story).order_by("number")
    base = live_server.url
    log_in(page, base, "editor", "pass-word-123")
    page.goto(f"{base}{story.get_absolute_url()}")

    # Rename: the row's own form.
    row = page.locator(f'.group-row[data-group-id="{a.pk}"]')
    row.locator('input[name="label"]').fill("Commander Eileen")
    with page.expect_navigation():
        row.get_by_role("button", name="Rename").click()
    assert "“Character A” is now called “Commander Eileen”." in page.locator(".messages").inner_text()
    assert "Commander Eileen" in page.locator(f'.group-row[data-group-id="{a.pk}"] .group-row__head').inner_text()
    a.refresh_from_db()
    assert a.label == "Commander Eileen"
    screenshot(page, "groups-renamed.png")

    # Split: the third shot of A is someone else; on A's page, tick it off.
    page.locator(f'.group-row[data-group-id="{a.pk}"]').get_by_role("link", name="appearances, split").click()
    page.wait_for_url(f"{base}/character-groups/{a.pk}/")
    third = sorted(a.appearances.values_list("pk", flat=True))[2]
    page.check(f'input[name="appearance_ids"][value="{third}"]')
    with page.expect_navigation():
        page.get_by_role("button", name="Split the ticked off into a new character").click()
    new = CharacterGroup.objects.get(story=story, number=3)
    assert page.url == f"{base}/character-groups/{new.pk}/"
    assert "is now a character of its own, “Character C”" in page.locator(".messages").inner_text()
    screenshot(page, "groups-split.png")

    # Merge: the new one is really B.
    page.select_option("#group-merge", str(b.pk))
    with page.expect_navigation():
        page.get_by_role("button", name="Merge into this one").click()
    assert "“Character B” was merged into “Character C”" in page.locator(".messages").inner_text()
    assert list(CharacterGroup.objects.filter(story=story).order_by("number").values_list("label", flat=True)) == [
        "Commander Eileen",
        "Character C",
    ]
    assert new.appearances.count() == 2
    assert page.js_errors == []


def test_a_refused_rename_shows_the_reason(live_server, page, story):
    a = CharacterGroup.objects.filter(story=story).order_by("number").first()
    base = live_server.url
    log_in(page, base, "editor", "pass-word-123")
    page.goto(f"{base}{story.get_absolute_url()}")
    row = page.locator(f'.group-row[data-group-id="{a.pk}"]')
    field = row.locator('input[name="label"]')
    field.evaluate("input => input.removeAttribute('required')")  # the browser would stop an empty name itself
    field.fill("   ")
    with page.expect_navigation():
        row.get_by_role("button", name="Rename").click()
    assert "was not renamed: A label needs 1 to 100 characters." in page.locator(".messages").inner_text()
    a.refresh_from_db()
    assert a.label == "Character A"
