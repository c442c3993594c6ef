"""Celery tasks of character groups: thin wrappers that take ids and call services."""

import contextlib

from celery import shared_task
from django.utils.dateparse import parse_datetime

from characters.groups import services
from common.stale_work import stale_cutoffs
from config.celery import runs_detached


@shared_task(bind=True, name="characters.tasks.follow_mark", acks_late=True, reject_on_worker_lost=True)
def follow_mark(self, mark_id: int, token: str = "") -> dict:
    # Beats only apart from the request that queued it (as extraction does): run eagerly, nothing can lose it.
    alive = services.mark_keep_alive(mark_id=mark_id, token=token) if runs_detached(self) else contextlib.nullcontext()
    with alive:
        mark = services.mark_run(mark_id=mark_id, token=token)
    return {"mark_id": mark_id, "status": mark.status if mark else "gone"}


@shared_task(name="characters.tasks.resume_stale_marks")
def resume_stale_marks(since: str | None = None) -> dict:
    """The beat's sweep for stuck marks; `since` (a process start, ISO 8601): everything not seen alive since."""
    return services.marks_resume_stale(cutoffs=stale_cutoffs(since=parse_datetime(since) if since else None))
