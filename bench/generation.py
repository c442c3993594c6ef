"""Orchestration overhead of generation jobs: N jobs through the real fal_client against the fake fal server.

    .venv/bin/python bench/generation.py [--jobs 100] [--queued-polls 1] [--in-progress-polls 1]

What runs: the fake fal queue server (common/testing/fake_fal.py) in this process, on loopback,
HTTPS with a throwaway CA, exactly as the tests use it. The jobs cycle through the three modes
(reference-to-video with two pins, image-to-video with a canonical character, text-to-video) and
are created with `generation.services.generation_create`. Tasks run eagerly, in this process (the
embedded default's way, through the same task functions a worker runs; no broker is timed):
creating a job submits it and polls once; then the bench plays the poll schedule, calling the
`poll_generation_job` task for every unfinished job, round after round, until none is left. fal
keeps each request IN_QUEUE for --queued-polls answers and IN_PROGRESS for --in-progress-polls,
then COMPLETED, so each job goes create -> submit -> polls -> result -> download -> score -> stored.

Method: overhead = wall time of the create and poll calls, minus the provider's own time, which is
  - the time the fake spent inside its handlers (queue API and the video file), measured in the fake,
  - the video download (safe fetch of the result URL, timed around FalProvider.download),
  - the consistency scoring (timed around generation.services._score; it decodes and analyses frames).
Everything else counts as orchestration: planning, license checks, the database writes, Celery's
eager dispatch, fal_client and httpx on our side (TLS, JSON), checking and storing the video,
counting pin and character use. The timers wrap the functions and call them unchanged. Per job, the
fake's handler time is attributed by request id, so the bench prints a distribution, not only a mean.

Database: with DATABASE_URL set, a database of its own on that server (`<name>_generation_bench`),
created, migrated and dropped at the end; otherwise a temporary SQLite file. REDIS_URL and S3_BUCKET
are ignored (eager tasks, local memory cache, media in a temp dir).

It checks that no job was lost or duplicated: every job complete, exactly one accepted submission
and one result fetch per job at the fake, one stored video each. Exit status 1 when a check fails
or the mean overhead misses the target (50 ms per job).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 50.0
MODES = ("reference-to-video", "image-to-video", "text-to-video")


# --- Setup ------------------------------------------------------------------------------------

def create_bench_database(server_url: str) -> str:
    import psycopg

    parts = urlsplit(server_url)
    name = f"{parts.path.lstrip('/') or 'cps'}_generation_bench"
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: S608 -- our own name
        conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_bench_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')  # noqa: S608


def configure(stack: ExitStack, workdir: Path):
    """Point fal_client at the fake (before anything imports it), then set Django up. Returns the fake's host."""
    from common.testing.fake_fal import prepare_environment

    host = prepare_environment(workdir / "tls")
    stack.callback(host.restore_environment)
    for name in ("REDIS_URL", "S3_BUCKET"):
        os.environ.pop(name, None)
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        database_url = create_bench_database(database_url)
        stack.callback(drop_bench_database, database_url)
    else:
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "DJANGO_MEDIA_ROOT": str(workdir / "media"),
        "GENERATION_PROVIDER": "fal",
        "FAL_KEY": "bench-key",
        "SAFE_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GENERATION_USE_WEBHOOKS": "false",
        "SITE_URL": "http://testserver",
    })
    import django

    django.setup()
    logging.disable(logging.INFO)  # one line per HTTP call and per job would drown the figures
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return host


def build_world(workdir: Path) -> tuple[object, list[dict], Path]:
    """Who generates, one request per mode, and the clip fal answers with (the same person, 2 s)."""
    from common.testing import clips
    from tests.factories import StoryFactory
    from tests.generation_support import canonical_character, pinned_story

    clip = clips.good_frontal(workdir / "person.mp4", size=(1280, 720), seconds=2.0, fps=24)
    pinned = pinned_story(clip, [(1, 1), (2, 0)])  # two pins (and a canonical character)
    user = pinned.contributor
    dna_story = StoryFactory(title="Locked, not pinned", created_by=user)
    canonical_character(dna_story, user, clip)
    requests = [
        {"story": pinned.story, "prompt": "@Element1 hands @Element2 a map"},
        {"story": dna_story, "prompt": "She runs across the hangar"},
        {"story": StoryFactory(title="Nothing locked", created_by=user), "prompt": "A storm over the harbour"},
    ]
    return user, requests, clip


# --- Timers -----------------------------------------------------------------------------------

class Timers:
    """Seconds spent in the provider's own work, per provider request id."""

    def __init__(self) -> None:
        self.download: dict[str, float] = defaultdict(float)
        self.score: dict[str, float] = defaultdict(float)

    def install(self, stack: ExitStack) -> None:
        from generation import services
        from generation.providers.fal import FalProvider

        download, score = FalProvider.download, services._score

        def timed_download(provider, result, dest_dir):
            started = time.perf_counter()
            try:
                return download(provider, result, dest_dir)
            finally:
                request_id = result["video"]["url"].rsplit("/", 1)[-1].removesuffix(".mp4")
                self.download[request_id] += time.perf_counter() - started

        def timed_score(job, video_path):
            started = time.perf_counter()
            try:
                return score(job, video_path)
            finally:
                self.score[job.provider_request_id] += time.perf_counter() - started

        FalProvider.download, services._score = timed_download, timed_score
        stack.callback(setattr, FalProvider, "download", download)
        stack.callback(setattr, services, "_score", score)


# --- The run ----------------------------------------------------------------------------------

