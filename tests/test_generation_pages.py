"""The create page says which mode a clip will use and offers the pins as the pinning settings say; the job page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from characters.models import PinningSettings
from generation import services
from generation.models import GenerationJob

from .generation_support import offline_provider, pinned_story  # noqa: F401 -- the fixture

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
    assert ("Offline preview — made on this machine from the references, not by Kling O1 reference-to-video; "
            "$0.00. On fal this would cost $0.56.") in page
    assert 'data-role="pins-on-request"' not in page


def test_without_automatic_switching_the_page_offers_the_pins_with_their_cost(client, world):
    auto_switch(False)
    page = create_page(client, world)
    assert "Character pinned: Hero 1, Hero 2" in page and 'data-role="pins-on-request"' in page
    assert "used only when you ask for them" in page
    assert '(<span data-role="reference-cost">$0.560 for 5 s, instead of $0.350</span>)' in page
    assert 'name="with_pins"' in page and 'name="without_pins"' not in page
    assert f"Character locked: <a href=\"{world.character.get_absolute_url()}\">" in page  # the default: DNA
    assert 'data-role="mode">image-to-video<' in page


@pytest.mark.parametrize(
    ("switching", "field", "mode"),
    [(False, None, "image-to-video"), (False, "with_pins", "reference-to-video"),
     (True, None, "reference-to-video"), (True, "without_pins", "text-to-video")],
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
    response = client.post(f"/stories/{world.story.pk}/create/", {
        "prompt": "She runs", "duration": 5, "aspect_ratio": "16:9", "with_pins": "on", "without_pins": "on"})
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
