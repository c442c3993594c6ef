"""No mark is left "running" by a worker killed mid-run (`kill -9` of the whole worker): real Celery workers with
beat (`-B`), Redis, PostgreSQL. The sweep (characters.tasks.resume_stale_marks, every TASKS_SWEEP_SECONDS) finds
the mark by its silent heartbeat and queues it again; the next worker finishes it. The workers use a Redis
database of their own as the broker, so the session's shared worker never takes these tasks."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

from characters.groups import services
from characters.models import Mark
from demo import clips
from tests.support.factories import ClipFactory, StoryFactory
from tests.support.services import (  # noqa: F401 -- celery_eager
    celery_worker,
    database_url_for,
    isolated_broker_fixture,
    isolated_redis_url,
    tasks_go_to_workers,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BROKER_OFFSET = 6
RECOVERY_SECONDS = 120
FAST_SWEEP = {"TASKS_SWEEP_SECONDS": "1", "TASKS_HEARTBEAT_TIMEOUT_SECONDS": "3", "TASKS_QUEUED_GRACE_SECONDS": "1"}
R = clips.RobotShot

isolated_broker = isolated_broker_fixture(offset=BROKER_OFFSET)


@pytest.fixture
def start_worker(isolated_broker, media_root, tmp_path):
    from config.celery import app

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(os.environ["DATABASE_URL"], connection.settings_dict["NAME"]),
        "REDIS_URL": isolated_redis_url(BROKER_OFFSET),
        "DJANGO_MEDIA_ROOT": str(media_root),
        "EXTRACTION_FPS": "8",  # many samples to search: the run is surely under way when it is killed
    }

    def answers(hostname: str) -> bool:
        return bool(app.control.ping(destination=[hostname], timeout=1.0))

    def start(name: str, *, beat: bool = False, **overrides: str):
        log_dir = tmp_path / name
        log_dir.mkdir()
        return celery_worker(env=env | overrides, log_dir=log_dir, ping=answers, beat=beat, purge=False)

    return start


@pytest.fixture
def story_with_robot_clips(clip_dir):
    """A story: the clip to mark the robot in, and three other clips to search (10 s each, the robot in them)."""
    story = StoryFactory()
    marked, truth = clips.robot_clip(clip_dir / "worker_mark.mp4", [R("rocket", 4, start=(0.1, 0.2), end=(0.4, 0.3))])
    others = [
        clips.robot_clip(clip_dir / f"worker_other_{i}.mp4", [R("chelsea", 10, start=(0.7, 0.35), end=(0.15, 0.2))])[0]
        for i in range(3)
    ]
    stored = []
    for position, (path, seconds) in enumerate([(marked, 4.0)] + [(p, 10.0) for p in others], start=1):
        with open(path, "rb") as fh:
            name = default_storage.save(f"clips/{story.pk}/{path.name}", File(fh))
        stored.append(
            ClipFactory(
                story=story,
                uploader=story.created_by,
                video=name,
                position=position,
                duration_seconds=seconds,
                fps=24.0,
                width=960,
                height=540,
            )
        )
    return stored[0], min(truth, key=lambda item: abs(item[0] - 1.0))[1]


def state(mark: Mark) -> tuple[str, int]:
    return Mark.objects.values_list("status", "progress").get(pk=mark.pk)


def test_a_worker_killed_mid_mark_leaves_no_mark_running(start_worker, story_with_robot_clips):
    clip, box = story_with_robot_clips
    with start_worker("first") as first:
        mark = services.mark_create(clip=clip, user=clip.uploader, seconds=1.0, box=box, label="Robo")
        wait_until(
            lambda: state(mark)[0] == Mark.Status.RUNNING and state(mark)[1] > 40,  # searching the other clips
            timeout=180,
            what="the first worker searching for the mark",
            log=first.log,
            process=first.process,
        )
        os.killpg(first.process.pid, signal.SIGKILL)  # main process and child at once: nothing is acknowledged
        first.process.wait(timeout=10)

    lost = Mark.objects.get(pk=mark.pk)
    assert lost.status == Mark.Status.RUNNING, "the run ended before the kill: the test proves nothing"
    time.sleep(1.5)
    assert state(mark) == (lost.status, lost.progress), "nothing should move the mark while no worker runs"

    with start_worker("second", beat=True, **FAST_SWEEP) as second:
        started = time.monotonic()
        wait_until(
            lambda: state(mark)[0] in (Mark.Status.DONE, Mark.Status.FAILED),
            timeout=RECOVERY_SECONDS,
            what=f"mark {mark.pk} finishing after the recovery",
            log=second.log,
            process=second.process,
        )
        recovered_in = time.monotonic() - started
        mark.refresh_from_db()
        assert mark.status == Mark.Status.DONE, (mark.error_message, second.log_tail())
        assert mark.attempts == 2 and mark.task_id != lost.task_id and mark.progress == 100
        assert mark.clips_searched == 3 and mark.found_samples > 0
        assert recovered_in < RECOVERY_SECONDS
