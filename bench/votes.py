"""Cast votes over HTTP against the app under gunicorn on PostgreSQL + Redis, then check none was lost.

    .venv/bin/python bench/votes.py [--voters N] [--votes M] [--concurrency C] [--workers W] [--threads T]

Servers: DATABASE_URL and REDIS_URL are used when set (the database is created if missing and
migrated). Otherwise the bench starts its own throwaway PostgreSQL (initdb + postgres as the
`postgres` OS user, in a temp dir) and redis-server (no persistence), each on a free loopback port,
and removes them at the end, also on Ctrl-C or an error.

What it does: creates a story, --submissions submissions and an open voting session (the quorum is
set out of reach so the session stays open), N users with API tokens, then starts config.wsgi under
gunicorn with the production settings (bench/settings.py: the same, plus the baseline endpoint) and
drives C keep-alive HTTP/1.1 connections that send M vote
requests: every voter votes once, and the M - N extra requests are deliberate double votes by voters
picked at random, shuffled in with the rest so some race their voter's first vote.

Baseline: before and after the votes, the same clients send as many `GET /api/v1/bench/ping` requests
with the same tokens (bench/baseline.py: the same authentication, permission and throttles, then one
indexed read, mounted only by bench/settings.py, which this gunicorn runs). Vote requests/s over ping
requests/s says what a durable vote costs next to the least an authenticated request costs, and holds
up on a loaded machine far better than votes/s alone. The pings also check, through the index, that
each voter has no vote before and exactly one after.

It prints accepted votes/s, p50/p99 latency, and checks that the votes table, the submissions'
vote_count, the Redis counters and what the clients were told all agree: exactly one accepted vote
per voter, every other request refused with 409 `already_voted`, and for each submission the counts
handed back to clients are exactly 1..final count. Exit status 1 when any check fails.

It also prints the CPU each part used per request (gunicorn's workers, and the PostgreSQL and Redis
it started, read from /proc; the client's own). On a machine shared with other work the votes/s
figure mostly measures the neighbours; CPU per request, and the ceiling it implies on idle cores,
does not.

The client is a minimal HTTP/1.1 client on asyncio streams rather than requests/httpx: on a 2-core
machine the client shares the CPU with gunicorn and PostgreSQL, and every microsecond it spends per
request is taken from the server being measured. Each connection is reopened every
--reconnect-every requests so that gunicorn's workers share them (see `drive`). Traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import throwaway  # noqa: E402

HOST = "127.0.0.1"
DB_NAME = "cps_bench"
QUORUM_OUT_OF_REACH = 1_000_000_000


# --- Child processes (the servers come from tests/support/throwaway.py) -----------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root_pid: int) -> dict[int, float]:
    """{pid: CPU seconds} for a process and its descendants (gunicorn's workers, postgres' backends).

    Each counts its own time plus that of its children that have ended (cutime, cstime), so the sum
    only grows and the difference of two readings is the CPU used in between.
    """
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat_path) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat_path.split("/")[2])
        parents[pid] = int(fields[1])
        times[pid] = sum(int(f) for f in fields[11:15]) / _TICKS
    members, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in members]
        members.update(children)
        frontier.extend(children)
    return {pid: times[pid] for pid in members if pid in times}


def start_postgres(stack: ExitStack, workdir: Path, *, synchronous_commit: bool) -> tuple[str, int]:
    """The bench's PostgreSQL: a throwaway one, with room for the bench's connections."""
    return throwaway.postgresql(
        stack, workdir, database=DB_NAME, synchronous_commit=synchronous_commit, extra=("shared_buffers=256MB",)
    )


def ensure_database(url: str) -> None:
    """Create the database DATABASE_URL names when it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608 -- our own setting, not user input


# --- Data -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    session_id: int
    submission_ids: list[int]
    voter_ids: list[int]
    tokens: list[str]


