"""No clip is left stuck by a worker killed mid-extraction (`kill -9` of the whole worker) or by a flushed
broker: real Celery workers with beat (`-B`), Redis, PostgreSQL.

Once a worker with the beat is up, the clip ends `ready` within RECOVERY_SECONDS: the sweep
(characters.tasks.resume_stale_clips, every TASKS_SWEEP_SECONDS) finds it by its silent heartbeat or its
missing message and queues it again. The workers use a Redis database of their own as the broker, so
the session's shared worker never takes these tasks.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.core.files import File
from django.db import connection

from characters.clips import selectors as selectors
from characters.clips import services as services
from characters.clips import tasks as tasks
from characters.models import Clip
from common.stale_work import stale_cutoffs
from tests.support.factories import StoryFactory, UserFactory
from tests.support.services import (  # noqa: F401 -- celery_eager
    celery_worker,
    database_url_for,
    isolated_broker_fixture,
    isolated_redis_url,
    tasks_go_to_workers,
    use_broker,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECOVERY_SECONDS = 90
# What the recovering worker runs with: a sweep every second, a run silent for 3 s is lost.
FAST_SWEEP = {"TASKS_SWEEP_SECONDS": "1", "TASKS_HEARTBEAT_TIMEOUT_SECONDS": "3", "TASKS_QUEUED_GRACE_SECONDS": "1"}


isolated_broker = isolated_broker_fixture(offset=5)  # broker + 5: its own Redis database


@pytest.fixture
def start_worker(isolated_broker, media_root, tmp_path):
    from config.celery import app

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(os.environ["DATABASE_URL"], connection.settings_dict["NAME"]),
        "REDIS_URL": isolated_redis_url(5),
        "DJANGO_MEDIA_ROOT": str(media_root),
    }

    def answers(hostname: str) -> bool:
        return bool(app.control.ping(destination=[hostname], timeout=1.0))

    def start(name: str, *, beat: bool = False, **overrides: str):
        log_dir = tmp_path / name
        log_dir.mkdir()
        return celery_worker(env=env | overrides, log_dir=log_dir, ping=answers, beat=beat, purge=False)

    return start


def upload(path) -> Clip:
    story = StoryFactory()
    with open(path, "rb") as fh:
        return services.clip_create(story=story, uploader=UserFactory(), upload=File(fh, name=path.name))


def state(clip: Clip) -> tuple[str, int]:
    return Clip.objects.values_list("status", "progress").get(pk=clip.pk)


def wait_until_finished(clip: Clip, worker) -> Clip:
    wait_until(
        lambda: state(clip)[0] in (Clip.Status.READY, Clip.Status.FAILED),
        timeout=RECOVERY_SECONDS,
        what=f"clip {clip.pk} finishing after the recovery",
        log=worker.log,
        process=worker.process,
    )
    clip.refresh_from_db()
    return clip


def test_a_worker_killed_mid_extraction_leaves_no_clip_stuck(isolated_broker, start_worker, mixed_clip):
    # 4 samples a second: about 40 frames to analyse, so the run is surely under way when it is killed.
    with start_worker("first", EXTRACTION_FPS="4") as first:
        clip = upload(mixed_clip)
        wait_until(
            lambda: state(clip)[0] == Clip.Status.EXTRACTING and state(clip)[1] > 0,
            timeout=180,
            what="the first worker extracting",
            log=first.log,
            process=first.process,
        )
        os.killpg(first.process.pid, signal.SIGKILL)  # main process and child at once: nothing is acknowledged
        first.process.wait(timeout=10)

    lost = Clip.objects.get(pk=clip.pk)
    assert lost.status == Clip.Status.EXTRACTING, "the extraction ended before the kill: the test proves nothing"
    time.sleep(1.5)
    assert state(clip) == (lost.status, lost.progress), "nothing should move the clip while no worker runs"
    lost_token = lost.extraction_task_id

    with start_worker("second", beat=True, **FAST_SWEEP) as second:
        started = time.monotonic()
        clip = wait_until_finished(clip, second)
        recovered_in = time.monotonic() - started
        assert clip.status == Clip.Status.READY, (clip.error_message, second.log_tail())
        assert clip.candidates.exists() and clip.progress == 100
        assert clip.extraction_attempts == 2 and clip.extraction_task_id != lost_token
        assert recovered_in < RECOVERY_SECONDS

        # The killed worker's message, handed out again once Redis's visibility timeout passes: it does nothing.
        finished_at = clip.extraction_finished_at
        unacked = isolated_broker.hlen("unacked")
        tasks.extract_clip_frames.apply_async((clip.pk, lost_token), task_id=lost_token)
        wait_until(
            lambda: isolated_broker.llen("extraction") == 0 and isolated_broker.hlen("unacked") <= unacked,
            timeout=60,
            what="the old message being taken",
            log=second.log,
            process=second.process,
        )
        time.sleep(0.5)
        clip.refresh_from_db()
        assert clip.status == Clip.Status.READY and clip.extraction_finished_at == finished_at


def test_a_clip_whose_message_was_flushed_from_the_broker_is_queued_again(
    isolated_broker, start_worker, good_clip, settings
):
    clip = upload(good_clip)  # no worker yet: the message waits in Redis
    assert clip.status == Clip.Status.UPLOADED
    settings.TASKS_QUEUED_GRACE_SECONDS = 0
    assert not selectors.stale_clips(stale_cutoffs()).filter(pk=clip.pk).exists(), "its message is there"

    isolated_broker.flushdb()  # what FLUSHALL does to the broker's database

    assert selectors.stale_clips(stale_cutoffs()).filter(pk=clip.pk).exists()
    with start_worker("after-flush", beat=True, **FAST_SWEEP) as worker:
        clip = wait_until_finished(clip, worker)
    assert clip.status == Clip.Status.READY, clip.error_message
    assert clip.extraction_attempts == 2 and clip.candidates.exists()
