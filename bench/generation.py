"""Orchestration overhead of generation jobs: N jobs through the real fal_client against the fake fal server.

    .venv/bin/python bench/generation.py [--jobs 100] [--queued-polls 1] [--in-progress-polls 1]

What runs: the fake fal queue server (tests/support/fake_fal.py) in this process, on loopback,
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
  - the video work: the check that the file is a playable video (generation.scoring.check_video,
    which opens it with FFmpeg and decodes a frame) and the consistency scoring (scoring.score_clip,
    which decodes and analyses sampled frames) — media work that grows with the video, not with
    the number of steps a job goes through.
Everything else counts as orchestration: planning, license checks, the database writes, Celery's
eager dispatch, fal_client and httpx on our side (TLS, JSON), checking and storing the video,
counting pin and character use. The timers wrap the functions and call them unchanged. Per job, the
fake's handler time is attributed by request id, so the bench prints a distribution, not only a mean.
Wall time on a shared 2-core machine also counts waiting for a core, so the bench prints the load
average and, beside the wall figure, our thread's CPU time per job on the same terms (which leaves
out the database server's work and every wait, so it is a floor, not the figure the target is for).

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
    from tests.support.fake_fal import prepare_environment

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
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "DJANGO_MEDIA_ROOT": str(workdir / "media"),
            "GENERATION_PROVIDER": "fal",
            "FAL_KEY": "bench-key",
            "SAFE_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
            "GENERATION_USE_WEBHOOKS": "false",
            "SITE_URL": "http://testserver",
        }
    )
    import django

    django.setup()
    logging.disable(logging.INFO)  # one line per HTTP call and per job would drown the figures
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return host


def build_world(workdir: Path) -> tuple[object, list[dict], Path]:
    """Who generates, one request per mode, and the clip fal answers with (the same person, 2 s)."""
    from demo import clips
    from tests.support.factories import StoryFactory
    from tests.support.generation import canonical_character, pinned_story

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


def clock() -> tuple[float, float]:
    """(wall seconds, this thread's CPU seconds): CPU time does not grow while other processes hold the cores."""
    return time.perf_counter(), time.thread_time()


class Spent:
    """Wall and CPU seconds added up per key (a job, or a provider request id)."""

    def __init__(self) -> None:
        self.wall: dict = defaultdict(float)
        self.cpu: dict = defaultdict(float)

    def add(self, key, since: tuple[float, float]) -> None:
        wall, cpu = clock()
        self.wall[key] += wall - since[0]
        self.cpu[key] += cpu - since[1]


class Timers:
    """Time spent downloading, checking and scoring videos, per provider request id."""

    def __init__(self) -> None:
        self.download, self.check, self.score = Spent(), Spent(), Spent()
        self._current = ""

    def clear(self) -> None:
        self.__init__()

    def install(self, stack: ExitStack) -> None:
        from generation import scoring
        from generation.providers.fal import FalProvider

        download, check, score = FalProvider.download, scoring.check_video, scoring.score_clip

        def timed_download(provider, result, dest_dir):
            since = clock()
            try:
                return download(provider, result, dest_dir)
            finally:
                self._current = result["video"]["url"].rsplit("/", 1)[-1].removesuffix(".mp4")
                self.download.add(self._current, since)

        def timed_check(path):
            since = clock()
            try:
                return check(path)
            finally:
                self.check.add(self._current, since)

        def timed_score(job, video_path):
            since = clock()
            try:
                return score(job, video_path)
            finally:
                self.score.add(job.provider_request_id, since)

        FalProvider.download, scoring.check_video, scoring.score_clip = timed_download, timed_check, timed_score
        stack.callback(setattr, FalProvider, "download", download)
        stack.callback(setattr, scoring, "check_video", check)
        stack.callback(setattr, scoring, "score_clip", score)


# --- The run ---------------------------------------------------------------------------------


class Ledger:
    """Our time per job and per step: each call's wall (and CPU) time less the provider's time during it."""

    def __init__(self, fake, timers: Timers) -> None:
        self.fake, self.timers = fake, timers
        self.per_job: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [wall ms, cpu ms]
        self.per_step: dict[str, list[float]] = defaultdict(list)  # wall ms per call

    def _provider(self, request_id: str) -> tuple[float, float]:
        """(wall, cpu) seconds the provider's side took for this request so far. The fake's handlers run in
        their own threads: they add to our wall time, never to our thread's CPU time."""
        request = self.fake.requests.get(request_id)
        parts = (self.timers.download, self.timers.check, self.timers.score)
        wall = (request.handler_seconds if request else 0.0) + sum(t.wall[request_id] for t in parts)
        return wall, sum(t.cpu[request_id] for t in parts)

    def call(self, job_pk: int | None, request_id: str, run) -> tuple[int, float]:
        """Run `run()` (which returns the job's pk, or None when `job_pk` is given); returns (pk, our wall ms)."""
        before = self._provider(request_id) if request_id else (0.0, 0.0)
        since = clock()
        job_pk = run() or job_pk
        wall, cpu = clock()
        request_id = request_id or self._request_id(job_pk)
        after = self._provider(request_id)
        our_wall = (wall - since[0] - (after[0] - before[0])) * 1000
        our_cpu = (cpu - since[1] - (after[1] - before[1])) * 1000
        self.per_job[job_pk][0] += our_wall
        self.per_job[job_pk][1] += our_cpu
        return job_pk, our_wall

    @staticmethod
    def _request_id(job_pk: int) -> str:
        from generation.models import GenerationJob

        return GenerationJob.objects.values_list("provider_request_id", flat=True).get(pk=job_pk)


def run(jobs: int, queued_polls: int, in_progress_polls: int) -> int:
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="cps-generation-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        host = configure(stack, workdir)

        from django.core.files.storage import default_storage

        from generation import payloads, services, tasks
        from generation.models import GenerationJob
        from tests.support.fake_fal import FakeFal

        user, requests, clip = build_world(workdir)
        # The fake checks every body against the model's published schema, as fal does (422 otherwise).
        fake = stack.enter_context(
            FakeFal(
                host, default_video=clip.read_bytes(), expected_key="bench-key", validate=payloads.validation_errors
            )
        )
        timers = Timers()
        timers.install(stack)

        def unfinished(pks) -> list[int]:
            return list(
                GenerationJob.objects.filter(pk__in=pks, status__in=GenerationJob.AT_PROVIDER_STATUSES).values_list(
                    "pk", flat=True
                )
            )

        # Warm-up (not timed): imports, the scoring models, the first TLS handshake.
        warm = [services.generation_create(requester=user, **request).pk for request in requests]
        while waiting := unfinished(warm):
            for pk in waiting:
                tasks.poll_generation_job.delay(pk)
        fake.reset()
        fake.default_script.queued_polls = queued_polls
        fake.default_script.in_progress_polls = in_progress_polls
        timers.clear()

        ledger = Ledger(fake, timers)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        pks = []
        for i in range(jobs):
            request = requests[i % len(requests)]
            pk, ms = ledger.call(None, "", lambda r=request: services.generation_create(requester=user, **r).pk)
            ledger.per_step["create, submit and first poll"].append(ms)
            pks.append(pk)
        rounds = 0
        while waiting := unfinished(pks):
            rounds += 1
            ids = dict(GenerationJob.objects.filter(pk__in=waiting).values_list("pk", "provider_request_id"))
            for pk in waiting:

                def poll(pk=pk) -> None:
                    tasks.poll_generation_job.delay(pk)

                _, ms = ledger.call(pk, ids[pk], poll)
                done = GenerationJob.objects.filter(pk=pk, status="complete").exists()
                ledger.per_step["poll that completes the job" if done else "poll"].append(ms)
        total_wall = time.perf_counter() - started
        load_after = os.getloadavg()[0]

        finished = {job.pk: job for job in GenerationJob.objects.filter(pk__in=pks)}
        overheads = [ledger.per_job[pk][0] for pk in pks]
        cpu_overheads = [ledger.per_job[pk][1] for pk in pks]
        by_mode = defaultdict(list)
        for pk in pks:
            by_mode[finished[pk].mode].append(ledger.per_job[pk][0])

        complete = [j for j in finished.values() if j.status == "complete"]
        stored = [j for j in complete if j.video and default_storage.exists(j.video.name)]
        problems = []
        if len(complete) != jobs:
            statuses = sorted({j.status for j in finished.values()})
            problems.append(f"{jobs - len(complete)} job(s) not complete: {statuses}")
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
        quantiles = statistics.quantiles(overheads, n=20, method="inclusive")
        seconds = {
            name: sum(t.wall.values())
            for name, t in (("download", timers.download), ("check", timers.check), ("score", timers.score))
        }
        print(
            f"generation bench: {jobs} jobs, {database}, eager tasks, fake fal on {host.netloc} "
            f"(IN_QUEUE x{queued_polls}, IN_PROGRESS x{in_progress_polls}), {rounds} poll rounds; "
            f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
        )
        print(f"  wall time               {total_wall:8.2f} s")
        print(f"  fake fal handlers       {sum(fake.handler_seconds.values()):8.2f} s   (provider's own time)")
        print(f"  video download          {seconds['download']:8.2f} s   (excluded)")
        print(f"  video check             {seconds['check']:8.2f} s   (excluded)")
        print(f"  consistency scoring     {seconds['score']:8.2f} s   (excluded)")
        print(f"  orchestration overhead  {sum(overheads) / 1000:8.2f} s")
        print(
            f"  per job: mean {mean:.1f} ms, p50 {statistics.median(overheads):.1f} ms, "
            f"p95 {quantiles[18]:.1f} ms, max {max(overheads):.1f} ms (target: mean < {TARGET_MS:.0f} ms)"
        )
        print(
            f"  our thread's CPU per job (no waiting, no database server): mean {statistics.fmean(cpu_overheads):.1f}"
            f" ms, p50 {statistics.median(cpu_overheads):.1f} ms"
        )
        for mode in MODES:
            if by_mode[mode]:
                print(f"    {mode:<30} {len(by_mode[mode]):4d} jobs,  mean {statistics.fmean(by_mode[mode]):6.1f} ms")
        for step, values in ledger.per_step.items():
            print(f"    {step:<30} {len(values):4d} calls, mean {statistics.fmean(values):6.1f} ms")
        print(
            f"  jobs completed {len(complete)}/{jobs}; submissions at fal {len(fake.accepted)}; "
            f"videos stored {len(stored)}; lost {jobs - len(complete)}"
        )
        print("  payload accepted by the model's schema (one per model, its builder's body):")
        for model_id in sorted(payloads.BUILDERS):
            sample = payloads.PayloadInput(
                prompt="@Element1 walks",
                duration=5,
                aspect_ratio="16:9",
                negative_prompt="blur",
                image_url="https://example.test/ref.jpg",
                with_audio=payloads.supports_audio(model_id),
                elements=[
                    {
                        "frontal_image_url": "https://example.test/f.jpg",
                        "reference_image_urls": ["https://example.test/a.jpg"],
                    }
                ],
            )
            try:
                accepted = payloads.validation_errors(model_id, payloads.build(model_id, sample)) == []
            except payloads.PayloadError:
                accepted = False
            print(f"    {model_id:<48} {'yes' if accepted else 'no'}")
            if not accepted:
                problems.append(f"the payload for {model_id} does not fit its schema")
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
