"""The extraction task run by a real Celery worker over Redis, on PostgreSQL (what production runs).

The worker is another process: rows must be committed for it to see them (transaction=True),
and the test follows the clip only through the database, as the pages and the API do.
"""

import time

import pytest
from django.core.files import File

from characters.clips import services
from characters.models import CandidateFrame, Clip
from tests.support.factories import StoryFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 180


def follow(clip_id: int, worker) -> tuple[Clip, list[tuple[str, int]]]:
    """Poll the clip's row until it is finished; return it and every (status, progress) seen, in order."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status, progress = Clip.objects.values_list("status", "progress").get(pk=clip_id)
        if not seen or seen[-1] != (status, progress):
            seen.append((status, progress))
        if status in (Clip.Status.READY, Clip.Status.FAILED):
            return Clip.objects.get(pk=clip_id), seen
        if worker.process.poll() is not None:
            pytest.fail(f"the Celery worker died (exit code {worker.process.returncode}){worker.log_tail()}")
        time.sleep(0.02)
    pytest.fail(f"clip {clip_id} never finished; states seen: {seen}{worker.log_tail()}")


def upload(path, story, uploader) -> Clip:
    with open(path, "rb") as fh:
        return services.clip_create(story=story, uploader=uploader, upload=File(fh, name=path.name))


def test_worker_extracts_an_uploaded_clip_and_reports_progress(celery_worker_process, celery_eager, mixed_clip):
    assert celery_eager is False
    story = StoryFactory()
    clip = upload(mixed_clip, story, UserFactory())
    # The upload returns at once: the extraction is queued, not run in this process.
    assert clip.status == Clip.Status.UPLOADED

    clip, seen = follow(clip.pk, celery_worker_process)

    assert clip.status == Clip.Status.READY, (clip.error_message, celery_worker_process.log_tail())
    assert clip.progress == 100
    progress_values = [progress for _, progress in seen]
    assert progress_values == sorted(progress_values), f"progress went backwards: {seen}"
    assert any(status == Clip.Status.EXTRACTING and 0 <= progress < 100 for status, progress in seen), seen
    frames = list(CandidateFrame.objects.filter(clip=clip).order_by("rank"))
    assert frames, "the worker stored no candidate frames"
    # The frames are really stored where this process (and the web server) can read them.
    for frame in frames:
        assert frame.image.storage.exists(frame.image.name)
        assert frame.thumbnail.storage.exists(frame.thumbnail.name)
    assert clip.last_frame and clip.last_frame.storage.exists(clip.last_frame.name)
    # The last two seconds of the mixed clip show no person.
    assert all(frame.seconds < 8.0 for frame in frames)
    assert clip.frames_analysed >= 9


def test_worker_marks_a_clip_failed_when_its_file_is_gone(celery_worker_process, good_clip):
    clip = upload(good_clip, StoryFactory(), UserFactory())
    clip, _ = follow(clip.pk, celery_worker_process)
    assert clip.status == Clip.Status.READY, clip.error_message

    clip.video.storage.delete(clip.video.name)
    services.clip_request_extraction(clip=clip, user=clip.uploader)
    clip, seen = follow(clip.pk, celery_worker_process)

    assert clip.status == Clip.Status.FAILED, seen
    assert clip.error_message.strip(), "a failed clip must say why"
    assert clip.extraction_finished_at is not None
