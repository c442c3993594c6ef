"""A mark's run has the lifecycle of a clip's extraction: a token, a heartbeat, the sweep that queues a lost run
again or fails it (groups.services.marks_resume_stale), the re-run (service, API, admin) and the admin's
"mark failed". Tasks run eagerly here, except where a run is really abandoned mid-way."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from characters.groups import selectors, services, tasks
from characters.models import Appearance, Mark, StoryContributor
from common.stale_work import stale_cutoffs
from demo import clips
from tests.support.factories import ClipFactory, StoryFactory, UserFactory

R = clips.RobotShot


@pytest.fixture(scope="module")
def robot_clip(clip_dir):
    """The robot crossing a launch pad for 3 s: (path, its box at 1 s)."""
    path, truth = clips.robot_clip(clip_dir / "robot_short.mp4", [R("rocket", 3, start=(0.1, 0.2), end=(0.4, 0.3))])
    return path, min(truth, key=lambda item: abs(item[0] - 1.0))[1]


def ready_clip(story, uploader, path):
    with open(path, "rb") as fh:
        name = default_storage.save(f"clips/{story.pk}/robot.mp4", File(fh))
    return ClipFactory(
        story=story, uploader=uploader, video=name, duration_seconds=3.0, fps=24.0, width=960, height=540
    )


def queued_mark(clip, box, user=None, django_capture_on_commit_callbacks=None) -> Mark:
    """A mark created through the service, its task not sent (the message "lost")."""
    with django_capture_on_commit_callbacks(execute=False):
        return services.mark_create(clip=clip, user=user or clip.uploader, seconds=1.0, box=box, label="Robo")


def abandon(mark: Mark, *, status=Mark.Status.RUNNING, seconds_ago: float = 3600, attempts: int = 1) -> Mark:
    """What a worker killed mid-run leaves: running (or queued), progress part-way, silent since."""
    Mark.objects.filter(pk=mark.pk).update(
        status=status, progress=40, heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago), attempts=attempts
    )
    mark.refresh_from_db()
    return mark


def bearer(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_the_rule_takes_silent_marks_for_lost_and_leaves_live_ones_alone(django_capture_on_commit_callbacks):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    silent = abandon(queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks))
    live = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks), seconds_ago=1
    )
    queued_long_ago = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks),
        status=Mark.Status.QUEUED,
        seconds_ago=24 * 3600,
    )
    done = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks),
        status=Mark.Status.DONE,
    )
    stale = set(selectors.stale_marks(stale_cutoffs()).values_list("pk", flat=True))
    assert silent.pk in stale and queued_long_ago.pk in stale
    assert live.pk not in stale and done.pk not in stale


@pytest.mark.slow
@pytest.mark.django_db
def test_a_lost_run_is_queued_again_by_the_sweep_and_finishes(robot_clip, django_capture_on_commit_callbacks):
    path, box = robot_clip
    story = StoryFactory()
    clip = ready_clip(story, story.created_by, path)
    mark = abandon(queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks))
    lost_token = mark.task_id
    with django_capture_on_commit_callbacks(execute=True):
        outcome = tasks.resume_stale_marks.delay().get()
    assert outcome == {"requeued": [mark.pk], "failed": []}
    mark.refresh_from_db()
    assert mark.status == Mark.Status.DONE and mark.progress == 100, mark.error_message
    assert mark.attempts == 2 and mark.task_id != lost_token
    assert mark.followed_samples == 3 and Appearance.objects.filter(mark=mark).count() == 3
    # The killed worker's message, handed out again later: superseded by the new token, it does nothing.
    finished_at = mark.finished_at
    tasks.follow_mark.delay(mark.pk, lost_token)
    mark.refresh_from_db()
    assert mark.status == Mark.Status.DONE and mark.finished_at == finished_at


@pytest.mark.django_db
def test_a_run_lost_too_many_times_fails_saying_why(settings, django_capture_on_commit_callbacks):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    mark = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks),
        attempts=settings.TASKS_MAX_ATTEMPTS,
    )
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert services.marks_resume_stale() == {"requeued": [], "failed": [mark.pk]}
    assert sent == []
    mark.refresh_from_db()
    assert mark.status == Mark.Status.FAILED and mark.finished_at is not None
    assert f"interrupted {settings.TASKS_MAX_ATTEMPTS} times" in mark.error_message
    assert services.marks_resume_stale() == {"requeued": [], "failed": []}  # a failed mark is not stale


@pytest.mark.django_db(transaction=True)
def test_a_running_mark_beats_and_a_silent_one_does_not(settings):
    settings.TASKS_HEARTBEAT_TIMEOUT_SECONDS = 4  # a beat a second
    clip = ClipFactory(width=960, height=540)
    mark = Mark.objects.create(
        clip=clip, created_by=clip.uploader, seconds=1.0, box={}, status=Mark.Status.RUNNING, task_id="mark-t"
    )
    abandon(mark, seconds_ago=60)
    before = Mark.objects.get(pk=mark.pk).heartbeat_at
    with services.mark_keep_alive(mark_id=mark.pk, token="mark-t"):
        time.sleep(2.5)
    beaten = Mark.objects.get(pk=mark.pk).heartbeat_at
    assert beaten > before + timedelta(seconds=55)
    assert mark.pk not in set(selectors.stale_marks(stale_cutoffs()).values_list("pk", flat=True))
    # A run holding another token (superseded) beats for nothing.
    with services.mark_keep_alive(mark_id=mark.pk, token="mark-old"):
        time.sleep(1.5)
    assert Mark.objects.get(pk=mark.pk).heartbeat_at == beaten


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_abandoned_mid_way_is_found_by_the_sweep_and_its_results_dropped(robot_clip, settings, monkeypatch):
    """A run really stopped part-way (its thread blocked as a dead worker's would be, no more beats): the sweep
    takes it for lost and queues it again; the old run, let go afterwards, writes nothing."""
    settings.TASKS_HEARTBEAT_TIMEOUT_SECONDS = 2
    path, box = robot_clip
    story = StoryFactory()
    clip = ready_clip(story, story.created_by, path)
    mark = Mark.objects.create(
        clip=clip, created_by=story.created_by, seconds=1.0, box=box, task_id="mark-first", attempts=1
    )
    stuck, release = threading.Event(), threading.Event()
    real_store = services._store_mark

    def store_after_release(*args, **kwargs):
        stuck.set()
        release.wait(60)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(services, "_store_mark", store_after_release)

    def first_run():
        try:
            services.mark_run(mark_id=mark.pk, token="mark-first")
        finally:
            connections.close_all()  # the thread's own connection

    first = threading.Thread(target=first_run)
    first.start()
    assert stuck.wait(60), "the run never got to storing"
    assert Mark.objects.get(pk=mark.pk).status == Mark.Status.RUNNING
    time.sleep(2.5)  # silent past the heartbeat timeout
    sent: list = []
    monkeypatch.setattr(services, "_enqueue_mark", lambda mark_id, token: sent.append((mark_id, token)))
    assert services.marks_resume_stale() == {"requeued": [mark.pk], "failed": []}
    requeued = Mark.objects.get(pk=mark.pk)
    assert requeued.status == Mark.Status.QUEUED and requeued.attempts == 2 and sent == [(mark.pk, requeued.task_id)]
    release.set()
    first.join(60)
    after = Mark.objects.get(pk=mark.pk)
    assert after.status == Mark.Status.QUEUED and after.task_id == requeued.task_id  # the old run wrote nothing
    assert not Appearance.objects.filter(mark=mark).exists()
    monkeypatch.setattr(services, "_store_mark", real_store)
    services.mark_run(mark_id=mark.pk, token=requeued.task_id)  # the queued run, as the worker would
    assert Mark.objects.get(pk=mark.pk).status == Mark.Status.DONE
    assert Appearance.objects.filter(mark=mark).count() == 3


@pytest.mark.django_db
def test_the_api_re_runs_a_mark_for_contributors_and_refuses_while_it_runs(django_capture_on_commit_callbacks):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    mark = queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    url = f"/api/v1/marks/{mark.pk}/rerun"
    contributor, outsider = clip.uploader, UserFactory()

    def post(user):
        with django_capture_on_commit_callbacks(execute=False) as sent:
            response = (bearer(user) if user else APIClient()).post(url)
        return response, sent

    assert post(None)[0].status_code == 401
    response, sent = post(outsider)
    assert response.status_code == 403 and sent == []
    for busy in (Mark.Status.QUEUED, Mark.Status.RUNNING):
        Mark.objects.filter(pk=mark.pk).update(status=busy, heartbeat_at=timezone.now())
        response, sent = post(contributor)
        assert response.status_code == 409 and response.json()["error"]["code"] == "mark_in_progress"
        assert sent == []
    Mark.objects.filter(pk=mark.pk).update(status=Mark.Status.FAILED, error_message="boom", progress=40)
    old_token = Mark.objects.get(pk=mark.pk).task_id
    response, sent = post(contributor)
    assert response.status_code == 202 and len(sent) == 1
    body = response.json()["mark"]
    assert body["status"] == "queued" and body["progress"] == 0 and body["error_message"] == ""
    assert Mark.objects.get(pk=mark.pk).task_id != old_token
    assert bearer(UserFactory()).post("/api/v1/marks/999999/rerun").status_code == 404
    # A contributor who is not the uploader may too; a clip being extracted again may not be re-run.
    other = UserFactory()
    StoryContributor.objects.create(story=clip.story, user=other, first_contribution="design")
    Mark.objects.filter(pk=mark.pk).update(status=Mark.Status.DONE)
    assert post(other)[0].status_code == 202
    Mark.objects.filter(pk=mark.pk).update(status=Mark.Status.DONE)
    type(clip).objects.filter(pk=clip.pk).update(status="extracting")
    response, sent = post(contributor)
    assert response.status_code == 409 and response.json()["error"]["code"] == "clip_not_ready" and sent == []


@pytest.mark.django_db
def test_staff_may_re_run_a_stuck_mark_and_nobody_a_live_one(django_capture_on_commit_callbacks):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    staff = UserFactory(is_staff=True)
    mark = abandon(queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks))
    with pytest.raises(services.ServiceError) as refused:
        services.mark_rerun(mark=mark, user=clip.uploader)  # not staff: a stuck run looks busy
    assert refused.value.status_code == 409
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert services.mark_rerun(mark=mark, user=staff).status == Mark.Status.QUEUED
    assert len(sent) == 1
    abandon(mark, seconds_ago=1)
    with pytest.raises(services.ServiceError) as refused:
        services.mark_rerun(mark=mark, user=staff)
    assert "not stuck" in refused.value.message


@pytest.mark.django_db
def test_the_admin_lists_marks_and_re_runs_or_fails_them_through_the_services(
    admin_client, django_capture_on_commit_callbacks
):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    running = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks), seconds_ago=1
    )
    done = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks),
        status=Mark.Status.DONE,
    )
    page = admin_client.get("/admin/characters/mark/").content.decode()
    assert "Robo" in page and clip.uploader.username in page and "Running" in page
    detail = admin_client.get(f"/admin/characters/mark/{running.pk}/change/").content.decode()
    assert 'name="seconds"' not in detail  # read only
    assert admin_client.get("/admin/characters/mark/add/").status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = admin_client.post(
            "/admin/characters/mark/",
            {"action": "rerun_marks", "_selected_action": [running.pk, done.pk]},
            follow=True,
        )
    text = response.content.decode()
    assert "1 mark queued again." in text and "being followed and searched for already" in text and len(sent) == 1
    response = admin_client.post(
        "/admin/characters/mark/", {"action": "fail_marks", "_selected_action": [running.pk]}, follow=True
    )
    assert "1 mark failed." in response.content.decode()
    running.refresh_from_db()
    done.refresh_from_db()
    assert running.status == Mark.Status.FAILED and running.task_id == ""
    assert "Marked failed by" in running.error_message
    assert done.status == Mark.Status.QUEUED


@pytest.mark.django_db
def test_the_clip_page_offers_a_re_run_of_finished_marks_only(client, django_capture_on_commit_callbacks):
    clip = ClipFactory(width=960, height=540)
    box = {"x": 100, "y": 100, "width": 200, "height": 200}
    running = abandon(
        queued_mark(clip, box, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks), seconds_ago=1
    )
    client.force_login(clip.uploader)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert f'data-mark-url="/api/v1/marks/{running.pk}"' in page and 'data-role="mark-rerun"' not in page
    Mark.objects.filter(pk=running.pk).update(status=Mark.Status.FAILED, error_message="The worker stopped.")
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'data-role="mark-rerun"' in page and "The worker stopped." in page
