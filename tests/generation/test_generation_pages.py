"""The create page says which mode a clip will use and offers the pins as the pinning settings say; the job page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from characters.models import Character, PinningSettings, Story
from generation import services
from generation.models import GenerationJob
from marketplace.models import License
from tests.support.factories import StoryFactory, UserFactory
from tests.support.generation import canonical_character, licensee_of, offline_provider, pinned_story  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_provider")]


@pytest.fixture
def world(good_clip):
    return pinned_story(good_clip, [(1, 0), (2, 1)])


def auto_switch(on: bool) -> None:
    PinningSettings.objects.filter(pk=PinningSettings.SINGLETON_PK).update(auto_switch_model=on)


def create_page(client, world) -> str:
    client.force_login(world.contributor)
    response = client.get(f"/stories/{world.story.pk}/create/")
    assert response.status_code == 200
    return response.content.decode()


def test_with_automatic_switching_the_page_says_the_pins_are_used_and_offers_to_opt_out(client, world):
    page = create_page(client, world)
    assert "Character pinned: Hero 1, Hero 2" in page and "Kling O1 reference-to-video, so" in page
    assert 'name="without_pins"' in page and 'name="with_pins"' not in page
    assert 'data-role="mode">reference-to-video<' in page and 'data-role="cost">$0.000<' in page
    # the offline provider is named as such, with what fal would charge
    assert (
        "Offline preview — made on this machine from the references, not by Kling O1 reference-to-video; "
        "$0.00. On fal this would cost $0.56."
    ) in page
    assert 'data-role="pins-on-request"' not in page


def test_without_automatic_switching_the_page_offers_the_pins_with_their_cost(client, world):
    auto_switch(False)
    page = create_page(client, world)
    assert "Character pinned: Hero 1, Hero 2" in page and 'data-role="pins-on-request"' in page
    assert "used only when you ask for them" in page
    assert '(<span data-role="reference-cost">$0.560 for 5 s, instead of $0.350</span>)' in page
    assert 'name="with_pins"' in page and 'name="without_pins"' not in page
    assert f'Character locked: <a href="{world.character.get_absolute_url()}" data-role="character-link">' in page
    assert 'data-role="mode">image-to-video<' in page


@pytest.mark.parametrize(
    ("switching", "field", "mode"),
    [
        (False, None, "image-to-video"),
        (False, "with_pins", "reference-to-video"),
        (True, None, "reference-to-video"),
        (True, "without_pins", "text-to-video"),
    ],
)
def test_what_the_contributor_ticks_decides_the_mode(client, world, switching, field, mode):
    auto_switch(switching)
    client.force_login(world.contributor)
    form = {"prompt": "She runs across the hangar", "duration": 5, "aspect_ratio": "16:9"}
    if field:
        form[field] = "on"

    response = client.post(f"/stories/{world.story.pk}/create/", form)

    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response.url == job.get_absolute_url()
    assert job.mode == mode
    assert bool(job.pinned_character_ids) is (mode == "reference-to-video")


def test_ticking_both_choices_is_refused(client, world):
    client.force_login(world.contributor)
    response = client.post(
        f"/stories/{world.story.pk}/create/",
        {"prompt": "She runs", "duration": 5, "aspect_ratio": "16:9", "with_pins": "on", "without_pins": "on"},
    )
    assert response.status_code == 400 and "Choose either" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_the_job_page_ends_a_job_nothing_moved_past_the_timeout(client, world, settings):
    """With eager tasks no sweep runs: reading the job is what fails it, and says why."""
    job = services.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")
    late = timezone.now() - timedelta(minutes=settings.GENERATION_TIMEOUT_MINUTES + 1)
    GenerationJob.objects.filter(pk=job.pk).update(created_at=late, updated_at=late)
    client.force_login(world.contributor)

    page = client.get(job.get_absolute_url()).content.decode()

    job.refresh_from_db()
    assert job.status == "failed" and "did not finish within" in job.error
    assert "did not finish within" in page


def test_the_job_page_leaves_a_recent_job_alone(client, world):
    job = services.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")
    client.force_login(world.contributor)
    assert client.get(job.get_absolute_url()).status_code == 200
    job.refresh_from_db()
    assert job.status == "queued"


# --- Picking the character: the story's own, or a licensed one --------------------------------------


@pytest.fixture
def licensed_elsewhere(good_clip):
    """A character of another story, licensed (pack of 10) by a user who generates in their own story."""
    owner = UserFactory(username="owner")
    other = StoryFactory(title="Deep Field", created_by=owner)
    character = canonical_character(other, owner, good_clip, allow_licensing=True)
    Character.objects.filter(pk=character.pk).update(name="Commander Eileen")
    character.refresh_from_db()
    buyer, story, license = licensee_of(character)
    Story.objects.filter(pk=story.pk).update(description="A rescue mission on the far side of the moon.")
    story.refresh_from_db()
    return character, buyer, story, license


def test_the_create_page_offers_a_licensed_character_with_the_uses_left(client, licensed_elsewhere):
    character, buyer, story, license = licensed_elsewhere
    client.force_login(buyer)
    page = client.get(f"/stories/{story.pk}/create/").content.decode()
    assert f'<option value="{character.character_id}"' in page
    assert "Commander Eileen — licensed, 10 uses left" in page
    # The placeholder is this story's, not the demo's astronaut.
    assert "The next scene of " in page and "far side of the moon" in page and "launch pad" not in page
    License.objects.filter(pk=license.pk).update(uses_remaining=None, uses_granted=None)
    assert "Commander Eileen — licensed, unlimited uses" in client.get(f"/stories/{story.pk}/create/").content.decode()


def test_posting_the_licensed_character_spends_one_use(client, licensed_elsewhere):
    character, buyer, story, license = licensed_elsewhere
    client.force_login(buyer)
    response = client.post(
        f"/stories/{story.pk}/create/",
        {"prompt": "She lands", "duration": 5, "aspect_ratio": "16:9", "character_id": character.character_id},
    )
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and job.story == story and job.character == character
    assert job.mode == "image-to-video"
    license.refresh_from_db()
    assert license.uses_remaining == 9


def test_a_character_the_user_may_not_use_is_not_offered_and_refused(client, licensed_elsewhere, good_clip):
    character, buyer, story, license = licensed_elsewhere
    stranger = canonical_character(StoryFactory(), UserFactory(), good_clip, allow_licensing=True)
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(buyer)
    page = client.get(f"/stories/{story.pk}/create/").content.decode()
    assert character.character_id not in page and stranger.character_id not in page
    response = client.post(
        f"/stories/{story.pk}/create/",
        {"prompt": "She lands", "duration": 5, "aspect_ratio": "16:9", "character_id": character.character_id},
    )
    assert response.status_code == 400 and not GenerationJob.objects.exists()


# --- The drift chart --------------------------------------------------------------------------------


def test_the_drift_chart_draws_one_bar_per_clip_over_a_0_to_100_axis(client, world):
    now = timezone.now()
    for i, score in enumerate([92, 70, 40]):
        GenerationJob.objects.create(
            story=world.story,
            requester=world.contributor,
            mode="image-to-video",
            model_id="m",
            user_prompt="p",
            prompt_used="p",
            provider="offline",
            status=GenerationJob.Status.COMPLETE,
            consistency_score=score,
            completed_at=now + timedelta(minutes=i),
        )
    html = client.get(world.story.get_absolute_url()).content.decode()
    chart = html[html.index('<svg class="bar-chart"') : html.index("</svg>", html.index('<svg class="bar-chart"'))]
    axis = chart[chart.index('data-role="y-axis"') : chart.index("</g>")]
    ticks = re.findall(r'<text x="27" y="(\d+)" text-anchor="end" class="bar-chart__label">(\d+)</text>', axis)
    assert [int(value) for _, value in ticks] == [0, 25, 50, 75, 100]
    tick_y = {int(value): int(y) - 3 for y, value in ticks}  # the labels sit 3 px below their tick
    bars = re.findall(r'<rect x="\d+" y="(\d+)" width="\d+" height="(\d+)"', chart)
    assert len(bars) == 3
    # Each bar stands on the 0 tick and reaches its score on the axis: 92 above 75, 40 below 50.
    tops = [int(y) for y, _ in bars]
    assert all(int(y) + int(h) == tick_y[0] for y, h in bars)
    assert tick_y[100] < tops[0] < tick_y[75] and tick_y[75] < tops[1] < tick_y[50] < tops[2] < tick_y[25]
    caption = html[html.index('data-role="drift-caption"') :]
    caption = caption[: caption.index("</p>")]
    assert "One bar per generated clip" in caption and "consistency score" in caption and "0–100" in caption
    assert "line" not in caption
