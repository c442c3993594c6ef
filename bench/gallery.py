"""Load 100,000 characters into PostgreSQL, then time the gallery API for each sort.

    .venv/bin/python bench/gallery.py [--characters N] [--requests R] [--limit L] [--pages P] [--explain] [--keep]

Database: with DATABASE_URL set, the bench creates a database of its own on that server
(`<name>_gallery_bench`), migrates it, and drops it at the end (--keep leaves it). Without
DATABASE_URL it starts a throwaway PostgreSQL (initdb + pg_ctl in a temp dir, as the `postgres` OS
user when run as root, on a free loopback port, no fsync) and stops and removes it at the end, also
on Ctrl-C or an error. Nothing else is touched.

Data: N characters (default 100,000) over 1,000 stories and 1,000 creators, written with COPY;
about 85 % canonical and 90 % of those open to licensing, so the gallery shows ~76 % of the rows
and the partial indexes have rows to skip. Most have a face close-up reference image, and 1 % of
the gallery is sold exclusively, so every row's thumbnail and exclusive flag are really looked up.
VACUUM ANALYZE runs before timing, as autovacuum would after a bulk load.

Timing: requests go through Django's test Client in this process (no HTTP server, no network):
URL routing, DRF, the serializer, and the SQL, with the production settings, persistent database
connections (DJANGO_CONN_MAX_AGE) and an anonymous client. For each line, --requests requests
(default 300, after 30 warm-up requests) ask for random pages among the first --pages (50) with
limit --limit (20). The number of SQL queries per request is counted with CaptureQueriesContext on
a sample of pages of every line; it must be the same for every page (no N+1).

Exit status 1 when a line's query count varies, or a sort's p95 misses the 30 ms target.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_MS = 30.0
STORIES = 1_000
CREATORS = 1_000
SORTS = ("popular", "recent", "used")


# --- The database ---------------------------------------------------------------------------


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise SystemExit("PostgreSQL's server binaries were not found (apt package postgresql), or set DATABASE_URL.")
    return versions[-1]


def start_throwaway_postgres(stack: ExitStack) -> str:
    """initdb + pg_ctl in a temp dir (as the `postgres` OS user when run as root), on a free loopback port.

    The server and its files are removed when the stack closes. Returns a URL to a fresh database.
    """
    workdir = Path(tempfile.mkdtemp(prefix="cps-gallery-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    workdir.chmod(0o755)
    as_postgres = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    if as_postgres:
        shutil.chown(workdir, "postgres", "postgres")
    pg_bin, data = _pg_bin(), workdir / "data"
    subprocess.run(
        [pg_bin / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        cwd=workdir,
        **as_postgres,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        [pg_bin / "pg_ctl", "-D", data, "-l", workdir / "server.log", "-w", "-t", "60", "-o", options, "start"],
        check=True,
        capture_output=True,
        cwd=workdir,
        **as_postgres,
    )
    stack.callback(
        subprocess.run,
        [pg_bin / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"],
        capture_output=True,
        cwd=workdir,
        **as_postgres,
    )
    subprocess.run(
        [pg_bin / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "cps_gallery_bench"],
        check=True,
        capture_output=True,
    )
    return f"postgres://postgres@127.0.0.1:{port}/cps_gallery_bench"


def create_bench_database(server_url: str) -> str:
    """A fresh database next to the one DATABASE_URL names; returns its URL."""
    import psycopg

    parts = urlsplit(server_url)
    name = f"{parts.path.lstrip('/') or 'cps'}_gallery_bench"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: S608 -- our own name
        conn.execute(f'CREATE DATABASE "{name}"')  # noqa: S608
    return urlunsplit(parts._replace(path=f"/{name}"))


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


def drop_bench_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')  # noqa: S608


def configure_django(database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_CONN_MAX_AGE": "600",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": database_url,
            "API_THROTTLE_ANON": "100000000/min",
            "API_THROTTLE_USER": "100000000/min",
        }
    )
    import django

    # Production settings serve collected static files; the bench never asks for one.
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    django.setup()


# --- Data -------------------------------------------------------------------------------------


def copy_rows(model, rows: list[dict]) -> None:
    """COPY rows into the model's table; every concrete column gets the given value or the field's default."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                [
                    f.get_db_prep_save(row[f.attname] if f.attname in row else f.get_default(), connection)
                    for f in fields
                ]
            )