def run(jobs: int, queued_polls: int, in_progress_polls: int) -> int:
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="cps-generation-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        host = configure(stack, workdir)

        from django.core.files.storage import default_storage

        from common.testing.fake_fal import FakeFal
        from generation import services, tasks
        from generation.models import GenerationJob

        user, requests, clip = build_world(workdir)
        fake = FakeFal(host, default_video=clip.read_bytes(), expected_key="bench-key")
        stack.enter_context(fake)
        fake.default_script.queued_polls = queued_polls
        fake.default_script.in_progress_polls = in_progress_polls
        timers = Timers()
        timers.install(stack)

        # Warm-up (not timed): imports, model loading for scoring, the first TLS handshake.
        for request in requests:
            services.generation_create(requester=user, **request)
        warm = set(GenerationJob.objects.values_list("pk", flat=True))
        while GenerationJob.objects.filter(pk__in=warm).exclude(status__in=("complete", "failed")).exists():
            for pk in GenerationJob.objects.filter(pk__in=warm, status__in=("submitted", "processing")).values_list(
                    "pk", flat=True):
                tasks.poll_generation_job.delay(pk)
        fake.reset()
        fake.default_script.queued_polls = queued_polls
        fake.default_script.in_progress_polls = in_progress_polls
        timers.download.clear()
        timers.score.clear()

        wall: dict[int, float] = defaultdict(float)
        started = time.perf_counter()
        pks = []
        for i in range(jobs):
            t0 = time.perf_counter()
            job = services.generation_create(requester=user, **requests[i % len(requests)])
            wall[job.pk] += time.perf_counter() - t0
            pks.append(job.pk)
        rounds = 0
        while True:
            waiting = list(GenerationJob.objects.filter(pk__in=pks, status__in=("submitted", "processing"))
                           .values_list("pk", flat=True))
            if not waiting:
                break
            rounds += 1
            for pk in waiting:
                t0 = time.perf_counter()
                tasks.poll_generation_job.delay(pk)
                wall[pk] += time.perf_counter() - t0
        total_wall = time.perf_counter() - started

        finished = {job.pk: job for job in GenerationJob.objects.filter(pk__in=pks)}
        overheads, by_mode = [], defaultdict(list)
        for pk in pks:
            job = finished[pk]
            request = fake.requests.get(job.provider_request_id)
            provider = (request.handler_seconds if request else 0.0) + timers.download[job.provider_request_id] \
                + timers.score[job.provider_request_id]
            overhead = (wall[pk] - provider) * 1000
            overheads.append(overhead)
            by_mode[job.mode].append(overhead)

        handler = sum(fake.handler_seconds.values())
        download = sum(timers.download.values())
        scoring = sum(timers.score.values())
        complete = [j for j in finished.values() if j.status == "complete"]
        per_job_submissions = defaultdict(int)
        for submission in fake.accepted:
            per_job_submissions[submission.request_id] += 1
        stored = [j for j in complete if j.video and default_storage.exists(j.video.name)]
        problems = []
        if len(finished) != jobs or len(complete) != jobs:
            problems.append(f"{jobs - len(complete)} job(s) not complete: "
                            f"{sorted({j.status for j in finished.values()})}")
        if len(fake.submissions) != jobs or len(fake.accepted) != jobs:
            problems.append(f"{len(fake.submissions)} submissions for {jobs} jobs")
        fetches = [r.result_fetches for r in fake.requests.values()]
        if any(n != 1 for n in fetches):
            problems.append(f"result fetched {sorted(set(fetches))} times per request, not once")
        if len(stored) != jobs:
            problems.append(f"{len(stored)} stored videos for {jobs} jobs")
        mean = statistics.fmean(overheads)
        if mean > TARGET_MS:
            problems.append(f"mean overhead {mean:.1f} ms is over the {TARGET_MS:.0f} ms target")

        database = "PostgreSQL" if "postgres" in os.environ["DATABASE_URL"] else "SQLite"
        quantiles = statistics.quantiles(overheads, n=20)
        print(f"generation bench: {jobs} jobs, {database}, eager tasks, fake fal on {host.netloc} "
              f"(IN_QUEUE x{queued_polls}, IN_PROGRESS x{in_progress_polls}), {rounds} poll rounds")
        print(f"  wall time               {total_wall:8.2f} s")
        print(f"  fake fal handlers       {handler:8.2f} s   (provider's own time, queue API and video)")
        print(f"  video download          {download:8.2f} s   (excluded)")
        print(f"  consistency scoring     {scoring:8.2f} s   (excluded)")
        print(f"  orchestration overhead  {sum(overheads) / 1000:8.2f} s")
        print(f"  per job: mean {mean:.1f} ms, p50 {statistics.median(overheads):.1f} ms, "
              f"p95 {quantiles[18]:.1f} ms, max {max(overheads):.1f} ms (target: mean < {TARGET_MS:.0f} ms)")
        for mode in MODES:
            if by_mode[mode]:
                print(f"    {mode:<20} {len(by_mode[mode]):3d} jobs, mean {statistics.fmean(by_mode[mode]):.1f} ms")
        print(f"  jobs completed {len(complete)}/{jobs}; submissions at fal {len(fake.accepted)}; "
              f"videos stored {len(stored)}; lost {jobs - len(complete)}")
        for problem in problems:
            print(f"  FAIL: {problem}")
        return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--queued-polls", type=int, default=1)
    parser.add_argument("--in-progress-polls", type=int, default=1)
    args = parser.parse_args(argv)
    return run(args.jobs, args.queued_polls, args.in_progress_polls)


if __name__ == "__main__":
    sys.exit(main())
