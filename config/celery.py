"""Celery application. Queues: `extraction` (video decoding, CPU heavy) and `generation`.

With no broker (the embedded default) tasks still go through `.delay()`/`apply_async()`: the task class
below hands them to a thread pool of the server process (config/background.py) instead of a broker.
"""

import os

from celery import Celery
from celery import Task as CeleryTask
from celery.exceptions import Retry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


class Task(CeleryTask):
    """Every task of the project: sent to a broker, run eagerly, or run in a background thread of this process."""

    def apply_async(
        self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, shadow=None, **options
    ):
        from . import background

        if not self._get_app().conf.task_always_eager and background.enabled():
            return background.submit(
                self,
                args=args,
                kwargs=kwargs,
                task_id=task_id,
                countdown=options.get("countdown"),
                eta=options.get("eta"),
            )
        return super().apply_async(
            args, kwargs, task_id=task_id, producer=producer, link=link, link_error=link_error, shadow=shadow, **options
        )

    def retry(self, *args, **kwargs):
        """In a background thread, retry as a worker does: later (its countdown), through `apply_async`.

        Celery's eager `apply()` would run the retry at once, in the same thread, with no backoff."""
        from . import background

        if not background.in_background_job():
            return super().retry(*args, **kwargs)
        self.request.is_eager = False  # so that Celery schedules it with apply_async
        try:
            return super().retry(*args, **kwargs)
        except Retry as exc:
            exc.sig = None  # scheduled already: apply() must not run it again now
            raise
        finally:
            self.request.is_eager = True


def runs_detached(task) -> bool:
    """Does this task run apart from the code that queued it (a worker, a background thread), not inside it?"""
    from . import background

    return not task.request.is_eager or background.in_background_job()


app = Celery("character_persistence", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's `tasks` module; the characters app keeps its tasks in its rooms (task names stay
# "characters.tasks.*", as queued messages and the routes in settings know them).
app.autodiscover_tasks()
app.autodiscover_tasks(["characters.clips", "characters.groups"])
