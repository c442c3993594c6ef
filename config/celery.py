"""Celery application. Queues: `extraction` (video decoding, CPU heavy) and `generation`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("character_persistence")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's `tasks` module; the characters app keeps its tasks in its rooms (task names stay
# "characters.tasks.*", as queued messages and the routes in settings know them).
app.autodiscover_tasks()
app.autodiscover_tasks(["characters.clips"])