def load(characters: int, seed: int = 7) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from characters.models import Character, ReferenceImage, Story
    from marketplace.models import License

    rng = random.Random(seed)
    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    unusable = make_password(None)
    users = user_model.objects.bulk_create(
        user_model(username=f"creator{n}", password=unusable) for n in range(CREATORS + 1)
    )
    licensee, creators = users[0], users[1:]
    stories = Story.objects.bulk_create(
        Story(title=f"Story {n}", slug=f"story-{n}", created_by=creators[n % CREATORS]) for n in range(STORIES)
    )
    now = timezone.now()
    syllables = ["ka", "ri", "no", "va", "el", "ar", "zu", "mi", "to", "sa", "len", "dor", "ix", "bel"]
    rows = []
    for n in range(characters):
        roll = rng.random()
        status = "canonical" if roll < 0.85 else ("archived" if roll < 0.93 else "candidate")
        name = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()
        rows.append(
            {
                "character_id": f"{name.lower()}_{n:06x}",
                "name": name,
                "story_id": stories[n % STORIES].pk,
                "status": status,
                "style_description": f"{name}: a bench character",
                "locked_features": ["bench feature"],
                "color_palette": {"hair": "#112233"},
                "total_votes": int(rng.paretovariate(1.2) * 10) % 20_000,
                "clips_used": int(rng.paretovariate(1.5) * 3) % 2_000,
                "creator_id": creators[rng.randrange(CREATORS)].pk,
                "allow_licensing": rng.random() < 0.9,
                "created_at": now - timedelta(seconds=rng.randrange(2 * 365 * 86400)),
                "updated_at": now,
            }
        )
    copy_rows(Character, rows)
    ids = list(Character.objects.order_by("pk").values_list("pk", "character_id", "status", "allow_licensing"))
    copy_rows(
        ReferenceImage,
        [
            {
                "character_id": pk,
                "kind": "face_closeup",
                "image": f"characters/{slug}/face_closeup.jpg",
                "width": 512,
                "height": 512,
                "created_at": now,
            }
            for pk, slug, _, _ in ids
            if rng.random() < 0.95
        ],
    )
    on_sale = [pk for pk, _, status, allow in ids if status == "canonical" and allow]
    License.objects.bulk_create(
        License(
            character_id=pk,
            licensee=licensee,
            license_type="exclusive",
            credits_paid=1000,
            royalty_percent=50,
            royalty_paid=500,
            platform_fee=500,
        )
        for pk in rng.sample(on_sale, len(on_sale) // 100)
    )
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"rows": characters, "on_sale": len(on_sale), "load_s": loaded, "vacuum_s": time.perf_counter() - started}


# --- Timing -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def measure(client, params_for, requests: int) -> dict:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(30):  # warm-up: connection, caches, plans
        client.get("/api/v1/gallery/characters", params_for(n))
    timings, cpu, asked = [], [], []
    for n in range(requests):
        params = params_for(n)
        asked.append(params)
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get("/api/v1/gallery/characters", params)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"gallery answered {response.status_code}: {response.content[:300]!r}")

    def queries_per_request(cold: bool) -> set[int]:
        counts = set()
        for params in asked[-6:]:  # requests just timed: their totals are in the cache
            if cold:
                cache.clear()  # the total is counted again
            with CaptureQueriesContext(connection) as queries:
                client.get("/api/v1/gallery/characters", params)
            counts.add(len(queries))
        return counts

    warm, cold = queries_per_request(cold=False), queries_per_request(cold=True)
    timings.sort()
    cpu.sort()
    return {
        "p50": percentile(timings, 0.5),
        "p95": percentile(timings, 0.95),
        "max": timings[-1],
        "cpu": percentile(cpu, 0.5),
        "warm": sorted(warm),
        "cold": sorted(cold),
    }


