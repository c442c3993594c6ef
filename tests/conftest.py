"""Shared fixtures.

Clips are made here from scikit-image's public-domain photos (no download).

Real services: `make test` (scripts/test.sh) sets DATABASE_URL and REDIS_URL to PostgreSQL and
Redis servers on loopback, so pytest-django creates its test database there. The Celery worker
and moto's S3 server are started here, once per session, by the tests that ask for them. A plain
`pytest` with no environment runs on SQLite and skips what needs Redis, saying so.

Celery: with REDIS_URL set the settings turn eager mode off (as in production). Every test runs
tasks in-process (eager, errors propagate) like the embedded default, except the tests that use
`celery_worker_process`, whose tasks go over Redis to the real worker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from demo import clips
from tests.support.services import S3Endpoint, celery_worker, database_url_for, moto_s3_server

# The fake fal queue server of the generation tests. Its plugin's pytest_configure sets
# FAL_QUEUE_RUN_HOST and SSL_CERT_FILE before anything imports fal_client (which reads the host
# once, at import); the server only starts for tests that use the `fake_fal` fixture.
pytest_plugins = ["tests.support.fal_plugin", "tests.support.providers_plugin"]

# --- Clips ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def good_clip(clip_dir) -> Path:
    """5 s, 1280x720, frontal astronaut, sharp and well lit."""
    return clips.good_frontal(clip_dir / "good.mp4")


@pytest.fixture(scope="session")
def mixed_clip(clip_dir) -> Path:
    """10 s: 0-2 good / 2-4 blurred / 4-6 dark / 6-8 face leaving the frame / 8-10 no person."""
    return clips.mixed_defects(clip_dir / "mixed.mp4")


@pytest.fixture(scope="session")
def profile_clip(clip_dir) -> Path:
    return clips.profile(clip_dir / "profile.mp4")


@pytest.fixture(scope="session")
def no_person_clip(clip_dir) -> Path:
    return clips.no_person(clip_dir / "no_person.mp4")


@pytest.fixture(scope="session")
def truncated_tail_clip(clip_dir, good_clip) -> Path:
    return clips.truncated_tail(good_clip, clip_dir / "truncated_tail.mp4")


@pytest.fixture(scope="session")
def missing_header_clip(clip_dir) -> Path:
    return clips.missing_header(clip_dir / "missing_header.mp4")


# --- Isolation: media, cache, Celery mode ---------------------------------------------------------


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    """One media folder for the session, shared with the Celery worker process."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _media_in_temp_dir(settings, media_root):
    """Stored files go to a temp folder, never the project's media/ (FileSystemStorage follows MEDIA_ROOT)."""
    settings.MEDIA_ROOT = str(media_root)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (live tallies, throttle counters).

    Under Redis the test settings put the cache in its own database, so this never drops the
    broker's queues under a running worker.
    """
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def celery_eager(request, settings) -> bool:
    """Run tasks in-process unless the test uses the real worker. Returns whether tasks are eager."""
    from config.celery import app

    eager = "celery_worker_process" not in request.fixturenames
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    # The Celery app copied the Django settings when first used, so set both.
    settings.CELERY_TASK_ALWAYS_EAGER = app.conf.task_always_eager = eager
    settings.CELERY_TASK_EAGER_PROPAGATES = app.conf.task_eager_propagates = True
    yield eager
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


# --- Real services ------------------------------------------------------------------------------


def uses_postgresql() -> bool:
    return django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end a check that nothing still holds it open.

    PostgreSQL will not drop a database others are connected to. A connection a test left open
    (in another thread or context) is reported with its last query, then closed so the drop succeeds.
    """
    yield
    if not uses_postgresql():
        return
    import warnings

    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        leaked = cursor.fetchall()
        if leaked:
            warnings.warn(f"database connections left open at the end of the tests: {leaked}", stacklevel=1)
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    connection.close()


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, media_root, service_logs):
    """A real Celery worker (all queues) on pytest-django's test database and our Redis.

    Tests using it need `@pytest.mark.django_db(transaction=True)`: the worker is another process
    and only sees committed rows. It is stopped before the test database is dropped.
    """
    import os

    from django.db import connection

    from config.celery import app

    if not django_settings.REDIS_URL:
        pytest.skip("needs Redis and a Celery worker: set REDIS_URL, or run `make test`, which starts one")
    if not uses_postgresql():
        pytest.skip("the Celery worker needs a database it can share (PostgreSQL): run `make test`")

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(os.environ["DATABASE_URL"], connection.settings_dict["NAME"]),
        "REDIS_URL": django_settings.REDIS_URL,
        "DJANGO_MEDIA_ROOT": str(media_root),
    }

    def answers(hostname: str) -> bool:
        # An explicit connection to the session's broker: other tests may have re-pointed the app's pools.
        with app.connection_for_write(django_settings.REDIS_URL) as connection:
            return bool(app.control.ping(destination=[hostname], timeout=1.0, connection=connection))

    with celery_worker(env=env, log_dir=service_logs, ping=answers) as worker:
        yield worker


