"""Throwaway PostgreSQL and Redis servers on loopback, and the small process helpers around them.

One home for what `scripts/test.sh`, the benchmarks and the tests need: a free port, waiting until a
server answers, stopping a process group, and servers that keep nothing (data in a temp dir, no fsync,
no persistence). As a command it runs another command with DATABASE_URL and REDIS_URL set, starting
the servers the environment does not name already, and stops them however the command ends:

    python -m tests.support.throwaway -- python -m pytest -x

PostgreSQL refuses to run as root: as root, its tools run as the `postgres` system user.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def log_tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(tail)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Path | None = None,
    process: subprocess.Popen | None = None,
) -> None:
    """Poll `check` until it is true; fail saying what did not come up (and why, from its log or exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}.{log_tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s.{log_tail(log)}")


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Send `sig` to the process group we started (servers and workers have children), SIGKILL after `grace`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def die_with_parent(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` if we die without cleaning up (e.g. SIGKILL)."""

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


# --- PostgreSQL ------------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} was not found (apt-get install postgresql), or set DATABASE_URL.")
    return path


def postgresql(
    stack: ExitStack,
    workdir: Path,
    *,
    database: str = "cps",
    synchronous_commit: bool = False,
    max_connections: int = 300,
    extra: tuple[str, ...] = (),
) -> tuple[str, int]:
    """A throwaway PostgreSQL with its data under `workdir` (stopped by `stack`): its URL and pid.

    Durability is worthless here: no fsync, no full-page writes; `synchronous_commit` as asked (the
    vote bench measures it on)."""
    as_postgres = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    pgdir = workdir / "postgresql"
    pgdir.mkdir(parents=True)
    if as_postgres:
        os.chmod(workdir, 0o755)  # noqa: S103 -- the postgres user must reach its data dir inside (a temp dir)
        shutil.chown(pgdir, "postgres", "postgres")
    data = pgdir / "data"
    subprocess.run(
        [
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        cwd=pgdir,
        **as_postgres,
    )
    port = free_port()
    log_path = pgdir / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 -- closed by the stack
    stack.callback(log.close)
    settings = [
        f"port={port}",
        f"listen_addresses={HOST}",
        f"unix_socket_directories={pgdir}",
        f"max_connections={max_connections}",
        "fsync=off",
        "full_page_writes=off",
        f"synchronous_commit={'on' if synchronous_commit else 'off'}",
        *extra,
    ]
    process = subprocess.Popen(
        [_pg_bin("postgres"), "-D", str(data), *[arg for s in settings for arg in ("-c", s)]],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=pgdir,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGQUIT),
        **as_postgres,
    )
    # SIGINT is PostgreSQL's "fast" shutdown: roll back clients, stop at once.
    stack.callback(stop_process, process, sig=signal.SIGINT)
    isready = [_pg_bin("pg_isready"), "-q", "-h", HOST, "-p", str(port), "-U", "postgres"]
    wait_until(
        lambda: subprocess.run(isready).returncode == 0, timeout=60, what="PostgreSQL", log=log_path, process=process
    )
    subprocess.run(
        [_pg_bin("createdb"), "-h", HOST, "-p", str(port), "-U", "postgres", database], check=True, capture_output=True
    )
    return f"postgres://postgres@{HOST}:{port}/{database}", process.pid


def postgresql_version() -> str:
    return subprocess.run([_pg_bin("postgres"), "--version"], capture_output=True, text=True).stdout.split()[2]


# --- Redis -----------------------------------------------------------------------------------------


def redis(stack: ExitStack, workdir: Path) -> tuple[str, int]:
    """A throwaway redis-server (no persistence) in `workdir` (stopped by `stack`): its URL and pid."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server was not found (apt-get install redis-server), or set REDIS_URL.")
    port = free_port()
    log_path = workdir / "redis.log"
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )
    stack.callback(stop_process, process)

    def pong() -> bool:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_until(pong, timeout=10, what="redis-server", log=log_path, process=process)
    return f"redis://{HOST}:{port}/0", process.pid


# --- As a command ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="throwaway", help="prefix of the lines it prints")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    def say(text: str) -> None:
        print(f"[{args.label}] {text}", file=sys.stderr, flush=True)

    # A signal ends the command and then us, through the stack's callbacks.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, frame: sys.exit(128 + number))
    # The servers stop (the stack) before their temp dir goes.
    with tempfile.TemporaryDirectory(prefix="cps-services.") as tmp, ExitStack() as stack:
        env = dict(os.environ)
        try:
            if not env.get("DATABASE_URL"):
                env["DATABASE_URL"], _ = postgresql(stack, Path(tmp))
                say(f"PostgreSQL {postgresql_version()} on {env['DATABASE_URL'].rsplit('@', 1)[1]}")
            if not env.get("REDIS_URL"):
                env["REDIS_URL"], _ = redis(stack, Path(tmp))
                say(f"Redis on {env['REDIS_URL'].split('//', 1)[1]}")
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            say(str(exc) + (f"\n{exc.stderr.decode(errors='replace')}" if getattr(exc, "stderr", None) else ""))
            return 2
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        finally:
            if child.poll() is None:
                child.terminate()
                child.wait()


if __name__ == "__main__":
    sys.exit(main())
