"""What happens when a vote declares a winner: the design is locked into a Character DNA."""
import logging

from django.dispatch import receiver

from .signals import winner_declared

logger = logging.getLogger(__name__)


@receiver(winner_declared, dispatch_uid="voting.lock_winner")
def lock_winner_on_declaration(sender, submission_id: int, **kwargs) -> None:
    from .tasks import lock_winning_submission

    try:
        lock_winning_submission.delay(submission_id)
    except Exception:  # the vote stands either way; the lock can be re-run from the admin
        logger.exception("Locking the winner of submission %s failed", submission_id)