@pytest.fixture(scope="session")
def s3_server(service_logs) -> S3Endpoint:
    """moto's S3 server on a free loopback port, for the whole session."""
    with moto_s3_server(service_logs) as endpoint:
        yield endpoint


@dataclass(frozen=True)
class S3Bucket:
    name: str
    endpoint: S3Endpoint

    @property
    def client(self):
        return self.endpoint.client()

    def keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture
def s3_bucket(s3_server) -> S3Bucket:
    """A new, empty bucket on the moto server."""
    bucket = S3Bucket(name=f"test-{uuid.uuid4().hex[:16]}", endpoint=s3_server)
    bucket.client.create_bucket(Bucket=bucket.name)
    return bucket


@pytest.fixture
def s3_storage(settings, s3_bucket) -> S3Bucket:
    """Make django-storages' S3 backend the default storage, on a fresh bucket, for one test.

    The same settings production gets from S3_BUCKET (see config/settings/base.py). FileFields
    without their own storage hold `default_storage`, a lazy object that Django's test signals
    reset when STORAGES changes, so every model's files follow; STORAGES goes last so the new
    backend is built with the AWS_* values already in place.
    """
    from django.core.files.storage import default_storage

    endpoint = s3_bucket.endpoint
    settings.S3_BUCKET = settings.AWS_STORAGE_BUCKET_NAME = s3_bucket.name
    settings.AWS_S3_ENDPOINT_URL = endpoint.endpoint_url
    settings.AWS_S3_REGION_NAME = endpoint.region
    settings.AWS_ACCESS_KEY_ID = endpoint.access_key
    settings.AWS_SECRET_ACCESS_KEY = endpoint.secret_key
    settings.AWS_QUERYSTRING_AUTH = True
    settings.AWS_QUERYSTRING_EXPIRE = 3600
    settings.AWS_S3_SIGNATURE_VERSION = "s3v4"
    settings.AWS_S3_FILE_OVERWRITE = False
    settings.AWS_DEFAULT_ACL = None
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}}
    assert default_storage.bucket_name == s3_bucket.name  # the lazy default now builds the S3 backend
    return s3_bucket


# --- The `slow` marker: `make test-fast` runs the rest (-m "not slow") ---------------------------------

# A test that asks for any of these renders clips with ffmpeg (and usually runs MediaPipe/dlib on them),
# drives Chromium, or starts a worker or S3; so do the tests with these markers.
SLOW_FIXTURES = frozenset(
    {
        "good_clip",
        "mixed_clip",
        "profile_clip",
        "no_person_clip",
        "truncated_tail_clip",
        "missing_header_clip",
        "live_server",
        "page",
        "browser",
        "celery_worker_process",
        "s3_server",
        "s3_bucket",
        "s3_storage",
    }
)
SLOW_MARKERS = frozenset({"browser", "worker", "s3", "samples", "slow"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        markers = {marker.name for marker in item.iter_markers()}
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())) or SLOW_MARKERS & markers:
            item.add_marker(pytest.mark.slow)
