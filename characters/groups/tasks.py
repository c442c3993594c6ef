"""Celery tasks of character groups: thin wrappers that take ids and call services."""

from celery import shared_task

from characters.groups import services


@shared_task(name="characters.tasks.follow_mark", acks_late=True, reject_on_worker_lost=True)
def follow_mark(mark_id: int) -> dict:
    mark = services.mark_run(mark_id=mark_id)
    return {"mark_id": mark_id, "status": mark.status if mark else "gone"}
