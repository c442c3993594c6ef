"""Live vote tallies.

With Redis configured, each session's tallies are one Redis hash, so pages read them without touching
the votes table and the vote endpoint gets them back from the very call that records its vote. The
votes table stays the source of truth and the hash is only ever derived from it:

- A vote writes its submission's `vote_count` as the database returned it from the vote's own
  UPDATE. That row update serialises the votes of a submission, so each value is exact, and the hash
  keeps the largest value written: whatever order concurrent requests reach Redis in, the hash ends
  at the database's count, and no vote is counted twice or lost.
- `vote_count` covers every session the submission was in (a runoff's entries bring their first-round
  votes), so the hash also keeps each submission's base, its votes from other sessions, read in one
  snapshot with this session's votes; the session's tally is the count minus the base.
- A hash without its `built` mark (Redis restarted, flushed or evicted it) is rebuilt from the votes
  table; rebuilding also keeps the larger values, so a rebuild racing votes never takes one back.

Without Redis, or when it cannot be reached, counts are read from the database.
"""

from __future__ import annotations

import logging

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from redis.exceptions import RedisError

from common.cache import redis_client, redis_script

from .models import CharacterSubmission, Vote

logger = logging.getLogger(__name__)

HASH_TTL_SECONDS = 7 * 24 * 3600  # longer than any session; rebuilt on demand anyway
BUILT = "built"

# Lua: set the hash field `field` to `value` unless it already holds a larger count.
_KEEP_LARGER = """
    if value > tonumber(redis.call('HGET', KEYS[1], field) or '-1') then
        redis.call('HSET', KEYS[1], field, value)
    end
"""
# KEYS[1] the session's hash; ARGV: ttl, then (submission id, vote_count) pairs.
_RECORD = f"""
for i = 2, #ARGV, 2 do
    local field = 'c:' .. ARGV[i]
    local value = tonumber(ARGV[i + 1])
{_KEEP_LARGER}
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'built') == 0 then return false end
return redis.call('HGETALL', KEYS[1])
"""
# KEYS[1] the session's hash; ARGV: ttl, then (submission id, vote_count, base) triples. Marks it built.
_REBUILD = f"""
for i = 2, #ARGV, 3 do
    local field = 'c:' .. ARGV[i]
    local value = tonumber(ARGV[i + 1])
{_KEEP_LARGER}
    redis.call('HSET', KEYS[1], 'b:' .. ARGV[i], ARGV[i + 2])
end
redis.call('HSET', KEYS[1], 'built', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


def live_tallies_enabled() -> bool:
    return redis_client() is not None


def key(session_id: int) -> str:
    return f"cps:tally:{session_id}"


def _session_tallies(flat: list) -> dict[int, int]:
    """{submission id: votes in this session} from the hash's HGETALL (count minus base)."""
    fields = {name.decode(): int(value) for name, value in zip(flat[::2], flat[1::2], strict=True)}
    return {
        int(name[2:]): value - fields.get(f"b:{name[2:]}", 0) for name, value in fields.items() if name.startswith("c:")
    }


def counts_from_votes(session_id: int, submission_ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(submission_ids, 0)
    rows = Vote.objects.filter(session_id=session_id).values("submission_id").annotate(n=Count("id"))
    counts.update({row["submission_id"]: row["n"] for row in rows})
    return counts


def _database_rows(session_id: int) -> list[tuple[int, int, int]]:
    """(submission id, vote_count, votes in this session) for the session's entries, in one snapshot."""
    in_session = (
        Vote.objects.filter(session_id=session_id, submission_id=OuterRef("pk"))
        .order_by()
        .values("submission_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return list(
        CharacterSubmission.objects.filter(voting_sessions=session_id)
        .annotate(in_session=Coalesce(Subquery(in_session, output_field=IntegerField()), 0))
        .values_list("pk", "vote_count", "in_session")
    )


def rebuild(session_id: int, submission_ids: list[int] | None = None) -> dict[int, int]:
    """The session's tallies from the database, written to Redis when it is there."""
    rows = _database_rows(session_id)
    counts = {sid: n for sid, _, n in rows}
    if submission_ids is not None:
        counts = {sid: counts.get(sid, 0) for sid in submission_ids}
    script = redis_script(_REBUILD)
    if script is None:
        return counts
    args = [HASH_TTL_SECONDS]
    for sid, vote_count, in_session in rows:
        args += [sid, vote_count, vote_count - in_session]
    try:
        merged = _session_tallies(script(keys=[key(session_id)], args=args))
    except RedisError as exc:
        logger.warning("Live tallies unavailable, counting from the database: %s", exc)
        return counts
    return {sid: merged.get(sid, n) for sid, n in counts.items()}


def record_vote(session_id: int, submission_id: int, vote_count: int) -> dict[int, int] | None:
    """Record a committed vote (the submission's `vote_count` after it); returns the session's tallies.

    None without Redis or when Redis fails: the caller then counts from the database.
    """
    script = redis_script(_RECORD)
    if script is None:
        return None
    try:
        flat = script(keys=[key(session_id)], args=[HASH_TTL_SECONDS, submission_id, vote_count])
    except RedisError as exc:
        logger.warning("Live tallies unavailable, counting from the database: %s", exc)
        return None
    if not flat:  # the hash was lost: the rebuild reads this committed vote too
        return rebuild(session_id)
    return _session_tallies(flat)


def stored_counts(session_id: int) -> dict[int, int] | None:
    """What Redis holds for the session right now, without rebuilding (None when it holds nothing)."""
    client = redis_client()
    if client is None:
        return None
    flat = client.hgetall(key(session_id))
    if not flat or BUILT.encode() not in flat:
        return None
    return _session_tallies([item for pair in flat.items() for item in pair])


def current_counts(session_id: int, submission_ids: list[int]) -> dict[int, int]:
    if not live_tallies_enabled():
        return counts_from_votes(session_id, submission_ids)
    try:
        found = stored_counts(session_id)
    except RedisError as exc:
        logger.warning("Live tallies unavailable, counting from the database: %s", exc)
        return counts_from_votes(session_id, submission_ids)
    if found is None or not set(submission_ids) <= set(found):
        return rebuild(session_id, submission_ids)
    return {sid: found[sid] for sid in submission_ids}
