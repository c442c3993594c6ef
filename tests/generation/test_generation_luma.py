"""Generation on Luma through the real `lumaai` SDK, against the fake Luma API on loopback; its callbacks are
unsigned, so they only make us ask Luma again."""

from __future__ import annotations

import pytest
from django.test import Client

from generation.models import GenerationJob
from tests.support.generation_providers import SITE, job_of, poll

MODEL = "ray-2"
CALLBACK = "/api/v1/generate/webhooks/luma"

pytestmark = pytest.mark.django_db


def callback(job: GenerationJob, body: dict):
    return Client().post(f"{CALLBACK}?job={job.job_id}", body, content_type="application/json")


def test_keyframes_go_out_and_the_job_completes(fake_luma, provider_generate):
    job = job_of(provider_generate(MODEL))
    assert job.provider == "luma" and str(job.cost_usd) == "0.710"

    (submission,) = fake_luma.submissions()
    assert submission.path == "/generations/video"
    assert submission.headers["authorization"] == "Bearer luma-test-key"
    sent = submission.json()
    assert sent == {**job.arguments, "callback_url": f"{SITE}{CALLBACK}?job={job.job_id}"}
    assert sent["keyframes"]["frame0"]["type"] == "image" and sent["keyframes"]["frame0"]["url"].startswith(SITE)
    assert sent["duration"] == "5s" and sent["model"] == "ray-2"

    for _ in range(3):
        if job.status == GenerationJob.Status.COMPLETE:
            break
        job = poll(job)
    assert job.status == GenerationJob.Status.COMPLETE, job.error
    assert job.video and job.consistency_score is not None


def test_a_body_luma_refuses_fails_the_job_with_lumas_detail(fake_luma, provider_generate):
    from generation import payloads

    real = payloads.validation_errors
    fake_luma.validate = lambda model, body: real(model, {**body, "duration": "7s"})
    try:
        job = job_of(provider_generate(MODEL))
    finally:
        fake_luma.validate = real
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED and "Luma: duration:" in job.error


def test_a_callback_makes_us_fetch_the_generation_again(fake_luma, provider_generate):
    fake_luma.script_next(["queued"])
    job = job_of(provider_generate(MODEL))
    reads = len(fake_luma.received)
    fake_luma.set_state(job.provider_request_id, "completed")

    response = callback(job, fake_luma.callback_body(job.provider_request_id))

    assert response.json()["outcome"] == "refetching"
    assert len(fake_luma.received) > reads and fake_luma.received[reads].method == "GET"
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.COMPLETE and job.video


def test_a_forged_callback_body_cannot_complete_a_job(fake_luma, provider_generate):
    fake_luma.script_next(["dreaming"])
    job = job_of(provider_generate(MODEL))
    forged = {"id": job.provider_request_id, "state": "completed", "assets": {"video": "http://127.0.0.1:9/evil.mp4"}}

    assert callback(job, forged).status_code == 200

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.PROCESSING and not job.video  # Luma, asked, says dreaming
    # A callback naming another generation than the job's is not even followed.
    assert callback(job, {"id": "not-this-one", "state": "completed"}).json()["outcome"] == "unknown_request"
