"""The embedded default's background mode (no broker): long work runs in threads of the server process.

The requests return at once, the pages and the API follow the work as they do with a worker, and work a
restart interrupted is resumed at start-up. The threads have their own database connections, so these
tests commit (transaction=True). The rest of the suite keeps tasks eager.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from characters.clips import services as clip_services
from characters.models import Clip
from config import background
from generation import services as generation
from generation.models import GenerationJob
from generation.providers.offline import OfflineProvider
from tests.support.factories import StoryFactory, UserFactory
from tests.support.generation import offline_provider, pinned_story, stored_clip  # noqa: F401 -- the fixture

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 120


@pytest.fixture
def background_mode(settings, celery_eager):
    """TASKS_IN_BACKGROUND_THREADS on, as with no REDIS_URL: `.delay()` goes to the thread pool."""
    from config.celery import app

    settings.TASKS_IN_BACKGROUND_THREADS = True
    settings.CELERY_TASK_ALWAYS_EAGER = app.conf.task_always_eager = False
    yield
    background.stop(wait=True)  # every job ends (and closes its connections) before the test database goes


@pytest.fixture
def hold():
    """An event the held work waits for; set at the end in any case, so no thread is left waiting."""
    release = threading.Event()
    yield release
    release.set()


def wait_for(check, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s")


def clip_status(pk: int) -> tuple[str, int]:
    return Clip.objects.values_list("status", "progress").get(pk=pk)


def test_an_upload_returns_before_its_extraction_ends_and_the_pages_follow_it(
    background_mode, hold, client, monkeypatch, mixed_clip
):
    real_extract = clip_services.extract_candidates

    def held_extract(path, *, progress, **kwargs):
        def report(percent):
            progress(percent)
            if percent > 0:
                hold.wait(WAIT_SECONDS)  # a long clip, stopped part way

        return real_extract(path, progress=report, **kwargs)

    monkeypatch.setattr(clip_services, "extract_candidates", held_extract)
    user = UserFactory()
    story = StoryFactory(created_by=user)
    client.force_login(user)

    with open(mixed_clip, "rb") as fh:
        response = client.post(story.get_absolute_url(), {"video": fh})

    assert response.status_code == 302
    clip = Clip.objects.get(story=story)
    assert clip.status in (Clip.Status.UPLOADED, Clip.Status.EXTRACTING)  # the request did not wait for it
    wait_for(
        lambda: clip_status(clip.pk)[0] == Clip.Status.EXTRACTING and clip_status(clip.pk)[1] > 0,
        "the background extraction reporting progress",
    )
    page = client.get(response["Location"]).content.decode()
    assert "Clip uploaded; extracting frames — progress below." in page
    assert 'data-status="extracting"' in page and 'role="progressbar"' in page  # what clip-progress.js polls
    api = client.get(f"/api/v1/clips/{clip.pk}").json()
    assert api["status"] == "extracting" and 0 < api["progress"] < 100
    assert api["message"] == f"Extracting frames: {api['progress']} %"

    hold.set()
    wait_for(lambda: clip_status(clip.pk)[0] in (Clip.Status.READY, Clip.Status.FAILED), "the extraction ending")
    clip.refresh_from_db()
    assert clip.status == Clip.Status.READY, clip.error_message
    assert clip.candidates.exists() and clip.progress == 100
    page = client.get(response["Location"]).content.decode()
    assert "frame-grid" in page and 'role="progressbar"' not in page


@pytest.mark.usefixtures("offline_provider")
def test_a_generation_request_returns_at_once_and_the_job_completes_in_the_background(
    background_mode, hold, client, monkeypatch, good_clip
):
    world = pinned_story(good_clip, [(1, 0)])
    real_submit = OfflineProvider.submit

    def held_submit(self, request):
        hold.wait(WAIT_SECONDS)
        return real_submit(self, request)

    monkeypatch.setattr(OfflineProvider, "submit", held_submit)
    client.force_login(world.contributor)

    response = client.post(
        f"/stories/{world.story.pk}/create/", {"prompt": "@Element1 waves", "duration": 5, "aspect_ratio": "16:9"}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    job = GenerationJob.objects.get(story=world.story)
    assert job.status == "queued"
    page = client.get(response["Location"]).content.decode()
    assert f"Generation {job.job_id} queued; its progress is below." in page
    assert client.get(f"/api/v1/generate/{job.job_id}").json()["status"] == "queued"

    hold.set()
    wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, "the job finishing")
    job.refresh_from_db()
    assert job.status == "complete", job.error
    assert job.video and job.consistency_score is not None


@pytest.mark.usefixtures("offline_provider")
def test_work_a_restart_interrupted_is_resumed_at_start_up(background_mode, monkeypatch, good_clip):
    world = pinned_story(good_clip, [(1, 0)])
    before = timezone.now() - timedelta(seconds=5)  # the last signs of life of the process that stopped
    running = stored_clip(world.story, world.contributor, good_clip)
    queued = stored_clip(world.story, world.contributor, good_clip)
    Clip.objects.filter(pk=running.pk).update(
        status=Clip.Status.EXTRACTING,
        progress=40,
        heartbeat_at=before,
        extraction_task_id="extract-old-1",
        extraction_attempts=1,
    )
    Clip.objects.filter(pk=queued.pk).update(
        status=Clip.Status.UPLOADED,
        progress=0,
        heartbeat_at=before,
        extraction_task_id="extract-old-2",
        extraction_attempts=1,
    )
    with monkeypatch.context() as patch:  # the job is made, and the process stops before its task runs
        patch.setattr(generation, "_enqueue_submit", lambda pk: None)
        job = generation.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")
    GenerationJob.objects.filter(pk=job.pk).update(updated_at=before)

    background.start(beat=False)

    def all_done():
        return (
            all(clip_status(c.pk)[0] in ("ready", "failed") for c in (running, queued))
            and GenerationJob.objects.get(pk=job.pk).is_finished
        )

    wait_for(all_done, "the interrupted work finishing")
    for clip in (running, queued):
        clip.refresh_from_db()
        assert clip.status == Clip.Status.READY, clip.error_message
        assert clip.extraction_attempts == 2  # resuming counts as a try
        assert clip.extraction_task_id not in ("extract-old-1", "extract-old-2")
    job.refresh_from_db()
    assert job.status == "complete", job.error


def test_start_up_leaves_alone_work_seen_alive_since(background_mode, good_clip):
    story = StoryFactory()
    clip = stored_clip(story, story.created_by, good_clip)
    later = timezone.now() + timedelta(seconds=30)  # another process is running it
    Clip.objects.filter(pk=clip.pk).update(
        status=Clip.Status.EXTRACTING,
        progress=40,
        heartbeat_at=later,
        extraction_task_id="extract-elsewhere",
        extraction_attempts=1,
    )

    background.start(beat=False)
    wait_for(lambda: not background.pending_task_ids(), "the start-up sweep")

    clip.refresh_from_db()
    assert (clip.status, clip.progress, clip.extraction_task_id) == ("extracting", 40, "extract-elsewhere")
