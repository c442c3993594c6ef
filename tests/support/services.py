"""Real servers for the tests, started on loopback as child processes: moto's S3 server and a
Celery worker. (PostgreSQL and Redis come from `scripts/test.sh`, which `make test` runs.)

Each helper starts one process in its own process group, waits until it answers, and stops it
(and only it) when the block ends, printing the tail of its log if it never came up.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import kombu.pools
import pytest

from tests.support.paths import PROJECT_DIR
from tests.support.throwaway import free_port, log_tail, stop_process, wait_until

BIN_DIR = Path(sys.executable).parent

WORKER_QUEUES = "default,extraction,generation"


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


# --- S3 (moto server mode) ----------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    endpoint_url: str
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextlib.contextmanager
def moto_s3_server(log_dir: Path) -> Iterator[S3Endpoint]:
    port = free_port()
    log = log_dir / "moto_server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until(lambda: _port_open(port), timeout=30, what="moto_server", log=log, process=process)
        yield S3Endpoint(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        stop_process(process, grace=5)


# --- Celery worker ------------------------------------------------------------------------------


def database_url_for(url: str, database_name: str) -> str:
    """`url` (a DATABASE_URL) pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database_name))


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    hostname: str
    log: Path

    def log_tail(self) -> str:
        return log_tail(self.log)


@contextlib.contextmanager
def celery_worker(
    *, env: dict[str, str], log_dir: Path, ping: Callable[[str], bool], beat: bool = False, purge: bool = True
) -> Iterator[WorkerProcess]:
    """A real `celery worker` on every queue: prefork with one child, as in production but small.

    `env` holds what differs from ours (settings module, DATABASE_URL, REDIS_URL, media root);
    `ping(hostname)` says whether the worker answers over the broker. `beat`: with Celery beat in the
    worker (`-B`), so the periodic sweeps run; `purge=False` keeps the messages already queued.
    """
    hostname = f"tests-{os.getpid()}@localhost"
    log = log_dir / "celery_worker.log"
    command = [
        str(BIN_DIR / "celery"),
        "-A",
        "config",
        "worker",
        "-Q",
        WORKER_QUEUES,
        "-P",
        "prefork",
        "-c",
        "1",
        "-n",
        hostname,
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO",
    ]
    if purge:
        command.append("--purge")
    if beat:
        command += ["-B", "-s", str(log_dir / "celerybeat-schedule")]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        # Ready when it says so in its log (or answers a ping): the log does not depend on the test
        # process's broker connections, which other tests may have re-pointed.
        wait_until(
            lambda: f"{hostname} ready." in log.read_text(errors="replace") or ping(hostname),
            timeout=240,
            what="The Celery worker",
            log=log,
            process=process,
        )
        yield WorkerProcess(process=process, hostname=hostname, log=log)
    finally:
        stop_process(process)


def use_broker(app, url: str) -> None:
    """Point the Celery app's connection and producer pools (and remote control) at `url`.

    What Celery itself resets after a fork; tests that move the app to another broker call it, and
    the worker fixture calls it back, so publishing never goes to a broker left from another test.
    """
    if app._pool is not None:
        app._pool.force_close_all()
    # kombu's process-wide connection and producer pools are keyed by broker URL and outlive the
    # app's own: without a reset, the next test is handed a pool this one closed.
    kombu.pools.reset()
    app.conf.broker_url = url
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None
    app.__dict__.pop("control", None)


# --- A broker of the module's own, for tests that kill or flush it ---------------------------------


def isolated_redis_url(offset: int) -> str:
    """The broker's Redis server, another database: broker + `offset`, in the same half of the 16
    databases as the broker (the test settings put the cache at broker + 1; a shared development
    server gives each developer a half)."""
    from django.conf import settings

    parts = urlsplit(settings.REDIS_URL)
    broker = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{broker - broker % 8 + (broker + offset) % 8}"))


@pytest.fixture(name="celery_eager")
def tasks_go_to_workers(settings):
    """Overrides the conftest's autouse fixture: in the importing module tasks go over Redis to workers."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    settings.CELERY_TASK_ALWAYS_EAGER = app.conf.task_always_eager = False
    yield False
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def isolated_broker_fixture(offset: int):
    """An `isolated_broker` fixture: the Celery app on its own emptied Redis database while the test runs."""

    @pytest.fixture(name="isolated_broker")
    def isolated_broker():
        from django.conf import settings

        if not settings.REDIS_URL:
            pytest.skip("needs Redis and real Celery workers: set REDIS_URL, or run `make test`, which starts one")
        if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            pytest.skip("the Celery workers need a database they can share (PostgreSQL): run `make test`")
        import redis

        from config.celery import app

        url = isolated_redis_url(offset)
        client = redis.Redis.from_url(url)
        client.flushdb()
        saved = app.conf.broker_url
        use_broker(app, url)
        try:
            yield client
        finally:
            use_broker(app, saved)
            client.flushdb()  # a killed worker's unacknowledged messages, the queues
            client.close()

    return isolated_broker
