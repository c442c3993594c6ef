"""Orchestration overhead of generation jobs, per provider: fal, Replicate, Runway and Luma, each through its real
client against its fake server, with a minimal baseline measured in the same run.

    .venv/bin/python bench/generation.py [--jobs 30] [--queued-polls 1] [--in-progress-polls 1]

What runs, in this process, on loopback: the fake fal queue server (tests/support/fake_fal.py, HTTPS with a
throwaway CA, `fal_client`), and the fake Replicate, Runway and Luma APIs (tests/support/fake_replicate.py,
fake_runway.py, fake_luma.py; the `replicate`, `runwayml` and `lumaai` SDKs), exactly as the tests use them; each
fake validates every body against the model's schema and answers the provider's error shape. --jobs jobs per
provider, created in turn with `generation.services.generation_create`: on fal the three modes in turn
(reference-to-video with two pins, image-to-video with a canonical character, text-to-video); on the others their
image-to-video model (kwaivgi/kling-v2.1, gen4_turbo, ray-2). Tasks run eagerly, in this process (the embedded
default's way, through the same task functions a worker runs; no broker is timed): creating a job submits it and
polls once; then the bench calls the `poll_generation_job` task for every unfinished job, round after round, until
none is left. fal keeps each request IN_QUEUE for --queued-polls answers and IN_PROGRESS for --in-progress-polls;
the other fakes follow their own scripts (Replicate starting, processing, succeeded; Runway PENDING, RUNNING,
SUCCEEDED; Luma queued, dreaming, completed). Webhooks are off, so every job is polled to the end.

Method: overhead = wall time of the create and poll calls, minus the provider's own time, which is
  - the time each fake spent inside its API handlers, measured in the fake,
  - the video download (safe fetch of the result URL, timed around each provider's `download`; the fake's time
    serving the file is inside it, so it is not taken out twice),
  - the video work: the check that the file is a playable video (generation.scoring.check_video, which opens it
    with FFmpeg and decodes a frame) and the consistency scoring (scoring.score_clip, which decodes and analyses
    sampled frames): media work that grows with the video, not with the number of steps a job goes through.
The calls run one at a time, so a call's provider time is what the fakes and those timers added during it.
Everything else counts as orchestration: planning, license checks, the database writes, Celery's eager dispatch,
the provider's client on our side (TLS, JSON), storing the video, counting pin and character use.

Baseline: the least a job could cost through the same machinery, measured interleaved with the real jobs (so the
machine's load weighs on both alike): for every create or poll call of a real job, one eager dispatch of a task
that does one indexed row update and one HTTP GET of a tiny JSON from a loopback server (Nagle off) through a
kept-alive httpx client; a job's first step also inserts a row. Per provider: our mean overhead per job over the
baseline's mean for the same jobs' step counts; the ratio says what our orchestration costs whatever the machine's
load. Wall time on a shared 2-core machine also counts waiting for a core, so the bench prints the load average
and, beside the wall figure, our thread's CPU time per job (which leaves out the database server's work and every
wait: a floor, not the figure the target is for).

Database: with DATABASE_URL set, a database of its own on that server (`<name>_generation_bench`), created,
migrated and dropped at the end; otherwise a temporary SQLite file. REDIS_URL and S3_BUCKET are ignored (eager
tasks, local memory cache, media in a temp dir).

It checks that no job was lost or duplicated, per provider: every job complete, exactly one accepted submission
per job at the fake (and on fal one result fetch per request), one stored video each. Then one line per model:
the payload its builder makes is accepted by its schema, yes or no. Exit status 1 when a check fails or a
provider's mean overhead misses the target (50 ms per job).
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
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 50.0
MODES = ("reference-to-video", "image-to-video", "text-to-video")
PROVIDERS = ("fal", "replicate", "runway", "luma")
OTHER_MODELS = {"replicate": "kwaivgi/kling-v2.1", "runway": "gen4_turbo", "luma": "ray-2"}
FAKE_KEYS = {"fal": "bench-key", "replicate": "r8_bench-token", "runway": "key_bench-runway", "luma": "luma-bench-key"}


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
            "GENERATION_PROVIDER": "auto",
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


def build_world(workdir: Path) -> tuple[object, dict[str, list[dict]], Path]:
    """Who generates, the requests of each provider, and the clip the fakes answer with (the same person, 2 s)."""
    from demo import clips
    from tests.support.factories import StoryFactory
    from tests.support.generation import canonical_character, pinned_story

    clip = clips.good_frontal(workdir / "person.mp4", size=(1280, 720), seconds=2.0, fps=24)
    pinned = pinned_story(clip, [(1, 1), (2, 0)])  # two pins (and a canonical character)
    user = pinned.contributor
    dna_story = StoryFactory(title="Locked, not pinned", created_by=user)
    canonical_character(dna_story, user, clip)
    image_to_video = {"story": dna_story, "prompt": "She runs across the hangar"}
    requests = {
        "fal": [
            {"story": pinned.story, "prompt": "@Element1 hands @Element2 a map"},
            image_to_video,
            {"story": StoryFactory(title="Nothing locked", created_by=user), "prompt": "A storm over the harbour"},
        ],
        **{name: [{**image_to_video, "model_id": model_id}] for name, model_id in OTHER_MODELS.items()},
    }
    return user, requests, clip


def start_fakes(stack: ExitStack, host, clip: Path) -> dict:
    """The four fake providers, each validating bodies against the schemas, and settings pointing at them."""
    from django.conf import settings

    from generation import payloads
    from tests.support.fake_fal import FakeFal
    from tests.support.fake_luma import FakeLuma
    from tests.support.fake_replicate import FakeReplicate, make_secret
    from tests.support.fake_runway import FakeRunway

    video, validate = clip.read_bytes(), payloads.validation_errors
    fakes = {
        "fal": stack.enter_context(
            FakeFal(host, default_video=video, expected_key=FAKE_KEYS["fal"], validate=validate)
        ),
        "replicate": stack.enter_context(
            FakeReplicate(
                expected_key=FAKE_KEYS["replicate"], validate=validate, video=video, webhook_secret=make_secret()
            )
        ),
        "runway": stack.enter_context(FakeRunway(expected_key=FAKE_KEYS["runway"], validate=validate, video=video)),
        "luma": stack.enter_context(FakeLuma(expected_key=FAKE_KEYS["luma"], validate=validate, video=video)),
    }
    settings.REPLICATE_API_TOKEN, settings.REPLICATE_BASE_URL = FAKE_KEYS["replicate"], fakes["replicate"].base_url
    settings.RUNWAYML_API_SECRET, settings.RUNWAYML_BASE_URL = FAKE_KEYS["runway"], fakes["runway"].base_url
    settings.LUMAAI_API_KEY, settings.LUMAAI_BASE_URL = FAKE_KEYS["luma"], fakes["luma"].base_url
    return fakes


def api_seconds(fakes: dict) -> float:
    """Time the fakes have spent in their API handlers so far (not serving files: that is inside the download)."""
    fal = fakes["fal"].handler_seconds["queue"]
    return fal + sum(fakes[name].handler_seconds["api"] for name in OTHER_MODELS)


def submissions(fakes: dict, provider: str) -> int:
    fake = fakes[provider]
    return len(fake.accepted) if provider == "fal" else len(fake.submissions())


def reset(fakes: dict) -> None:
    for fake in fakes.values():
        fake.reset()


# --- Timers -----------------------------------------------------------------------------------


def clock() -> tuple[float, float]:
    """(wall seconds, this thread's CPU seconds): CPU time does not grow while other processes hold the cores."""
    return time.perf_counter(), time.thread_time()


class Spent:
    """Wall and CPU seconds added up."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def add(self, since: tuple[float, float]) -> None:
        wall, cpu = clock()
        self.wall += wall - since[0]
        self.cpu += cpu - since[1]


class Timers:
    """Time spent downloading, checking and scoring videos (the provider's and the media's, not ours)."""

    def __init__(self) -> None:
        self.download, self.check, self.score = Spent(), Spent(), Spent()

    def clear(self) -> None:
        self.__init__()

    @property
    def parts(self) -> tuple[Spent, Spent, Spent]:
        return self.download, self.check, self.score

    def _timed(self, fn, part: str):
        def timed(*args, **kwargs):
            since = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                getattr(self, part).add(since)  # looked up now: clear() starts new counters

        return timed

    def install(self, stack: ExitStack) -> None:
        from generation import scoring
        from generation.providers.fal import FalProvider
        from generation.providers.luma import LumaProvider
        from generation.providers.replicate import ReplicateProvider
        from generation.providers.runway import RunwayProvider

        for cls in (FalProvider, ReplicateProvider, RunwayProvider, LumaProvider):
            original = cls.download
            cls.download = self._timed(original, "download")
            stack.callback(setattr, cls, "download", original)
        for name, part in (("check_video", "check"), ("score_clip", "score")):
            original = getattr(scoring, name)
            setattr(scoring, name, self._timed(original, part))
            stack.callback(setattr, scoring, name, original)


# --- The baseline -----------------------------------------------------------------------------


class Baseline:
    """The minimal job (see the module docstring): one step per create or poll call of a real job."""

    def __init__(self, stack: ExitStack) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        from config.celery import app

        class Ping(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Nagle off, as in the fake providers: else every answer waits ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Ping)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/ping"
        self.http = stack.enter_context(httpx.Client())
        self.rows: dict[int, int] = {}
        self.per_job: dict[int, float] = defaultdict(float)  # wall ms

        def step(row_pk: int) -> None:
            from django.utils import timezone

            from generation.models import WebhookDelivery

            WebhookDelivery.objects.filter(pk=row_pk).update(outcome=str(timezone.now()))
            self.http.get(self.url).raise_for_status()

        self.task = app.task(name="bench.generation.baseline_step")(step)

    def step(self, job_pk: int) -> None:
        from generation.models import WebhookDelivery

        since = time.perf_counter()
        if job_pk not in self.rows:
            self.rows[job_pk] = WebhookDelivery.objects.create(
                provider="bench", request_id=f"baseline-{job_pk}", signature="baseline"
            ).pk
        self.task.delay(self.rows[job_pk])
        self.per_job[job_pk] += (time.perf_counter() - since) * 1000


# --- The run ---------------------------------------------------------------------------------


class Ledger:
    """Our time per job and per step: each call's wall (and CPU) time less the provider's time during it."""

    def __init__(self, fakes: dict, timers: Timers, baseline: Baseline) -> None:
        self.fakes, self.timers, self.baseline = fakes, timers, baseline
        self.per_job: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [wall ms, cpu ms]
        self.per_step: dict[str, list[float]] = defaultdict(list)  # wall ms per call

    def _provider(self) -> tuple[float, float]:
        """(wall, cpu) seconds the providers' side has taken so far. The fakes' handlers run in their own threads:
        they add to our wall time, never to our thread's CPU time."""
        wall = api_seconds(self.fakes) + sum(t.wall for t in self.timers.parts)
        return wall, sum(t.cpu for t in self.timers.parts)

    def call(self, job_pk: int | None, run) -> tuple[int, float]:
        """Run `run()` (which returns the job's pk, or None when `job_pk` is given), then one baseline step;
        returns (pk, our wall ms)."""
        before = self._provider()
        since = clock()
        job_pk = run() or job_pk
        wall, cpu = clock()
        after = self._provider()
        our_wall = (wall - since[0] - (after[0] - before[0])) * 1000
        our_cpu = (cpu - since[1] - (after[1] - before[1])) * 1000
        self.per_job[job_pk][0] += our_wall
        self.per_job[job_pk][1] += our_cpu
        self.baseline.step(job_pk)
        return job_pk, our_wall


def payload_lines(problems: list[str]) -> None:
    from generation import payloads

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
    # The models that take an element built from a pin's clip: the same body with its first element a video.
    for model_id in sorted(payloads.VIDEO_ELEMENT_MODELS):
        video = replace(
            sample,
            elements=[{"video_url": "https://example.test/clip.mp4"}, *sample.elements],
            with_audio=payloads.supports_audio(model_id),
        )
        try:
            accepted = payloads.validation_errors(model_id, payloads.build(model_id, video)) == []
        except payloads.PayloadError:
            accepted = False
        print(f"    {model_id:<48} {'yes' if accepted else 'no'} (with a video element)")
        if not accepted:
            problems.append(f"the payload with a video element for {model_id} does not fit its schema")


def run(jobs: int, queued_polls: int, in_progress_polls: int) -> int:
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="cps-generation-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        host = configure(stack, workdir)

        from django.core.files.storage import default_storage

        from generation import services, tasks
        from generation.models import GenerationJob

        user, requests, clip = build_world(workdir)
        fakes = start_fakes(stack, host, clip)
        timers = Timers()
        timers.install(stack)

        def unfinished(pks) -> list[int]:
            return list(
                GenerationJob.objects.filter(pk__in=pks, status__in=GenerationJob.AT_PROVIDER_STATUSES).values_list(
                    "pk", flat=True
                )
            )

        # Warm-up (not timed): imports, the clients, the scoring models, the first TLS handshake.
        warm = [services.generation_create(requester=user, **r).pk for rs in requests.values() for r in rs]
        while waiting := unfinished(warm):
            for pk in waiting:
                tasks.poll_generation_job.delay(pk)
        reset(fakes)
        fakes["fal"].default_script.queued_polls = queued_polls
        fakes["fal"].default_script.in_progress_polls = in_progress_polls
        timers.clear()

        baseline = Baseline(stack)
        ledger = Ledger(fakes, timers, baseline)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        pks_of: dict[str, list[int]] = {name: [] for name in PROVIDERS}
        for i in range(jobs):
            for name in PROVIDERS:
                request = requests[name][i % len(requests[name])]
                pk, ms = ledger.call(None, lambda r=request: services.generation_create(requester=user, **r).pk)
                ledger.per_step["create, submit and first poll"].append(ms)
                pks_of[name].append(pk)
        all_pks = [pk for pks in pks_of.values() for pk in pks]
        rounds = 0
        while waiting := unfinished(all_pks):
            rounds += 1
            for pk in waiting:

                def poll(pk=pk) -> None:
                    tasks.poll_generation_job.delay(pk)

                _, ms = ledger.call(pk, poll)
                done = GenerationJob.objects.filter(pk=pk, status="complete").exists()
                ledger.per_step["poll that completes the job" if done else "poll"].append(ms)
        total_wall = time.perf_counter() - started
        load_after = os.getloadavg()[0]

        finished = {job.pk: job for job in GenerationJob.objects.filter(pk__in=all_pks)}
        database = "PostgreSQL" if "postgres" in os.environ["DATABASE_URL"] else "SQLite"
        print(
            f"generation bench: {jobs} jobs per provider ({len(all_pks)} in all), {database}, eager tasks, fakes on "
            f"loopback (fal IN_QUEUE x{queued_polls}, IN_PROGRESS x{in_progress_polls}), {rounds} poll rounds; "
            f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
        )
        print(f"  wall time               {total_wall:8.2f} s")
        print(f"  fake providers' API     {api_seconds(fakes):8.2f} s   (provider's own time, excluded)")
        print(f"  video download          {timers.download.wall:8.2f} s   (excluded)")
        print(f"  video check             {timers.check.wall:8.2f} s   (excluded)")
        print(f"  consistency scoring     {timers.score.wall:8.2f} s   (excluded)")
        problems: list[str] = []
        print("  per provider: our overhead per job (wall), the baseline per job, their ratio; none lost?")
        for name in PROVIDERS:
            pks = pks_of[name]
            overheads = [ledger.per_job[pk][0] for pk in pks]
            cpu = [ledger.per_job[pk][1] for pk in pks]
            floor = [baseline.per_job[pk] for pk in pks]
            mean, base = statistics.fmean(overheads), statistics.fmean(floor)
            p95 = statistics.quantiles(overheads, n=20, method="inclusive")[18] if len(overheads) > 1 else mean
            complete = [finished[pk] for pk in pks if finished[pk].status == "complete"]
            stored = [j for j in complete if j.video and default_storage.exists(j.video.name)]
            sent = submissions(fakes, name)
            lost = jobs - len(complete)
            print(
                f"    {name:<10} mean {mean:6.1f} ms, p95 {p95:6.1f} ms, CPU {statistics.fmean(cpu):5.1f} ms | "
                f"baseline {base:5.1f} ms | ratio {mean / base:4.1f}x | complete {len(complete)}/{jobs}, "
                f"submissions {sent}, videos {len(stored)}, lost {lost}"
            )
            if lost:
                statuses = sorted({finished[pk].status for pk in pks})
                problems.append(f"{name}: {lost} job(s) not complete: {statuses}")
            if sent != jobs:
                problems.append(f"{name}: {sent} submissions for {jobs} jobs")
            if len(stored) != jobs:
                problems.append(f"{name}: {len(stored)} stored videos for {jobs} jobs")
            if mean > TARGET_MS:
                problems.append(f"{name}: mean overhead {mean:.1f} ms is over the {TARGET_MS:.0f} ms target")
        fetches = [r.result_fetches for r in fakes["fal"].requests.values()]
        if any(n != 1 for n in fetches):
            problems.append(f"fal: result fetched {sorted(set(fetches))} times per request, not once")
        by_mode = defaultdict(list)
        for pk in pks_of["fal"]:
            by_mode[finished[pk].mode].append(ledger.per_job[pk][0])
        for mode in MODES:
            if by_mode[mode]:
                mode_mean = statistics.fmean(by_mode[mode])
                print(f"      fal {mode:<26} {len(by_mode[mode]):4d} jobs,  mean {mode_mean:6.1f} ms")
        for step, values in ledger.per_step.items():
            print(f"    {step:<30} {len(values):4d} calls, mean {statistics.fmean(values):6.1f} ms")
        payload_lines(problems)
        for problem in problems:
            print(f"  FAIL: {problem}")
        print(f"  target: mean < {TARGET_MS:.0f} ms per job for every provider")
        return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30, help="jobs per provider")
    parser.add_argument("--queued-polls", type=int, default=1)
    parser.add_argument("--in-progress-polls", type=int, default=1)
    args = parser.parse_args(argv)
    return run(args.jobs, args.queued_polls, args.in_progress_polls)


if __name__ == "__main__":
    sys.exit(main())
