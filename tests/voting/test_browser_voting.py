"""Submissions and votes in a real browser: pick frames, submit designs, vote and see the bars."""

import re
from datetime import timedelta
from urllib.parse import urljoin

from django.contrib.auth import get_user_model
from django.core.files import File
from django.utils import timezone

from characters.clips import services as story_services
from characters.models import CandidateFrame
from tests.characters.clips.test_pages import make_clip, make_frame
from tests.support import browser as bs
from voting import services
from voting.models import CharacterSubmission, Vote, VotingSession

pytestmark = bs.BROWSER_MARKS
# Shared fixtures (see tests/support/browser.py): bound here so pytest finds them for this module.
media_root, media_through_our_view, browser, page = bs.media_root, bs.media_through_our_view, bs.browser, bs.page

PASSWORD = "pw-voting-123"


def make_user(username):
    return get_user_model().objects.create_user(username, password=PASSWORD)


def story_with_frames(owner):
    """A story with two clips of real JPEG frames (the pipeline's output shape, without decoding a video)."""
    story = story_services.story_create(
        title="The Astronaut", description="Drifting between stations.", created_by=owner
    )
    frames = []
    for position, qualities in ((1, (94, 81, 66)), (2, (90, 58, 41))):
        clip = make_clip(story, owner, position=position)
        frames += [
            make_frame(clip, seconds=rank * 1.5, quality=q, rank=rank, dominant=rank == 1)
            for rank, q in enumerate(qualities, start=1)
        ]
    return story, frames


def story_with_extracted_clips(owner, *clip_paths):
    """A story whose clips went through the real upload and extraction (frames with detections, for the DNA)."""
    story = story_services.story_create(
        title="The Astronaut", description="Drifting between stations.", created_by=owner
    )
    for path in clip_paths:
        with open(path, "rb") as fh:
            story_services.clip_create(story=story, uploader=owner, upload=File(fh, name=path.name))
    frames = list(CandidateFrame.objects.filter(clip__story=story).order_by("clip__position", "rank"))
    assert len(frames) >= 5, "the test clips should give at least five candidate frames"
    return story, frames


def tile(page, frame):
    return page.locator(f"label.pick:has(input[value='{frame.pk}'])")


def submit_design(page, base_url, story, frames, *, name, style):
    page.goto(f"{base_url}{story.get_absolute_url()}")
    with page.expect_navigation():
        page.click("a:has-text('Submit a design')")
    bs.wait_for_images(page, ".pick img")
    for frame in frames:
        tile(page, frame).click()
    page.fill("#id_character_name", name)
    page.fill("#id_style_description", style)
    return page