def app_environment(database_url: str, redis_url: str, conn_max_age: int) -> dict[str, str]:
    """The environment the app runs with, here and under gunicorn: production settings on loopback."""
    return {
        # Production settings plus the baseline endpoint (bench/settings.py).
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_CONN_MAX_AGE": str(conn_max_age),
        "DJANGO_LOG_LEVEL": "ERROR",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "API_THROTTLE_USER": "100000000/min",
        "API_THROTTLE_ANON": "100000000/min",
        "VOTING_QUORUM": str(QUORUM_OUT_OF_REACH),
        "VOTING_AUTO_START": "false",
        "VOTING_MIN_ACCOUNT_AGE_HOURS": "0",
    }


def create_scenario(voters: int, submissions: int) -> Scenario:
    """Migrate, then a story with `submissions` designs in an open session and `voters` users with tokens."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from characters.models import CandidateFrame, Clip, Story
    from voting import services

    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    run = secrets.token_hex(4)
    owner = user_model.objects.create(username=f"bench-{run}-owner", password=make_password(None), is_staff=True)
    story = Story.objects.create(title=f"Vote bench {run}", slug=f"vote-bench-{run}", created_by=owner)
    clip = Clip.objects.create(story=story, uploader=owner, video=f"clips/bench/{run}.mp4", status=Clip.Status.READY)
    frames = CandidateFrame.objects.bulk_create(
        CandidateFrame(clip=clip, seconds=i, timestamp=f"00:{i:02d}", image=f"frames/bench/{run}_{i}.jpg", quality=80)
        for i in range(submissions)
    )
    subs = [
        services.submission_create(
            story=story,
            submitter=owner,
            frame_ids=[frame.pk],
            style_description=f"Design {i + 1}",
            character_name=f"Design {i + 1}",
        )
        for i, frame in enumerate(frames)
    ]
    session = services.session_start(story=story, started_by=owner)
    unusable = make_password(None)  # no password hashing per user: they sign in with tokens
    users = user_model.objects.bulk_create(
        user_model(username=f"bench-{run}-{i}", password=unusable) for i in range(voters)
    )
    tokens = Token.objects.bulk_create(Token(key=Token.generate_key(), user=user) for user in users)
    connections.close_all()
    return Scenario(session.pk, [s.pk for s in subs], [u.pk for u in users], [t.key for t in tokens])


# --- The HTTP client ------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server says `Connection: close`."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length is not None:
            body = await self.reader.readexactly(length)
        elif chunked:
            body = await self._read_chunked()
        elif close:
            body = await self.reader.read()
        else:
            raise HttpError("response without a length")
        if close:
            self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Outcome:
    voter: int  # index into the scenario's voters
    submission_id: int
    status: int = 0
    body: bytes = b""
    seconds: float = 0.0


@dataclass
class Run:
    outcomes: list[Outcome]
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    transport_errors: list[str] = field(default_factory=list)


def vote_request(port: int, submission_id: int, token: str) -> bytes:
    return (
        f"POST /api/v1/characters/submissions/{submission_id}/vote HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def ping_request(port: int, session_id: int, token: str) -> bytes:
    return (
        f"GET /api/v1/bench/ping?session={session_id} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


def measure_baseline(
    port: int, scenario: Scenario, outcomes: list[Outcome], args, votes_expected: int
) -> tuple[float, list[str]]:
    """Pings with the tokens of `outcomes`, in their order, over the same connections: (requests/s, problems).
    Each must answer 200 with its own user's id and `votes_expected` votes in the session."""
    requests = [ping_request(port, scenario.session_id, scenario.tokens[o.voter]) for o in outcomes]
    run = Run([Outcome(o.voter, 0) for o in outcomes])
    asyncio.run(drive(port, requests, run, args.concurrency, args.reconnect_every))
    problems = [f"{len(run.transport_errors)} pings got no answer"] if run.transport_errors else []
    wrong = Counter()
    for o in run.outcomes:
        if o.status != 200:
            wrong[f"HTTP {o.status}"] += 1
            continue
        body = json.loads(o.body)
        if body["user_id"] != scenario.voter_ids[o.voter]:
            wrong["another user's id"] += 1
        elif body["votes"] != votes_expected:
            wrong[f"{body['votes']} votes (expected {votes_expected})"] += 1
    if wrong:
        problems.append(f"baseline pings: {dict(wrong)}")
    return len(outcomes) / run.wall_seconds, problems


