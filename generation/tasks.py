"""Celery tasks for generation (queue `generation`): thin wrappers over the services."""

from celery import shared_task
from django.conf import settings
from django.utils.dateparse import parse_datetime

from common.stale_work import stale_cutoffs
from config.celery import runs_detached

from . import services
from .providers import TransientProviderError

RETRY = {
    "autoretry_for": (TransientProviderError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
}


def _retried_later(task) -> bool:
    """Will anything run this step again if it hits a transient error now?

    On a worker or in a background thread (the embedded default), yes: the task retries with backoff, and
    the stale-job sweep picks up whatever is left after that. Run eagerly (inside the request), only while
    Celery's own retries last, and only when errors do not propagate (they do by default: the first retry
    is then raised to the caller instead of run); no sweep runs there.
    """
    if runs_detached(task):
        return True
    return not task.app.conf.task_eager_propagates and task.request.retries < task.max_retries


# Its time limit bounds how long a claimed submission can still be in flight (see services).
@shared_task(
    bind=True,
    name="generation.tasks.submit_generation_job",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=services.SUBMIT_CALL_LIMIT_SECONDS,
    soft_time_limit=services.SUBMIT_CALL_LIMIT_SECONDS - 30,
    **RETRY,
)
def submit_generation_job(self, job_pk: int) -> str:
    return services.generation_submit(job_pk=job_pk, retried_later=_retried_later(self)).status


@shared_task(name="generation.tasks.poll_generation_job", acks_late=True, reject_on_worker_lost=True, **RETRY)
def poll_generation_job(job_pk: int, delay: float | None = None) -> str:
    job, again = services.generation_poll(job_pk=job_pk)
    if again and not poll_generation_job.app.conf.task_always_eager:
        # Back off gently while the provider works; the beat task picks up any poll that gets lost.
        delay = min(30.0, (delay or settings.GENERATION_POLL_SECONDS) * 1.5)
        poll_generation_job.apply_async((job_pk, delay), countdown=delay)
    return job.status


@shared_task(name="generation.tasks.complete_generation_job", acks_late=True, reject_on_worker_lost=True, **RETRY)
def complete_generation_job(job_pk: int, completed: bool = False) -> str:
    return services.generation_complete(job_pk=job_pk, completed=completed).status


@shared_task(name="generation.tasks.poll_stale_jobs")
def poll_stale_jobs(since: str | None = None) -> dict:
    """The beat's sweep for stuck jobs; `since` (a process start, ISO 8601): every job not moved since."""
    return services.generation_resume_stale(cutoffs=stale_cutoffs(since=parse_datetime(since) if since else None))
