"""The common part of the fake video providers on loopback (Replicate, Runway, Luma): a small HTTP server that
checks the auth header, records every request, keeps each job's state, and serves the result videos.

Each provider's fake (fake_replicate.py, fake_runway.py, fake_luma.py) adds its own routes and JSON shapes,
enough for the provider's real client library, and validates every submitted body against the schema kept in
the repo (the `validate` callable, generation.payloads.validation_errors), answering the provider's error shape.

`handler_seconds` adds up the time spent inside the handlers (API calls and files apart), so a bench can take
the provider's own time out of its figures.

A job follows a script of states: each status read returns the current one and moves to the next, the last
one staying. `script_next([...])` sets the script of the next job; `set_state(id, state)` jumps.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
Validate = Callable[[str, Any], "list[dict] | None"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeJob:
    id: str
    model: str
    body: Any
    script: list[str]
    step: int = 0
    state_override: str | None = None
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def state(self) -> str:
        return self.state_override or self.script[min(self.step, len(self.script) - 1)]

    def read(self) -> str:
        """The state a status read sees; the script moves on by one."""
        state = self.state
        if self.state_override is None:
            self.step += 1
        return state


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: with Nagle on, each answer on a kept-alive connection waited for
    # the client's delayed ACK (measured: 46 ms a request, 6 ms without), which no real provider makes us wait.
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeProviderServer = self.server.fake
        received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        started = time.perf_counter()
        try:
            with fake.lock:
                if not self.path.startswith("/files/"):
                    fake.received.append(received)
                status, payload, content_type = fake.handle(received)
        except Exception as exc:  # noqa: BLE001 (a fake's own bug: recorded, answered 500)
            fake.errors.append(repr(exc))
            status, payload, content_type = 500, {"detail": "fake server error"}, "application/json"
        with fake.lock:
            fake.handler_seconds["files" if self.path.startswith("/files/") else "api"] += time.perf_counter() - started
        data = payload if isinstance(payload, bytes) else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _dispatch  # noqa: N815 (http.server's spelling)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class FakeProviderServer:
    """Subclasses set `default_script` and implement `route(received, auth_ok) -> (status, payload)`."""

    default_script: list[str] = []
    auth_scheme = "Bearer"

    def __init__(self, *, expected_key: str, validate: Validate, video: bytes) -> None:
        self.expected_key = expected_key
        self.validate = validate
        self.video = video
        self.lock = threading.RLock()
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.jobs: dict[str, FakeJob] = {}
        self._next_script: list[str] | None = None
        self._server: _Server | None = None
        # Time spent inside the handlers (the provider's own time, which a bench takes out of its figures).
        self.handler_seconds = {"api": 0.0, "files": 0.0}

    # --- lifecycle ---
    def start(self) -> FakeProviderServer:
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.errors.clear()
            self.jobs.clear()
            self._next_script = None
            self.handler_seconds = {"api": 0.0, "files": 0.0}

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting ---
    def script_next(self, states: list[str]) -> None:
        self._next_script = list(states)

    def set_state(self, job_id: str, state: str) -> None:
        with self.lock:
            self.jobs[job_id].state_override = state

    def new_job(self, model: str, body: Any) -> FakeJob:
        job = FakeJob(
            id=str(uuid.uuid4()), model=model, body=body, script=self._next_script or list(self.default_script)
        )
        self._next_script = None
        self.jobs[job.id] = job
        return job

    def only_job(self) -> FakeJob:
        assert len(self.jobs) == 1, f"expected one job, the fake has {len(self.jobs)}"
        return next(iter(self.jobs.values()))

    def video_url(self, job_id: str) -> str:
        return f"{self.base_url}/files/{job_id}.mp4"

    def submissions(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and self.is_submission(r.path)]

    def is_submission(self, path: str) -> bool:
        raise NotImplementedError

    # --- handling ---
    def handle(self, received: Received) -> tuple[int, Any, str]:
        path = received.path.split("?", 1)[0]
        if received.method == "GET" and path.startswith("/files/"):
            return (
                (200, self.video, "video/mp4") if path[len("/files/") : -4] in self.jobs else (404, b"", "text/plain")
            )
        auth_ok = received.headers.get("authorization") == f"{self.auth_scheme} {self.expected_key}"
        status, payload = self.route(received.method, path, received, auth_ok)
        return status, payload, "application/json"

    def route(self, method: str, path: str, received: Received, auth_ok: bool) -> tuple[int, Any]:
        raise NotImplementedError
