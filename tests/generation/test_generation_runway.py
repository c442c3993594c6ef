"""Generation on Runway through the real `runwayml` SDK, against the fake Runway API on loopback (polled)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from generation.models import GenerationJob
from tests.support.generation_providers import SITE, job_of, poll

MODEL = "gen4_turbo"

pytestmark = pytest.mark.django_db


def test_the_builders_body_goes_out_and_the_polled_job_completes(fake_runway, provider_generate):
    job = job_of(provider_generate(MODEL, duration=10, aspect_ratio="9:16"))
    assert job.provider == "runway" and str(job.cost_usd) == "0.500"

    (submission,) = fake_runway.submissions()
    assert submission.headers["authorization"] == "Bearer key_test-runway"
    assert submission.headers["x-runway-version"] == "2024-11-06"
    sent = submission.json()
    assert sent == job.arguments
    assert sent["model"] == "gen4_turbo" and sent["ratio"] == "720:1280" and sent["duration"] == 10
    assert sent["promptImage"].startswith(SITE) and "She waves at the camera" in sent["promptText"]

    for _ in range(3):
        if job.status == GenerationJob.Status.COMPLETE:
            break
        job = poll(job)
    assert job.status == GenerationJob.Status.COMPLETE, job.error
    assert job.video and job.consistency_score is not None


def test_a_body_runway_refuses_fails_the_job_with_runways_message(fake_runway, provider_generate):
    from generation import payloads

    real = payloads.validation_errors
    fake_runway.validate = lambda model, body: real(model, {**body, "ratio": "16:9"})  # as if the ratio were wrong
    try:
        job = job_of(provider_generate(MODEL))
    finally:
        fake_runway.validate = real
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED
    assert "Runway: Validation of body failed: ratio:" in job.error


def test_a_cancelled_task_ends_the_job(fake_runway, provider_generate):
    fake_runway.script_next(["RUNNING", "CANCELLED"])
    job = job_of(provider_generate(MODEL))
    job = poll(job)
    assert job.status == GenerationJob.Status.CANCELLED
    assert "Runway cancelled the task." in job.error
    assert not job.video


def test_a_failed_task_fails_the_job_with_runways_reason(fake_runway, provider_generate):
    fake_runway.script_next(["RUNNING", "FAILED"])
    job = poll(job_of(provider_generate(MODEL)))
    assert job.status == GenerationJob.Status.FAILED and "The task failed (fake)." in job.error


def test_cancelling_a_job_deletes_the_task(fake_runway, provider_generate, provider_world):
    fake_runway.script_next(["RUNNING"])
    job = job_of(provider_generate(MODEL))
    client = APIClient()
    client.force_authenticate(provider_world[0])
    assert client.post(f"/api/v1/generate/{job.job_id}/cancel").status_code == 200
    assert fake_runway.jobs[job.provider_request_id].state == "CANCELLED"
    assert [r.method for r in fake_runway.received][-1] == "DELETE"
