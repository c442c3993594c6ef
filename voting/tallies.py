"""Live vote tallies.

With Redis configured, each submission's count in a session is a Redis counter (INCR per vote) so
pages can read tallies without touching the votes table. The votes table stays the source of
truth: a missing counter (Redis restarted or flushed) is rebuilt from it. Without Redis the
counts are read from the database.
"""
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from .models import Vote, VotingSession

COUNTER_TIMEOUT = 7 * 24 * 3600  # longer than any session; rebuilt on demand anyway


def live_tallies_enabled() -> bool:
    return bool(settings.REDIS_URL)


def _key(session_id: int, submission_id: int) -> str:
    return f"votes:{session_id}:{submission_id}"


def counts_from_votes(session_id: int, submission_ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(submission_ids, 0)
    rows = Vote.objects.filter(session_id=session_id).values("submission_id").annotate(n=Count("id"))
    counts.update({row["submission_id"]: row["n"] for row in rows})
    return counts


def rebuild(session_id: int, submission_ids: list[int]) -> dict[int, int]:
    counts = counts_from_votes(session_id, submission_ids)
    if live_tallies_enabled():
        cache.set_many({_key(session_id, sid): n for sid, n in counts.items()}, timeout=COUNTER_TIMEOUT)
    return counts


def record_vote(session_id: int, submission_id: int) -> None:
    """Count one committed vote in the live tally."""
    if not live_tallies_enabled():
        return
    try:
        cache.incr(_key(session_id, submission_id))
    except ValueError:  # counter gone: the rebuild reads the committed vote too
        links = VotingSession.submissions.through.objects.filter(votingsession_id=session_id)
        rebuild(session_id, list(links.values_list("charactersubmission_id", flat=True)))


def current_counts(session_id: int, submission_ids: list[int]) -> dict[int, int]:
    if not live_tallies_enabled():
        return counts_from_votes(session_id, submission_ids)
    keys = {_key(session_id, sid): sid for sid in submission_ids}
    found = cache.get_many(list(keys))
    if len(found) != len(keys):
        return rebuild(session_id, submission_ids)
    return {keys[k]: int(v) for k, v in found.items()}

