"""A worker killed mid-job neither loses nor duplicates the job: real Celery workers, Redis, the fake fal.

The workers are started here (tests/services.celery_worker, the helper behind the session worker)
because one of them gets `kill -9`. They use a Redis database of their own as the broker, so the
session's shared worker, if another test started it, never takes this test's tasks.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from characters.models import Character, PinnedCharacter
from generation import services, tasks
from generation.models import GenerationJob
from tests.support.fal_plugin import FAKE_FAL_KEY
from tests.support.generation import pinned_story
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


isolated_broker = isolated_broker_fixture(offset=4)  # broker + 4: its own Redis database


@pytest.fixture
def start_worker(isolated_broker, fake_fal, media_root, tmp_path):
    """Start a real worker (prefork, one child) on the isolated broker, with settings for the fake fal."""
    from config.celery import app

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(os.environ["DATABASE_URL"], connection.settings_dict["NAME"]),
        "REDIS_URL": isolated_redis_url(4),
        "DJANGO_MEDIA_ROOT": str(media_root),
        "GENERATION_PROVIDER": "fal",
        "FAL_KEY": FAKE_FAL_KEY,
        "SAFE_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GENERATION_USE_WEBHOOKS": "false",
        "GENERATION_POLL_SECONDS": "0.3",
        "SITE_URL": "http://testserver",
        # FAL_QUEUE_RUN_HOST and SSL_CERT_FILE come from os.environ (tests/support/fal_plugin.py sets them).
    }

    def answers(hostname: str) -> bool:
        return bool(app.control.ping(destination=[hostname], timeout=1.0))

    def start(name: str, **overrides: str):
        log_dir = tmp_path / name
        log_dir.mkdir()
        return celery_worker(env=env | overrides, log_dir=log_dir, ping=answers)

    return start


def _drained(client, unacked_before: int) -> bool:
    """Every message sent to the generation queue was taken and acknowledged (tasks ack late, when done)."""
    return client.llen("generation") == 0 and client.hlen("unacked") <= unacked_before


def test_a_killed_worker_neither_loses_nor_duplicates_a_job(
    fake_fal, isolated_broker, start_worker, good_clip, settings
):
    settings.SITE_URL = "http://testserver"
    world = pinned_story(good_clip, [(1, 1)])
    fake_fal.script_next(queued_polls=8, in_progress_polls=1)

    with start_worker("first") as first:
        job = services.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")
        # The worker submits, then polls fal every few tenths of a second while the request waits in fal's queue.
        wait_until(
            lambda: fake_fal.requests and fake_fal.only_request().status_polls >= 2,
            timeout=90,
            what="the first worker submitting and polling",
            log=first.log,
            process=first.process,
        )
        os.killpg(first.process.pid, signal.SIGKILL)  # the whole worker, main process and child, at once
        first.process.wait(timeout=10)

    job.refresh_from_db()
    assert job.status in ("submitted", "processing") and job.provider_request_id, job.error
    # Its next poll died with the worker: Redis hands an unacknowledged message out again only after
    # the visibility timeout (an hour). Five minutes of silence later, the beat's sweep finds the job.
    time.sleep(1.0)
    job.refresh_from_db()
    assert job.status in ("submitted", "processing"), "nothing should move the job while no worker runs"
    GenerationJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))

    with start_worker("second") as second:
        tasks.poll_stale_jobs.delay()
        wait_until(
            lambda: GenerationJob.objects.get(pk=job.pk).is_finished,
            timeout=120,
            what="the second worker finishing the job",
            log=second.log,
            process=second.process,
        )
        job.refresh_from_db()
        assert job.status == "complete", (job.error, second.log_tail())

        # The lost messages coming back late, or the sweep and a webhook racing: nothing happens twice.
        unacked = isolated_broker.hlen("unacked")
        tasks.submit_generation_job.delay(job.pk)
        tasks.poll_generation_job.delay(job.pk)
        tasks.complete_generation_job.delay(job.pk)
        tasks.poll_stale_jobs.delay()
        wait_until(
            lambda: _drained(isolated_broker, unacked),
            timeout=60,
            what="the repeated tasks",
            log=second.log,
            process=second.process,
        )

    assert len(fake_fal.submissions) == len(fake_fal.accepted) == 1, "fal must get the job exactly once"
    request = fake_fal.only_request()
    assert request.result_fetches == 1, "the result must be fetched (and the video stored) exactly once"
    job.refresh_from_db()
    assert job.status == "complete" and job.consistency_score is not None
    stored = default_storage.listdir(f"generated/{world.story.pk}")[1]
    assert stored == [f"{job.job_id}.mp4"], stored
    assert default_storage.open(job.video.name).read() == good_clip.read_bytes()
    assert PinnedCharacter.objects.get(pk=world.pins[0].pk).usage_count == 1
    assert Character.objects.get(pk=world.character.pk).clips_used == 1
    assert GenerationJob.objects.count() == 1


def test_a_worker_killed_after_fal_accepted_the_submission_does_not_send_it_twice(
    fake_fal, isolated_broker, start_worker, good_clip, settings, live_server
):
    """fal queues the request, and the worker dies before it hears the request id: no second submission.

    The job waits, queued, with its submission unconfirmed; fal's webhook, posted to the URL the worker
    gave it (our live server, with the job's id in it), names the request, and the job completes.
    """
    settings.SITE_URL = live_server.url
    webhooks = {"GENERATION_USE_WEBHOOKS": "true", "SITE_URL": live_server.url}
    world = pinned_story(good_clip, [(1, 1)])
    fake_fal.script_next(queued_polls=None, submit_answer_delay=20)  # under fal_client's 30 s timeout

    with start_worker("first", **webhooks) as first:
        job = services.generation_create(requester=world.contributor, story=world.story, prompt="@Element1 waves")
        wait_until(
            lambda: fake_fal.accepted,
            timeout=90,
            what="fal accepting the first worker's submission",
            log=first.log,
            process=first.process,
        )
        os.killpg(first.process.pid, signal.SIGKILL)  # while it waits for fal's answer
        first.process.wait(timeout=10)

    (accepted,) = fake_fal.accepted
    job.refresh_from_db()
    assert job.submission_unconfirmed and job.attempts == 1, (job.status, job.provider_request_id, job.error)
    # Long after (past the submit task's time limit), the sweep and the lost message come back.
    past = timezone.now() - timedelta(seconds=services.SUBMIT_CALL_LIMIT_SECONDS + 60)
    GenerationJob.objects.filter(pk=job.pk).update(submit_started_at=past, updated_at=past)

    with start_worker("second", **webhooks) as second:
        unacked = isolated_broker.hlen("unacked")
        tasks.poll_stale_jobs.delay()
        tasks.submit_generation_job.delay(job.pk)
        wait_until(
            lambda: _drained(isolated_broker, unacked),
            timeout=60,
            what="the repeated submissions",
            log=second.log,
            process=second.process,
        )
        job.refresh_from_db()
        assert job.submission_unconfirmed and len(fake_fal.submissions) == 1, "sent again: fal would make two"

        fake_fal.complete(accepted.request_id)
        status, answer = fake_fal.deliver_webhook(accepted.request_id)  # to the URL fal was given
        assert (status, answer["outcome"]) == (200, "adopted, completing"), answer
        wait_until(
            lambda: GenerationJob.objects.get(pk=job.pk).is_finished,
            timeout=120,
            what="the second worker completing the job",
            log=second.log,
            process=second.process,
        )

    job.refresh_from_db()
    assert job.status == "complete" and job.provider_request_id == accepted.request_id, job.error
    assert len(fake_fal.submissions) == 1 and fake_fal.only_request().result_fetches == 1
    assert default_storage.open(job.video.name).read() == good_clip.read_bytes()
    assert PinnedCharacter.objects.get(pk=world.pins[0].pk).usage_count == 1
    assert GenerationJob.objects.count() == 1
