"""When queued or running work counts as lost: the cutoffs every stale-work selector applies, and a look
at the broker for messages that are gone.

Work shows it is alive through a timestamp (a clip's heartbeat, a generation job's last update). The
beat's sweeps, the embedded background mode's start-up and the admin all ask the selectors with
these cutoffs (characters.clips.selectors.stale_clips, generation.selectors.stale_jobs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaleCutoffs:
    running_before: datetime  # running, and no sign of life since: its worker is gone
    queued_before: datetime  # queued, and no sign of life since: taken for lost whatever the broker says
    # Queued since before this, and its message is no longer in the broker (None: the broker is not asked).
    unsent_before: datetime | None = None


def stale_cutoffs(*, since: datetime | None = None) -> StaleCutoffs:
    """The cutoffs from the settings; with `since` (a process start), all work not seen alive since then."""
    if since is not None:
        return StaleCutoffs(running_before=since, queued_before=since)
    now = timezone.now()
    return StaleCutoffs(
        running_before=now - timedelta(seconds=settings.TASKS_HEARTBEAT_TIMEOUT_SECONDS),
        queued_before=now - timedelta(seconds=settings.TASKS_QUEUED_TIMEOUT_SECONDS),
        unsent_before=now - timedelta(seconds=settings.TASKS_QUEUED_GRACE_SECONDS),
    )


def missing_messages(task_ids: Iterable[str]) -> set[str] | None:
    """Which of these tasks have no message left to run them (queued, held by a worker, or timed)?

    None when that cannot be told: a broker other than Redis, or one that does not answer.
    """
    task_ids = {task_id for task_id in task_ids if task_id}
    if not task_ids:
        return set()
    from config import background

    if background.enabled():
        return task_ids - background.pending_task_ids()
    from celery import current_app

    url = current_app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    try:
        return task_ids - _redis_task_ids(url, current_app)
    except Exception as exc:  # the broker is down or answers oddly: do not guess
        logger.warning("Could not look for queued messages in the broker: %s", exc)
        return None


def _redis_task_ids(url: str, app) -> set[str]:
    """Ids of every task message in kombu's Redis queues (each priority's list) and its unacked hash."""
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    options = app.conf.broker_transport_options or {}
    prefix = options.get("global_keyprefix", "")
    steps = options.get("priority_steps", PRIORITY_STEPS)
    queues = [queue.name for queue in app.conf.task_queues or ()] or [app.conf.task_default_queue]
    found: set[str] = set()
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for queue in queues:
            for step in steps:
                key = prefix + (f"{queue}{Channel.sep}{step}" if step else queue)
                for raw in client.lrange(key, 0, -1):
                    found.add(_message_id(json.loads(raw)))
        for raw in client.hvals(prefix + options.get("unacked_key", Channel.unacked_key)):
            found.add(_message_id(json.loads(raw)[0]))
    finally:
        client.close()
    return found


def _message_id(message: dict) -> str:
    return (message.get("headers") or {}).get("id") or (message.get("properties") or {}).get("correlation_id", "")


def heartbeat_every() -> float:
    """Seconds between a running task's beats: four beats in the time after which it counts as lost
    (TASKS_HEARTBEAT_TIMEOUT_SECONDS), between 1 and 20 s."""
    return max(1.0, min(20.0, settings.TASKS_HEARTBEAT_TIMEOUT_SECONDS / 4))


@contextlib.contextmanager
def keep_alive(touch: Callable[[], None], *, every: float | None = None) -> Iterator[None]:
    """Call `touch` every `every` seconds (default `heartbeat_every()`) from a thread of its own while the
    block runs (a heartbeat).

    For work run apart from any request's transaction (a worker, a background thread): the thread writes
    through its own database connection, closed when the block ends.
    """
    every = heartbeat_every() if every is None else every
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    touch()
                except Exception as exc:  # a missed beat is not the work's failure
                    logger.warning("Heartbeat failed: %s", exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
