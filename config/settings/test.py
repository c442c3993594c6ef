"""Test settings: the same switches as production; `make test` sets DATABASE_URL and REDIS_URL."""

from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import CACHES, REDIS_URL, REST_FRAMEWORK

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon": "10000/min",
        "user": "10000/min",
        "extractions": "10000/min",
        "auth": "10000/min",
        "webhooks": "10000/min",
    },
}
CLIP_UPLOAD_RATE = "10000/min"
# Static files straight from the app folders (no collectstatic before tests), no startup scan.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

if REDIS_URL:
    # The cache lives in the next Redis database: tests empty it between tests (FLUSHDB), which
    # must not drop the broker's queues under a running Celery worker.
    _redis = urlsplit(REDIS_URL)
    _broker_db = int(_redis.path.strip("/") or 0)
    _cache_url = urlunsplit(_redis._replace(path=f"/{(_broker_db + 1) % 16}"))
    CACHES = {"default": {**CACHES["default"], "LOCATION": _cache_url}}

# Sent mail stays in django.core.mail.outbox (the browser tests read verification links from it).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# The suite runs tasks in the test's own process and transaction (eager), or on a real worker; tests of the
# embedded background mode turn it on themselves (tests/characters/clips/test_background_tasks.py).
TASKS_IN_BACKGROUND_THREADS = False
if not REDIS_URL:
    CELERY_TASK_ALWAYS_EAGER = True
