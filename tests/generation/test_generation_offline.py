"""The offline provider end to end: no key, a real MP4 rendered from the references, stored and scored."""

from __future__ import annotations

import pytest
from django.core.files import File
from django.core.files.storage import default_storage

from characters.clips.services import clip_create, story_create
from characters.dna.services import character_lock
from characters.models import Character, PinnedCharacter
from characters.vision.video import probe_video
from generation import services
from tests.support.factories import UserFactory
from tests.support.generation import offline_provider, pinned_story  # noqa: F401 -- the fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_provider")]


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run what a service queues once its transaction commits, as the worker would (tasks are eager)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def stored_video_info(job, tmp_path):
    local = tmp_path / "stored.mp4"
    local.write_bytes(default_storage.open(job.video.name).read())
    return probe_video(local)


def test_a_character_locked_from_a_real_clip_generates_a_scored_clip(run_tasks, good_clip, tmp_path):
    owner = UserFactory(username="owner")
    story = story_create(title="Orbit", created_by=owner)
    with run_tasks(), open(good_clip, "rb") as fh:
        clip = clip_create(story=story, uploader=owner, upload=File(fh, name="good.mp4"))  # extraction runs
    frames = list(clip.candidates.order_by("rank")[:3])
    assert frames, "the extraction found no candidate frames"
    character = character_lock(
        story=story,
        name="Eileen",
        frame_ids=[f.pk for f in frames],
        creator=owner,
        description="Smiling astronaut, short brown curly hair, orange flight suit",
    )
    assert character.status == Character.Status.CANONICAL

    with run_tasks():
        job = services.generation_create(requester=owner, story=story, prompt="She waves at the camera")

    job.refresh_from_db()
    assert (job.mode, job.provider, job.status) == ("image-to-video", "offline", "complete"), job.error
    assert job.reference_image_used == "full_body" and job.character == character
    info = stored_video_info(job, tmp_path)
    assert (info.width, info.height, round(info.fps)) == (640, 360, 24) and 4.5 <= info.duration_seconds <= 5.5
    assert job.consistency_score is not None and len(job.frame_scores) >= 3
    assert job.consistency_score >= 60, job.frame_scores  # rendered from her own reference image
    assert Character.objects.get(pk=character.pk).clips_used == 1
    # The provider's own copy is gone once the job has stored its video.
    assert not default_storage.listdir("generated/offline")[1]


def test_pinned_characters_generate_offline_in_the_asked_shape(run_tasks, good_clip, tmp_path):
    world = pinned_story(good_clip, [(1, 1), (2, 0)])

    with run_tasks():
        job = services.generation_create(
            requester=world.contributor, story=world.story, prompt="@Element2 nods", aspect_ratio="9:16", duration=10
        )

    job.refresh_from_db()
    assert (job.mode, job.status) == ("reference-to-video", "complete"), job.error
    assert job.prompt_used == "@Element1 @Element2 nods"
    info = stored_video_info(job, tmp_path)
    assert (info.width, info.height) == (360, 640) and 9.5 <= info.duration_seconds <= 10.5
    assert job.consistency_score is not None and len(job.frame_scores) >= 3
    assert sorted(PinnedCharacter.objects.values_list("usage_count", flat=True)) == [1, 1]


def test_text_to_video_offline_stores_a_clip_without_a_score(run_tasks, tmp_path):
    owner = UserFactory(username="owner")
    story = story_create(title="Harbour", created_by=owner)

    with run_tasks():
        job = services.generation_create(requester=owner, story=story, prompt="A storm over the harbour at night")

    job.refresh_from_db()
    assert (job.mode, job.status) == ("text-to-video", "complete"), job.error
    assert stored_video_info(job, tmp_path).duration_seconds >= 4.5
    assert job.consistency_score is None and "no consistency score" in job.error