def explain(sort: str, limit: int, page: int) -> str:
    from django.db import connection

    from marketplace.selectors import GalleryListing

    offset = (page - 1) * limit
    sql, params = GalleryListing(sort=sort).page_queryset(slice(offset, offset + limit)).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
        return "\n".join("      " + row[0] for row in cursor.fetchall())


def run(args) -> int:
    from django.conf import settings
    from django.test import Client

    print(f"Loading {args.characters:,} characters ...", flush=True)
    data = load(args.characters)
    print(
        f"Loaded {data['rows']:,} characters ({data['on_sale']:,} in the gallery) in {data['load_s']:.1f} s; "
        f"VACUUM ANALYZE {data['vacuum_s']:.1f} s"
    )
    client = Client()
    rng = random.Random(11)
    lines = [
        (
            sort,
            f"pages 1-{args.pages}",
            lambda n, s=sort: {"sort": s, "limit": args.limit, "page": rng.randint(1, args.pages)},
        )
        for sort in SORTS
    ]
    deep_page = max(1, data["on_sale"] // args.limit // 2)
    lines += [
        (
            "popular",
            f"page {deep_page:,} (deep)",
            lambda n: {"sort": "popular", "limit": args.limit, "page": deep_page},
        ),
        (
            "popular",
            "search q=<2 letters>",
            lambda n: {
                "sort": "popular",
                "limit": args.limit,
                "q": rng.choice(["ka", "ri", "no", "va", "el", "zu", "be"]),
            },
        ),
    ]
    print(
        f"\nGallery API through Django's test Client (in process, no HTTP server), anonymous, limit={args.limit}, "
        f"{args.requests} requests per line after 30 warm-up requests."
    )
    print("cpu ms: the median CPU time this process spent per request (what a request costs when it does not")
    print("wait for a core; PostgreSQL's own time is not in it). Queries per request: total cached / counted.")
    print(f"Load average before the timing: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores.")
    print(f"  {'sort':8} {'requests':30} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'cpu ms':>7}  queries")
    failed = False
    lines.append(
        (
            "popular",
            "pages 1-50, total never cached",
            lambda n: {"sort": "popular", "limit": args.limit, "page": rng.randint(1, args.pages)},
        )
    )
    for sort, label, params_for in lines:
        if label.endswith("never cached"):
            settings.GALLERY_TOTAL_CACHE_SECONDS = 0
        result = measure(client, params_for, args.requests)
        constant = len(result["warm"]) == len(result["cold"]) == 1
        print(
            f"  {sort:8} {label:30} {result['p50']:7.1f} {result['p95']:7.1f} {result['max']:7.1f} "
            f"{result['cpu']:7.1f}  "
            f"{'/'.join(map(str, result['warm']))} / {'/'.join(map(str, result['cold']))}"
            f"{'' if constant else '  <- varies!'}"
        )
        failed |= not constant
        if label == f"pages 1-{args.pages}" and result["p95"] >= TARGET_P95_MS:
            failed = True
            print(f"    p95 misses the {TARGET_P95_MS:.0f} ms target")
    if args.explain:
        for sort, page in [(sort, 2) for sort in SORTS] + [("popular", deep_page)]:
            print(f"\n  plan of the page query, sort={sort}, page {page}:\n{explain(sort, args.limit, page)}")
    print(
        f"\nLoad average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}. "
        f"Target p95 < {TARGET_P95_MS:.0f} ms per sort, constant queries per request: "
        f"{'missed' if failed else 'met'}."
    )
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--characters", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--explain", action="store_true", help="print the page query's plan per sort")
    parser.add_argument("--keep", action="store_true", help="keep the bench database (DATABASE_URL only)")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        given = os.environ.get("DATABASE_URL")
        if given:
            url = create_bench_database(given)
            print(f"Database: {urlsplit(url).path.lstrip('/')} on {urlsplit(url).netloc} (created for this run)")
            if not args.keep:
                stack.callback(drop_bench_database, url)
        else:
            url = start_throwaway_postgres(stack)
            print(f"Database: a throwaway PostgreSQL at {urlsplit(url).netloc} (removed at the end)")
        configure_django(url)
        stack.callback(close_connections)
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