def test_two_designs_are_submitted_and_a_third_person_votes_and_sees_the_bars(
    live_server, browser, good_clip, mixed_clip, settings
):
    settings.MIN_QUALITY_SCORE = 0  # this is about voting: every frame the clips give may be picked
    ada, ben, vera = make_user("ada"), make_user("ben"), make_user("vera")
    story, frames = story_with_extracted_clips(ada, good_clip, mixed_clip)
    base = live_server.url

    # Ada picks three frames out of grid order; the page numbers them as picked and counts them.
    ada_page = bs.new_page(browser)
    bs.log_in(ada_page, base, "ada", PASSWORD)
    picked = [frames[3], frames[0], frames[2]]
    style = "Orange flight suit, short curly hair, warm confident smile."
    submit_design(ada_page, base, story, picked, name="Commander Eileen", style=style)
    assert ada_page.locator("[data-role=pick-count]").inner_text() == "3"
    assert [tile(ada_page, f).locator("[data-role=order]").inner_text() for f in picked] == ["1", "2", "3"]
    # Unpicking renumbers; picking again puts the frame last.
    tile(ada_page, frames[0]).click()
    assert tile(ada_page, frames[2]).locator("[data-role=order]").inner_text() == "2"
    tile(ada_page, frames[0]).click()
    picked = [frames[3], frames[2], frames[0]]
    assert ada_page.locator("[data-role=char-count]").inner_text() == str(len(style))
    bs.screenshot(ada_page, "voting-submit-form.png")
    with ada_page.expect_navigation():
        ada_page.click("button:has-text('Submit design')")
    assert "The vote opens once another design is submitted" in ada_page.locator(".messages").inner_text()
    eileen = CharacterSubmission.objects.get(submitter=ada)
    assert eileen.frame_ids == [f.pk for f in picked]  # the order the contributor picked

    # Ben submits a second design for the same character: the vote opens.
    ben_page = bs.new_page(browser)
    bs.log_in(ben_page, base, "ben", PASSWORD)
    submit_design(
        ben_page,
        base,
        story,
        [frames[1], frames[2]],
        name="Specialist Ray",
        style="White suit, helmet under the arm, calm gaze.",
    )
    with ben_page.expect_navigation():
        ben_page.click("button:has-text('Submit design')")
    assert "the vote is open" in ben_page.locator(".messages").inner_text()
    session = VotingSession.objects.get(status=VotingSession.Status.ACTIVE)
    assert set(session.submissions.values_list("submitter", flat=True)) == {ada.pk, ben.pk}

    # Vera sees both designs side by side, no tallies yet, and votes.
    vera_page = bs.new_page(browser)
    bs.log_in(vera_page, base, "vera", PASSWORD)
    vera_page.goto(f"{base}{story.get_absolute_url()}")
    card = vera_page.locator(f"#session-{session.pk}")
    assert card.locator(".entry").count() == 2
    assert card.locator("[data-role=tally]").count() == 0
    assert re.fullmatch(r"23h 5\dm|24h 00m", card.locator("[data-countdown]").inner_text())
    bs.wait_for_images(vera_page, f"#session-{session.pk} img")
    with vera_page.expect_navigation():
        card.locator(f"#submission-{eileen.pk} button:has-text('Vote')").click()

    assert "Your vote for “Commander Eileen” is counted" in vera_page.locator(".messages").inner_text()
    assert Vote.objects.get().voter == vera
    card = vera_page.locator(f"#session-{session.pk}")
    assert card.locator("[data-role=tally]").count() == 2
    chosen = card.locator(".entry--chosen")
    assert chosen.get_attribute("id") == f"submission-{eileen.pk}"
    assert "Your vote" in chosen.inner_text()
    # The bar's drawn width as a share of its track (set by a class: the CSP allows no style attributes).
    share = "el => Math.round(100 * el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width)"
    assert chosen.locator(".tally__fill").evaluate(share) == 100
    assert card.locator(".entry:not(.entry--chosen) .tally__fill").evaluate(share) == 0
    assert card.locator("button:has-text('Vote')").count() == 0
    bs.wait_for_images(vera_page, ".voting img")
    bs.screenshot(vera_page, "voting-story-page.png")

    # An admin settles the vote for Eileen: the story page shows the result and links the locked character.
    admin = get_user_model().objects.create_user("root", password=PASSWORD, is_staff=True)
    character = services.submission_lock_by_admin(submission_id=eileen.pk, admin=admin)
    vera_page.reload()
    result = vera_page.locator(f"li#session-{session.pk}")
    assert "“Commander Eileen” won" in result.inner_text() and "Admin decision" in result.inner_text()
    assert vera_page.locator("#characters .character-card").count() == 1
    with vera_page.expect_navigation():
        result.locator("a:has-text('Character DNA')").click()
    assert vera_page.url.endswith(character.get_absolute_url())
    assert vera_page.locator("h1").inner_text().startswith("Commander Eileen")
    character.refresh_from_db()
    assert vera_page.locator(".swatch").count() == len(character.color_palette) > 0
    assert vera_page.locator(".feature-chips li").count() == len(character.locked_features)
    dna_link = vera_page.locator("a:has-text('dna.json')").get_attribute("href")
    dna = vera_page.request.get(urljoin(vera_page.url, dna_link))
    assert dna.ok and dna.json()["character_id"] == character.character_id
    bs.wait_for_images(vera_page, ".reference img, .model-sheet, .character-hero__face img")
    bs.screenshot(vera_page, "character-page.png")

    for page in (ada_page, ben_page, vera_page):
        assert page.js_errors == []
        page.context.close()


def test_the_countdown_ticks_and_closes_the_vote_buttons_at_zero(live_server, page):
    ada, ben = make_user("ada"), make_user("ben")
    story, frames = story_with_frames(ada)
    for user, frame in ((ada, frames[0]), (ben, frames[1])):
        services.submission_create(story=story, submitter=user, frame_ids=[frame.pk], style_description="A look.")
    now = timezone.now()
    VotingSession.objects.update(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(seconds=4))

    bs.log_in(page, live_server.url, "ben", PASSWORD)
    page.goto(f"{live_server.url}{story.get_absolute_url()}")
    countdown = page.locator("[data-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"0m 0[1-4]s", first)
    page.wait_for_function(f"() => document.querySelector('[data-countdown]').textContent !== '{first}'")
    page.wait_for_function("() => document.querySelector('[data-countdown]').textContent === 'ended'", timeout=10_000)
    buttons = page.locator(".entry__vote button")
    assert buttons.count() == 2
    assert all(buttons.nth(i).is_disabled() for i in range(2))
    assert buttons.first.inner_text() == "Voting has ended"
    assert page.js_errors == []
