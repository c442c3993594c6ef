"""Tasks in background threads of the server process: the embedded default, with no broker.

`config.celery.Task.apply_async` hands each task here when `TASKS_IN_BACKGROUND_THREADS` is on, so the
callers' `.delay()`/`apply_async()` stay as they are: a bounded thread pool runs `task.apply()` (the task
function as a worker would), a countdown waits in a timer first, and each job closes its database
connections when it ends. `start()` (called by config/wsgi.py and asgi.py, so `runserver` and gunicorn
both get it) resumes the work a restart interrupted and runs the beat schedule in-process: the same
periodic tasks `celery beat` sends (the stale-work sweeps, closing expired votes).

What a worker gives and this does not: time limits (a thread cannot be stopped), and work surviving the
process (what was running or waiting is resumed at the next start). It suits one server process; run
several, or long work at scale, with REDIS_URL and workers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from celery.result import AsyncResult
from celery.utils import uuid
from django.conf import settings
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_timers: set[threading.Timer] = set()
_pending: set[str] = set()  # ids of tasks submitted and not finished (waiting, timed or running)
_local = threading.local()


def enabled() -> bool:
    return bool(getattr(settings, "TASKS_IN_BACKGROUND_THREADS", False))


def in_background_job() -> bool:
    """Is the calling thread running a background task?"""
    return getattr(_local, "active", False)


@contextlib.contextmanager
def tasks_inline() -> Iterator[None]:
    """Run tasks inside the caller (eager) for the block, whatever the mode: a command that needs their results
    at once (the demo data picks frames from the clips it has just uploaded). Not for threaded code."""
    from .celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = saved


def pending_task_ids() -> set[str]:
    with _lock:
        return set(_pending)


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, settings.TASKS_BACKGROUND_THREADS), thread_name_prefix="task"
            )
        return _executor


def submit(
    task,
    *,
    args=None,
    kwargs=None,
    task_id: str | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
) -> AsyncResult:
    task_id = task_id or uuid()
    delay = float(countdown or 0)
    if eta is not None:
        delay = max(delay, (eta - timezone.now()).total_seconds())
    with _lock:
        _pending.add(task_id)
    if delay > 0:
        timer = threading.Timer(delay, _submit_now, (task, args, kwargs, task_id))
        timer.daemon = True
        with _lock:
            _timers.add(timer)
        timer.start()
    else:
        _submit_now(task, args, kwargs, task_id)
    return AsyncResult(task_id, app=task._get_app())


def _submit_now(task, args, kwargs, task_id: str) -> None:
    with _lock:
        # A timer that fired (any other thread is not in the set: a no-op).
        _timers.discard(threading.current_thread())  # type: ignore[arg-type]
    try:
        _get_executor().submit(_run, task, args, kwargs, task_id)
    except RuntimeError:  # shut down meanwhile: the next start resumes the work
        with _lock:
            _pending.discard(task_id)


def _run(task, args, kwargs, task_id: str) -> None:
    _local.active = True
    try:
        result = task.apply(args, kwargs, task_id=task_id, throw=False)
        if result.failed():
            logger.error("Background task %s[%s] failed: %r", task.name, task_id, result.result)
    except Exception:
        logger.exception("Background task %s[%s] could not run", task.name, task_id)
    finally:
        _local.active = False
        with _lock:
            _pending.discard(task_id)
        connections.close_all()  # this thread's connections only


# --- Start-up and the in-process beat ---------------------------------------------------------------


def _schedule_seconds(schedule) -> float | None:
    if isinstance(schedule, (int, float)):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    return None


def _every(seconds: float, task_name: str, args=(), kwargs=None) -> None:
    from .celery import app

    def fire():
        try:
            app.tasks[task_name].apply_async(args, kwargs or {})
        except Exception:
            logger.exception("Could not queue the periodic task %s", task_name)
        finally:
            with _lock:
                _timers.discard(timer)
                stopped = _executor is None
            if not stopped:
                _every(seconds, task_name, args, kwargs)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    with _lock:
        _timers.add(timer)
    timer.start()


def start(*, beat: bool = True) -> None:
    """Resume the work a restart left (in flight then, so nothing of this process runs it), then keep the beat."""
    if not enabled():
        return
    from .celery import app

    _get_executor()
    app.loader.import_default_modules()  # the apps' tasks modules (a web process imports them only on use)
    boot = timezone.now().isoformat()
    # The same tasks the beat sends, told that anything not seen alive since boot is lost.
    for name in (
        "characters.tasks.resume_stale_clips",
        "characters.tasks.resume_stale_marks",
        "generation.tasks.poll_stale_jobs",
    ):
        app.tasks[name].apply_async(kwargs={"since": boot})
    if not beat:
        return
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        seconds = _schedule_seconds(entry["schedule"])
        if seconds is None or seconds <= 0:
            logger.warning("Background mode runs interval schedules only; %s is left out", entry["task"])
            continue
        _every(seconds, entry["task"], entry.get("args", ()), entry.get("kwargs"))


def stop(*, wait: bool = True) -> None:
    """Cancel the timers and the beat, and finish (or, with wait=False, leave) the jobs under way. For tests."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
        timers = list(_timers)
        _timers.clear()
    for timer in timers:
        timer.cancel()
    if executor is not None:
        executor.shutdown(wait=wait, cancel_futures=not wait)
    with _lock:
        _pending.clear()
