"""Celery application. Queues: `extraction` (video decoding, CPU heavy) and `generation`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("character_persistence")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
