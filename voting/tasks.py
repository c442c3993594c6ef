from celery import shared_task

from . import services


@shared_task(name="voting.tasks.close_expired_sessions")
def close_expired_sessions() -> int:
    return services.close_expired_sessions()


@shared_task(
    name="voting.tasks.lock_winning_submission", acks_late=True, autoretry_for=(ConnectionError,), max_retries=3
)
def lock_winning_submission(submission_id: int) -> str:
    return services.submission_lock_winner(submission_id=submission_id).character_id