async def drive(port: int, requests: list[bytes], run: Run, concurrency: int, reconnect_every: int) -> None:
    """Send every request once over `concurrency` connections, each reopened every `reconnect_every` requests.

    Reopening matters with gunicorn's threaded workers: a keep-alive connection stays with the worker
    that accepted it, and connections opened in one burst often land mostly on one worker, which then
    runs on one core (the GIL) while the others idle. New connections go to whichever worker is free.
    """
    next_index = iter(range(len(requests)))

    async def client() -> None:
        conn = Connection(port)
        try:
            for sent, i in enumerate(next_index, 1):  # one shared iterator: each request is sent exactly once
                if reconnect_every and sent % reconnect_every == 0:
                    conn.close()
                outcome = run.outcomes[i]
                started = time.perf_counter()
                try:
                    outcome.status, outcome.body = await conn.request(requests[i])
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError) as exc:
                    # Never resent: a vote whose answer was lost must show up as a mismatch, not be retried.
                    run.transport_errors.append(f"{type(exc).__name__}: {exc}")
                    outcome.status = -1
                    conn.close()
                outcome.seconds = time.perf_counter() - started
        finally:
            conn.close()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    run.wall_seconds = time.perf_counter() - wall
    run.client_cpu_seconds = time.process_time() - cpu


