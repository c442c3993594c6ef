"""Helpers for the Replicate / Runway / Luma generation tests: a character to generate with, and the calls."""

from __future__ import annotations

from rest_framework.test import APIClient

from generation import tasks
from generation.models import GenerationJob

SITE = "http://testserver"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def job_of(response) -> GenerationJob:
    assert response.status_code == 202, response.content
    return GenerationJob.objects.get(job_id=response.json()["job_id"])


def poll(job: GenerationJob) -> GenerationJob:
    """What the next scheduled poll task does."""
    tasks.poll_generation_job.delay(job.pk)
    job.refresh_from_db()
    return job


def snapshot(job: GenerationJob) -> tuple:
    job.refresh_from_db()
    return job.status, job.provider_request_id, job.error, job.progress, bool(job.video)
