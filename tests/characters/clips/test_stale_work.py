"""Stuck work: the one rule (selectors.stale_clips), the one service that queues it again or fails it
(services.clips_resume_stale), the staff re-run of a stuck clip, and the token that makes a lost message
that comes back do nothing. Tasks run eagerly here; test_worker_recovery.py does it with real workers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from characters.clips import selectors as selectors
from characters.clips import services as services
from characters.clips import tasks as tasks
from characters.models import Clip
from common.exceptions import ServiceError
from common.stale_work import stale_cutoffs
from tests.support.factories import StoryFactory, UserFactory
from tests.support.generation import stored_clip

pytestmark = pytest.mark.django_db


@pytest.fixture
def story():
    return StoryFactory()


def stuck(
    clip: Clip,
    *,
    status=Clip.Status.EXTRACTING,
    seconds_ago: float = 3600,
    attempts: int = 1,
    task_id: str = "extract-lost",
) -> Clip:
    Clip.objects.filter(pk=clip.pk).update(
        status=status,
        progress=20,
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago),
        extraction_task_id=task_id,
        extraction_attempts=attempts,
    )
    clip.refresh_from_db()
    return clip


def test_the_rule_takes_silent_work_for_lost_and_leaves_live_work_alone(story, good_clip, settings):
    settings.TASKS_HEARTBEAT_TIMEOUT_SECONDS = 120
    settings.TASKS_QUEUED_TIMEOUT_SECONDS = 1800
    dead = stuck(stored_clip(story, story.created_by, good_clip), seconds_ago=121)
    alive = stuck(stored_clip(story, story.created_by, good_clip), seconds_ago=10)
    waiting = stuck(stored_clip(story, story.created_by, good_clip), status=Clip.Status.UPLOADED, seconds_ago=1801)
    done = stored_clip(story, story.created_by, good_clip)  # ready

    found = set(selectors.stale_clips(stale_cutoffs()).values_list("pk", flat=True))

    assert dead.pk in found and waiting.pk in found
    assert alive.pk not in found and done.pk not in found


def test_a_lost_extraction_is_queued_again_and_runs(story, good_clip, django_capture_on_commit_callbacks):
    clip = stuck(stored_clip(story, story.created_by, good_clip))

    with django_capture_on_commit_callbacks(execute=True):
        outcome = tasks.resume_stale_clips.delay().get()

    assert outcome == {"requeued": [clip.pk], "failed": []}
    clip.refresh_from_db()
    assert clip.status == Clip.Status.READY and clip.candidates.exists(), clip.error_message
    assert clip.extraction_attempts == 2 and clip.extraction_task_id != "extract-lost"


def test_work_lost_too_many_times_fails_saying_why(story, good_clip, settings):
    settings.TASKS_MAX_ATTEMPTS = 3
    clip = stuck(stored_clip(story, story.created_by, good_clip), attempts=3)

    outcome = services.clips_resume_stale()

    assert outcome == {"requeued": [], "failed": [clip.pk]}
    clip.refresh_from_db()
    assert clip.status == Clip.Status.FAILED
    assert "interrupted 3 times" in clip.error_message and "Re-run it" in clip.error_message
    assert services.clips_resume_stale() == {"requeued": [], "failed": []}  # failed once


def test_a_message_that_comes_back_after_the_clip_was_queued_again_does_nothing(story, good_clip):
    clip = stored_clip(story, story.created_by, good_clip)
    Clip.objects.filter(pk=clip.pk).update(extraction_task_id="extract-current")
    before = Clip.objects.values_list("status", "updated_at").get(pk=clip.pk)

    result = tasks.extract_clip_frames.apply_async((clip.pk, "extract-old"), task_id="extract-old").get()

    assert result["status"] == "ready"
    assert Clip.objects.values_list("status", "updated_at").get(pk=clip.pk) == before  # not run, not touched
    # And its own token runs only while it is queued or running: a finished run's message coming back is ignored.
    tasks.extract_clip_frames.apply_async((clip.pk, "extract-current"), task_id="extract-current").get()
    assert Clip.objects.values_list("status", "updated_at").get(pk=clip.pk) == before


def test_staff_may_re_run_a_stuck_clip_and_nobody_a_live_one(story, good_clip, django_capture_on_commit_callbacks):
    staff = UserFactory(is_staff=True)
    clip = stuck(stored_clip(story, UserFactory(), good_clip))

    with pytest.raises(ServiceError) as refused:  # the uploader is not staff: still busy for them
        services.clip_request_extraction(clip=clip, user=clip.uploader)
    assert refused.value.status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        clip = services.clip_request_extraction(clip=clip, user=staff)
    clip.refresh_from_db()
    assert clip.status == Clip.Status.READY and clip.extraction_attempts == 1, clip.error_message

    live = stuck(stored_clip(story, story.created_by, good_clip), seconds_ago=1)
    with pytest.raises(ServiceError) as refused:
        services.clip_request_extraction(clip=live, user=staff)
    assert refused.value.status_code == 409 and "not stuck" in refused.value.message


def test_the_api_re_run_answers_staff_for_a_stuck_clip(client, story, good_clip, django_capture_on_commit_callbacks):
    clip = stuck(stored_clip(story, story.created_by, good_clip))
    client.force_login(clip.uploader)
    assert client.post(f"/api/v1/clips/{clip.pk}/extract").status_code == 409
    client.force_login(UserFactory(is_staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/clips/{clip.pk}/extract")
    assert response.status_code == 202, response.json()


def test_the_admin_action_resumes_the_stuck_clips_it_is_given(
    admin_client, story, good_clip, django_capture_on_commit_callbacks
):
    lost = stuck(stored_clip(story, story.created_by, good_clip))
    alive = stuck(stored_clip(story, story.created_by, good_clip), seconds_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/characters/clip/",
            {"action": "resume_stuck_extractions", "_selected_action": [lost.pk, alive.pk]},
            follow=True,
        )
    assert "Queued again: 1; failed after too many tries: 0; not stuck" in response.content.decode()
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert lost.status == Clip.Status.READY and alive.status == Clip.Status.EXTRACTING


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="asks the Redis broker: set REDIS_URL, or `make test`")
def test_a_queued_clip_whose_message_is_gone_from_redis_is_stale_after_the_grace(story, good_clip, settings):
    settings.TASKS_QUEUED_GRACE_SECONDS = 60
    settings.TASKS_QUEUED_TIMEOUT_SECONDS = 3600
    gone = stuck(
        stored_clip(story, story.created_by, good_clip),
        status=Clip.Status.UPLOADED,
        seconds_ago=61,
        task_id="extract-never-sent",
    )
    just_queued = stuck(
        stored_clip(story, story.created_by, good_clip),
        status=Clip.Status.UPLOADED,
        seconds_ago=5,
        task_id="extract-on-its-way",
    )

    found = set(selectors.stale_clips(stale_cutoffs()).values_list("pk", flat=True))

    assert gone.pk in found and just_queued.pk not in found