async def warm_up(port: int, session_id: int, connections: int, rounds: int = 4) -> None:
    """Load the app in every worker and open their database connections before the clock starts."""
    raw = f"GET /api/v1/voting-sessions/{session_id} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    async def client() -> None:
        conn = Connection(port)
        try:
            for _ in range(rounds):
                status, body = await conn.request(raw)
                if status != 200:
                    raise RuntimeError(f"warm-up answered {status}: {body[:300]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))


def plan(scenario: Scenario, votes: int, rng: random.Random) -> list[Outcome]:
    """First votes for min(N, M) voters, then M - N double votes, all shuffled together."""
    voters = list(range(len(scenario.voter_ids)))
    rng.shuffle(voters)
    firsts = voters[: min(len(voters), votes)]
    doubles = [rng.choice(firsts) for _ in range(max(0, votes - len(firsts)))] if firsts else []
    # Uneven preferences, so the tallies differ between submissions.
    weights = list(range(len(scenario.submission_ids), 0, -1))
    outcomes = [Outcome(v, rng.choices(scenario.submission_ids, weights)[0]) for v in firsts + doubles]
    rng.shuffle(outcomes)
    return outcomes


# --- Checks ---------------------------------------------------------------------------------


def _error_code(outcome: Outcome) -> str:
    try:
        return json.loads(outcome.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {outcome.status}"


def check_consistency(scenario: Scenario, run: Run) -> list[str]:
    """Compare what clients were told with the votes table, vote_count and the Redis counters."""
    from django.db import connections
    from django.db.models import Count

    from voting import tallies
    from voting.models import CharacterSubmission, Vote

    problems: list[str] = []
    accepted = [o for o in run.outcomes if o.status == 200]
    told: dict[int, list[int]] = defaultdict(list)
    for o in accepted:
        told[o.submission_id].append(json.loads(o.body)["new_vote_count"])
    per_voter = Counter(o.voter for o in accepted)
    voters_who_sent = {o.voter for o in run.outcomes}
    if missing := voters_who_sent - set(per_voter):
        problems.append(f"{len(missing)} voters got no accepted vote")
    if twice := [v for v, n in per_voter.items() if n > 1]:
        problems.append(f"{len(twice)} voters had more than one vote accepted")
    refusals = Counter(_error_code(o) for o in run.outcomes if o.status != 200)
    if unexpected := {k: n for k, n in refusals.items() if k != "already_voted"}:
        problems.append(f"unexpected answers: {unexpected}")

    rows = Vote.objects.filter(session_id=scenario.session_id)
    table_total = rows.count()
    table = dict(rows.values_list("submission_id").annotate(n=Count("id")))
    table_voters = rows.values("voter_id").distinct().count()
    submissions = CharacterSubmission.objects.filter(pk__in=scenario.submission_ids)
    vote_count = dict(submissions.values_list("pk", "vote_count"))
    redis = tallies.stored_counts(scenario.session_id) or {}
    connections.close_all()

    print("\nConsistency")
    print(f"  {'submission':>10} {'told':>7} {'table':>7} {'vote_count':>10} {'redis':>7}")
    for sid in scenario.submission_ids:
        n_told = len(told[sid])
        print(f"  {sid:>10} {n_told:>7} {table.get(sid, 0):>7} {vote_count.get(sid, 0):>10} {redis.get(sid, '-'):>7}")
        if not n_told == table.get(sid, 0) == vote_count.get(sid, 0) == redis.get(sid):
            problems.append(
                f"submission {sid}: told {n_told}, table {table.get(sid, 0)}, "
                f"vote_count {vote_count.get(sid, 0)}, redis {redis.get(sid)}"
            )
        if sorted(told[sid]) != list(range(1, n_told + 1)):
            problems.append(f"submission {sid}: the counts handed to clients are not exactly 1..{n_told}")
    print(
        f"  {'total':>10} {len(accepted):>7} {table_total:>7} {sum(vote_count.values()):>10} {sum(redis.values()):>7}"
    )
    if not len(accepted) == table_total == sum(vote_count.values()) == sum(redis.values()) == table_voters:
        problems.append("totals disagree")
    print(f"  voters: {len(voters_who_sent)} sent, {len(per_voter)} accepted once, {table_voters} in the table")
    print(f"  refused: {dict(refusals) or 'none'}")
    return problems


# --- Main -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=5000, help="distinct voters, each votes once (default 5000)")
    parser.add_argument(
        "--votes",
        type=int,
        default=None,
        help="vote requests in all; the ones beyond --voters are double votes (default voters + 10%%)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--submissions", type=int, default=3, help="submissions in the session (default 3)")
    # 3 x 4 did best on 2 cores (1,045-1,128 accepted votes/s against 958 for 3 x 8 and 974-1,036 for 2 x 6):
    # enough threads to cover the waits on PostgreSQL and Redis, few enough not to fight over the GIL.
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gunicorn worker (gthread); 1 means sync workers (default 4)"
    )
    parser.add_argument(
        "--reconnect-every",
        type=int,
        default=50,
        help="reopen each client connection after this many requests, 0 never (default 50)",
    )
    parser.add_argument("--conn-max-age", type=int, default=600, help="DJANGO_CONN_MAX_AGE (default 600)")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="throwaway PostgreSQL only: synchronous_commit=off (trades the last commits on a crash)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.votes is None:
        args.votes = args.voters + args.voters // 10
    if min(args.voters, args.votes, args.concurrency, args.workers, args.threads) < 1 or args.submissions < 2:
        parser.error("counts must be positive, and a vote needs at least 2 submissions")
    return args


def start_gunicorn(stack: ExitStack, workdir: Path, env: dict[str, str], args) -> tuple[int, int, Path]:
    port = throwaway.free_port()
    log_path = workdir / "gunicorn.log"
    worker = ["--worker-class", "gthread", "--threads", str(args.threads)] if args.threads > 1 else []
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(args.workers),
        *worker,
        "--keep-alive",
        "60",
        "--backlog",
        "2048",
        "--worker-tmp-dir",
        "/dev/shm" if Path("/dev/shm").is_dir() else str(workdir),
        "--log-level",
        "warning",
        "--error-logfile",
        str(log_path),
    ]
    if not Path(cmd[0]).exists():
        cmd[0] = shutil.which("gunicorn") or cmd[0]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=throwaway.die_with_parent(signal.SIGTERM),
    )
    stack.callback(throwaway.stop_process, proc, grace=15)

    def listening() -> bool:
        with socket.create_connection((HOST, port), timeout=1):
            return True

    throwaway.wait_until(listening, timeout=30, what="gunicorn", log=log_path, process=proc)
    return port, proc.pid, log_path


