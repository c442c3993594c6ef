from celery import shared_task

from . import services


@shared_task(name="voting.tasks.close_expired_sessions")
def close_expired_sessions() -> int:
    return services.close_expired_sessions()
