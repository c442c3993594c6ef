"""Reads for generation: a story's generated clips in order, for the drift chart; jobs nobody is moving."""

from __future__ import annotations

from django.db.models import QuerySet

from characters.models import Story
from common.stale_work import StaleCutoffs
from common.typing import AnyUser

from .models import GenerationJob


def can_see_job(user: AnyUser | None, job: GenerationJob) -> bool:
    """Staff, or the person who asked for the clip, may see (and cancel) a job."""
    return bool(user is not None and user.is_authenticated and (user.is_staff or user.pk == job.requester_id))


def job_visible_to(user: AnyUser | None, job_id: str) -> GenerationJob | None:
    """The job with this id if `user` may see it, else None (the same answer for someone else's job)."""
    job = GenerationJob.objects.select_related("story", "character").filter(job_id=job_id).first()
    return job if job is not None and can_see_job(user, job) else None


def story_generated_clips(story: Story) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(story=story, status=GenerationJob.Status.COMPLETE).order_by("completed_at")


def stale_jobs(cutoffs: StaleCutoffs) -> tuple[list[int], list[int]]:
    """Unfinished jobs nobody has moved since `cutoffs.running_before` (a lost task, a killed worker, a flushed
    broker, a missed webhook): (to submit, to poll). The one rule for a stuck job (see common.stale_work).

    A running job is moved at least every poll (30 s at most), so its last update is its heartbeat. Sending
    either task again is safe: a job is submitted at most once (services.generation_submit).
    """
    stale = GenerationJob.objects.filter(updated_at__lt=cutoffs.running_before)
    Status = GenerationJob.Status
    to_submit = stale.filter(status=Status.QUEUED, provider_request_id="").values_list("pk", flat=True)
    to_poll = stale.filter(status__in=GenerationJob.AT_PROVIDER_STATUSES).values_list("pk", flat=True)
    return list(to_submit), list(to_poll)


def drift_points(story: Story) -> list[dict]:
    """Each generated clip's score in story order: the drift chart's points."""
    return [
        {"job_id": job.job_id, "score": job.consistency_score, "mode": job.mode, "url": job.get_absolute_url()}
        for job in story_generated_clips(story).only("job_id", "consistency_score", "mode", "completed_at")
        if job.consistency_score is not None
    ]