def reference_loop_ns() -> float:
    """Nanoseconds for a fixed bit of pure Python (best of 5): how fast this machine is right now.

    Shared virtual machines change speed with their neighbours; quote this next to the figures.
    """
    import timeit

    return min(timeit.repeat("sum(range(50))", number=100_000, repeat=5)) / 100_000 * 1e9


def report(run: Run, cpu: dict[str, float], load: tuple[float, float], speed: tuple[float, float]) -> None:
    outcomes = run.outcomes
    accepted = [o for o in outcomes if o.status == 200]
    all_latency = sorted(o.seconds for o in outcomes)
    ok_latency = sorted(o.seconds for o in accepted)
    print(f"Requests: {len(outcomes)} in {run.wall_seconds:.2f} s = {len(outcomes) / run.wall_seconds:,.0f}/s")
    print(f"Accepted votes/s: {len(accepted) / run.wall_seconds:,.0f}  ({len(accepted)} accepted)")
    print(
        f"Latency, accepted votes: p50 {percentile(ok_latency, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(ok_latency, 0.99) * 1000:.1f} ms"
    )
    print(
        f"Latency, all requests:   p50 {percentile(all_latency, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(all_latency, 0.99) * 1000:.1f} ms, mean {statistics.fmean(all_latency) * 1000:.1f} ms"
    )
    # CPU per request says what the machine can do when nothing else runs on it: a shared machine's
    # wall-clock figure mostly says how busy the neighbours were.
    per_request = {name: seconds / len(outcomes) * 1000 for name, seconds in cpu.items()}
    total = sum(per_request.values())
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per_request.items())
    cores = os.cpu_count() or 1
    if {"postgres", "redis"} <= set(cpu):
        print(
            f"CPU per request (ms): {parts}; total {total:.2f} -> at most {cores / total * 1000:,.0f} requests/s "
            f"on {cores} idle cores"
        )
    else:  # servers we did not start may serve others too: their CPU is not ours to count
        print(f"CPU per request (ms): {parts}; PostgreSQL/Redis from the environment are not measured")
    print(
        f"Machine before/after: load average {load[0]:.1f} / {load[1]:.1f}, reference loop {speed[0]:.0f} / "
        f"{speed[1]:.0f} ns (lower is faster)"
    )
    if run.transport_errors:
        print(f"Transport errors: {len(run.transport_errors)}, e.g. {run.transport_errors[0]}")


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-votes-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)  # runs last: after the servers stop
        pids: dict[str, int] = {}  # the servers this bench started, for CPU accounting

        database_url = os.environ.get("DATABASE_URL", "")
        redis_url = os.environ.get("REDIS_URL", "")
        if database_url:
            ensure_database(database_url)
            db_where = f"DATABASE_URL ({urlsplit(database_url).netloc})"
        else:
            print("Starting a throwaway PostgreSQL ...", flush=True)
            database_url, pids["postgres"] = start_postgres(stack, workdir, synchronous_commit=not args.async_commit)
            db_where = f"throwaway PostgreSQL :{urlsplit(database_url).port}" + (
                " (synchronous_commit=off)" if args.async_commit else ""
            )
        if redis_url:
            redis_where = f"REDIS_URL ({urlsplit(redis_url).netloc})"
        else:
            redis_url, pids["redis"] = throwaway.redis(stack, workdir)
            redis_where = f"throwaway Redis :{urlsplit(redis_url).port}"

        env = app_environment(database_url, redis_url, args.conn_max_age)
        os.environ.update(env)
        print(f"Migrating and creating {args.voters} voters ...", flush=True)
        started = time.perf_counter()
        scenario = create_scenario(args.voters, args.submissions)
        print(
            f"  ready in {time.perf_counter() - started:.1f} s: session {scenario.session_id}, "
            f"submissions {scenario.submission_ids}"
        )

        port, pids["gunicorn"], gunicorn_log = start_gunicorn(stack, workdir, env, args)
        outcomes = plan(scenario, args.votes, rng)
        requests = [vote_request(port, o.submission_id, scenario.tokens[o.voter]) for o in outcomes]
        run = Run(outcomes)
        try:
            asyncio.run(warm_up(port, scenario.session_id, args.concurrency))
            doubles = len(requests) - len({o.voter for o in outcomes})
            worker = f"{args.workers} x {args.threads} threads" if args.threads > 1 else f"{args.workers} sync workers"
            print(
                f"Casting {len(requests)} votes ({doubles} doubles) over {args.concurrency} connections; "
                f"gunicorn {worker} ...",
                flush=True,
            )
            load_before, speed_before = os.getloadavg()[0], reference_loop_ns()
            baseline_before, baseline_problems = measure_baseline(port, scenario, outcomes, args, votes_expected=0)
            cpu_before = {name: tree_cpu(pid) for name, pid in pids.items()}
            asyncio.run(drive(port, requests, run, args.concurrency, args.reconnect_every))
            cpu_after = {name: tree_cpu(pid) for name, pid in pids.items()}
            baseline_after, problems_after = measure_baseline(port, scenario, outcomes, args, votes_expected=1)
            baseline_problems += problems_after
            cpu = {name: sum(cpu_after[name].values()) - sum(cpu_before[name].values()) for name in pids}
            cpu["client"] = run.client_cpu_seconds
            per_worker = sorted(
                (
                    seconds - cpu_before["gunicorn"].get(pid, 0.0)
                    for pid, seconds in cpu_after["gunicorn"].items()
                    if pid != pids["gunicorn"]
                ),
                reverse=True,
            )
            load_after, speed_after = os.getloadavg()[0], reference_loop_ns()
        except BaseException:
            log = gunicorn_log.read_text(errors="replace")[-3000:] if gunicorn_log.exists() else ""
            if log:
                print(f"gunicorn log (tail):\n{log}", file=sys.stderr)
            raise

        print(f"\nServers: {db_where}, {redis_where}, gunicorn :{port}")
        report(run, cpu, (load_before, load_after), (speed_before, speed_after))
        shares = " / ".join(f"{100 * seconds / max(sum(per_worker), 1e-9):.0f}%" for seconds in per_worker)
        print(f"Gunicorn workers' shares of the app's CPU: {shares}")
        baseline = (baseline_before + baseline_after) / 2
        vote_rate = len(run.outcomes) / run.wall_seconds
        accepted_rate = sum(o.status == 200 for o in run.outcomes) / run.wall_seconds
        print(
            f"\nBaseline (GET /api/v1/bench/ping: same auth, one indexed read): {baseline_before:,.0f}/s before, "
            f"{baseline_after:,.0f}/s after the votes"
        )
        print(
            f"Votes over baseline: {vote_rate / baseline:.2f} (vote requests/s {vote_rate:,.0f} / "
            f"baseline {baseline:,.0f}); accepted votes/s over baseline {accepted_rate / baseline:.2f}"
        )
        problems = check_consistency(scenario, run) + baseline_problems
        if run.transport_errors:
            problems.append(f"{len(run.transport_errors)} requests got no answer")
        if problems:
            print("\nFAIL\n  " + "\n  ".join(problems))
            return 1
        print("\nOK: votes table == accepted == sum of vote_count == Redis counters; no lost or double votes")
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted; servers stopped.", file=sys.stderr)
        sys.exit(130)
