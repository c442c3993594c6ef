"""Celery tasks: thin wrappers that take ids and call services."""
from celery import shared_task

from characters.clips import services


@shared_task(name="characters.tasks.extract_clip_frames", acks_late=True, reject_on_worker_lost=True)
def extract_clip_frames(clip_id: int) -> dict:
    clip = services.clip_extract_frames(clip_id=clip_id)
    return {"clip_id": clip.pk, "status": clip.status, "candidates": clip.candidates.count()}
