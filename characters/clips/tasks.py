"""Celery tasks: thin wrappers that take ids and call services."""

import contextlib

from celery import shared_task
from django.utils.dateparse import parse_datetime

from characters.clips import services
from common.stale_work import stale_cutoffs
from config.celery import runs_detached


@shared_task(bind=True, name="characters.tasks.extract_clip_frames", acks_late=True, reject_on_worker_lost=True)
def extract_clip_frames(self, clip_id: int, token: str = "") -> dict:
    # Run apart from the request (a worker, a background thread), it beats while it works; run inside the
    # request that queued it (eager), nothing can lose it, and a beat thread would wait on that request's rows.
    alive = services.clip_keep_alive(clip_id=clip_id, token=token) if runs_detached(self) else contextlib.nullcontext()
    with alive:
        clip = services.clip_extract_frames(clip_id=clip_id, token=token)
    return {"clip_id": clip.pk, "status": clip.status, "candidates": clip.candidates.count()}


@shared_task(name="characters.tasks.resume_stale_clips")
def resume_stale_clips(since: str | None = None) -> dict:
    """The beat's sweep for stuck clips; `since` (a process start, ISO 8601): everything not seen alive since."""
    return services.clips_resume_stale(cutoffs=stale_cutoffs(since=parse_datetime(since) if since else None))
