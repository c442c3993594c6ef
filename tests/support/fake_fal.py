"""A fake fal.ai queue server on loopback, for tests and benches that drive the real `fal_client`.

fal_client builds every queue URL as `https://{FAL_QUEUE_RUN_HOST}/...`, reading the variable once,
when `fal_client.auth` is imported, and talks HTTPS through httpx, which trusts the CA bundle named
by SSL_CERT_FILE. So a process calls `prepare_environment()` before anything imports fal_client: it
reserves a loopback port, makes a throwaway CA and a certificate for 127.0.0.1, and points both
variables at them (the CA bundle keeps the system's CAs too). `FakeFal(host).start()` then serves
fal's queue protocol there:

    POST /{endpoint id}[?fal_webhook=URL]        -> {request_id, response_url, status_url, cancel_url}
    GET  /{owner}/{alias}/requests/{id}/status  -> IN_QUEUE (queue_position) | IN_PROGRESS | COMPLETED
    GET  /{owner}/{alias}/requests/{id}         -> the result, {"video": {"url": ...}}
    PUT  /{owner}/{alias}/requests/{id}/cancel  -> 202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED

A submission whose body breaks the model's input schema (the `validate` callable it is given: the
tests pass generation.payloads' published schemas) is answered 422 with fal's `{"detail": [{"loc",
"msg", "type"}]}`, as fal answers it; so is a reference-to-video body over fal's input budget (elements +
style images `image_urls` + start image: at most 7, which no per-field schema can say). And, over plain
HTTP on another loopback port, it serves the result videos and the JWKS of the key it signs webhooks with.
It records every request body, and each submission follows a `Script` (stay queued for N polls or until
`complete()`, answer the submission with 5xx first, or only after a delay, COMPLETED then 422 on the result, ...).
`handler_seconds` adds up the time spent inside its
handlers, so a bench can take the provider's own time out of its figures.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.tls import make_tls_files

LOOPBACK = "127.0.0.1"
JWKS_PATH = "/.well-known/jwks.json"
ENVIRONMENT_VARIABLES = ("FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE", "NO_PROXY", "no_proxy")


# --- TLS (tests/support/tls.py) and the environment fal_client reads --------------------------------------------------


def _system_ca_bundle() -> bytes:
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    try:
        import certifi

        return Path(certifi.where()).read_bytes()
    except ImportError:
        return b""


@dataclass
class QueueHost:
    """Where fal_client is pointed for a whole process: a reserved loopback port and its TLS files."""

    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_bundle: Path
    # Bound (not listening) until the fake starts, so nothing else takes the port meanwhile.
    reserved_socket: socket.socket | None = field(default=None, repr=False)
    saved_environment: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def netloc(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def server_tls(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def restore_environment(self) -> None:
        for name, value in self.saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.reserved_socket is not None:
            self.reserved_socket.close()
            self.reserved_socket = None


def prepare_environment(folder: Path) -> QueueHost:
    """Reserve a loopback port and point fal_client (FAL_QUEUE_RUN_HOST) and httpx (SSL_CERT_FILE) at it.

    Must run before `fal_client` is imported anywhere in the process; child processes (a Celery
    worker) inherit the variables. Refuses if fal_client was already imported with another host.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    ca_file, cert_file, key_file = make_tls_files(
        folder, dns_names=["localhost"], ip_addresses=[LOOPBACK], ca_name="fake fal test CA"
    )
    bundle = folder / "ca-bundle.pem"
    bundle.write_bytes(_system_ca_bundle().rstrip(b"\n") + b"\n" + ca_file.read_bytes())
    host = QueueHost(
        port=sock.getsockname()[1],
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        ca_bundle=bundle,
        reserved_socket=sock,
        saved_environment={name: os.environ.get(name) for name in ENVIRONMENT_VARIABLES},
    )
    auth = sys.modules.get("fal_client.auth")
    if auth is not None and host.netloc != auth.FAL_QUEUE_RUN_HOST:
        host.restore_environment()
        raise RuntimeError(
            "fal_client was imported before the fake fal server's address was set, so it would talk to "
            f"{auth.FAL_QUEUE_RUN_HOST}; call prepare_environment() before anything imports fal_client."
        )
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), LOOPBACK]))
    os.environ.update(
        {"FAL_QUEUE_RUN_HOST": host.netloc, "SSL_CERT_FILE": str(bundle), "NO_PROXY": no_proxy, "no_proxy": no_proxy}
    )
    return host


# --- Webhook signatures --------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class WebhookSigner:
    """An Ed25519 key that signs deliveries the way fal does; `jwk()` is its public half."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()

    def jwk(self) -> dict:
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": hashlib.sha256(raw).hexdigest()[:16]}

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
        return self._key.sign(message).hex()

    def headers(
        self, request_id: str, body: bytes, *, user_id: str = "fake-user", timestamp: int | None = None
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": self.sign(request_id, user_id, stamp, body),
        }


# --- What the fake does with each submission ------------------------------------------------------


@dataclass
class Script:
    """How the fake answers one submission and the request it creates."""

    queued_polls: int | None = 0  # status says IN_QUEUE this many times; None: until complete() is called
    in_progress_polls: int = 0  # then IN_PROGRESS this many times, then COMPLETED
    submit_errors: int = 0  # answer the submission with `submit_error_status` this many times first
    submit_error_status: int = 500
    submit_status: int = 200  # e.g. 422: the submission itself is refused (validation), for good
    submit_detail: Any = None
    submit_answer_delay: float = 0.0  # queue the request, then wait this long before answering (a worker dies then)
    result_status: int = 200  # e.g. 422: COMPLETED, then the result fetch answers this
    result_detail: Any = None
    status_error: str | None = None  # COMPLETED carries this error (a failed request)
    status_errors: int = 0  # answer this many status calls with 503 first (fal having a bad minute)
    video: bytes | None = None  # the result video; the fake's default when None


@dataclass
class Submission:
    """One POST to a model endpoint, accepted or not."""

    endpoint: str
    arguments: Any
    webhook_url: str | None
    authorization: str | None
    status_code: int
    request_id: str | None = None


@dataclass
class FakeRequest:
    request_id: str
    endpoint: str
    arguments: dict
    webhook_url: str | None
    script: Script
    status_polls: int = 0
    result_fetches: int = 0
    released: bool = False
    cancelled: bool = False
    handler_seconds: float = 0.0  # time the fake spent answering this request's calls (queue and video)

    @property
    def owner_alias(self) -> str:
        return "/".join(self.endpoint.split("/")[:2])

    def state(self) -> str:
        """IN_QUEUE, IN_PROGRESS or COMPLETED, by the number of status answers given so far."""
        if self.cancelled or self.released:
            return "COMPLETED"
        if self.script.queued_polls is None:
            return "IN_QUEUE"
        if self.status_polls < self.script.queued_polls:
            return "IN_QUEUE"
        if self.status_polls < self.script.queued_polls + self.script.in_progress_polls:
            return "IN_PROGRESS"
        return "COMPLETED"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server: _Server
    _started = 0.0

    def parse_request(self) -> bool:
        # The request line has arrived: from here on, the time is the fake's own (headers, body, answer).
        self._started = time.perf_counter()
        return super().parse_request()

    def _dispatch(self) -> None:
        started = self._started or time.perf_counter()
        request_id = None
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                status, payload, extra = self.server.fake._route(
                    self.command, self.path, dict(self.headers), body, self.server.kind
                )
            except Exception as exc:  # a bug in the fake: answer it, and keep it for the test to see
                self.server.fake.errors.append(f"{self.command} {self.path}: {exc!r}")
                status, payload, extra = 500, {"detail": f"fake fal error: {exc!r}"}, {}
            request_id = extra.get("x-fal-request-id")
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", extra.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            self.server.fake._add_handler_time(self.server.kind, time.perf_counter() - started, request_id)

    do_GET = do_POST = do_PUT = do_HEAD = _dispatch

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeFal
    kind: str
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, so one slow client never holds up the rest.
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return None
        try:
            return super().finish_request(request, client_address)
        finally:
            with contextlib.suppress(OSError):
                request.close()

    def handle_error(self, request, client_address):
        pass  # a client hanging up mid-answer is not the fake's business


# fal's schema text for `elements` and `image_urls` of Kling O1 / O3 reference-to-video: "Maximum 7 total
# (elements + reference images + start image)"; an element counts as one (see generation/payloads.py MAX_INPUTS).
FAL_REFERENCE_INPUT_LIMIT = 7


def over_input_budget(arguments: dict) -> list[dict]:
    """fal's refusal of a reference-to-video body with more than 7 inputs, in its 422 `detail` shape; [] if it fits."""
    used = (
        len(arguments.get("elements") or [])
        + len(arguments.get("image_urls") or [])
        + (1 if arguments.get("start_image_url") and "elements" in arguments else 0)
    )
    if used <= FAL_REFERENCE_INPUT_LIMIT:
        return []
    return [
        {
            "loc": ["body"],
            "msg": f"Maximum {FAL_REFERENCE_INPUT_LIMIT} total (elements + reference images + start image); got {used}",
            "type": "value_error",
        }
    ]


class FakeFal:
    """The fake queue (HTTPS, at `host`) and file server (HTTP); see the module docstring."""

    def __init__(
        self,
        host: QueueHost,
        *,
        default_video: bytes = b"",
        expected_key: str | None = None,
        validate: Callable[[str, Any], list[dict] | None] | None = None,
    ) -> None:
        """`validate(endpoint, body)`: where the body breaks that model's input schema, in fal's 422 `detail`
        shape ([] when it fits, None for a model with no schema, answered 404 as fal answers an unknown app).
        Without it every body is accepted."""
        self.host = host
        self.validate = validate
        self.default_video = default_video
        self.expected_key = expected_key
        self.signer = WebhookSigner()
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self.files_base_url = ""
        self.reset()

    # --- lifecycle ---

    def start(self) -> FakeFal:
        queue = _Server((LOOPBACK, self.host.port), _Handler, bind_and_activate=False)
        queue.socket.close()
        if self.host.reserved_socket is not None:
            queue.socket, self.host.reserved_socket = self.host.reserved_socket, None
        else:  # started again after a stop(): the port is still ours to take back
            queue.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            queue.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            queue.socket.bind((LOOPBACK, self.host.port))
        queue.server_address = queue.socket.getsockname()
        queue.server_activate()
        queue.tls = self.host.server_tls()
        files = _Server((LOOPBACK, 0), _Handler)
        self.files_base_url = f"http://{LOOPBACK}:{files.server_address[1]}"
        for server, kind in ((queue, "queue"), (files, "files")):
            server.fake, server.kind = self, kind
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"fake-fal-{kind}"
            )
            thread.start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self) -> FakeFal:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every request and script (between tests)."""
        with self._lock:
            self.requests: dict[str, FakeRequest] = {}
            self.submissions: list[Submission] = []
            self.calls: list[tuple[str, str]] = []
            self.errors: list[str] = []  # exceptions inside the fake itself (answered with 500)
            self.scripts: deque[Script] = deque()
            self.default_script = Script()
            self.handler_seconds = {"queue": 0.0, "files": 0.0}

    # --- what a test tells it and reads back ---

    @property
    def queue_base_url(self) -> str:
        return f"https://{self.host.netloc}"

    @property
    def jwks_url(self) -> str:
        return self.files_base_url + JWKS_PATH

    def script_next(self, **script: Any) -> Script:
        """The next submission follows this script (after those already queued); later ones the default."""
        planned = Script(**script)
        with self._lock:
            self.scripts.append(planned)
        return planned

    @property
    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.request_id is not None]

    def only_request(self) -> FakeRequest:
        assert len(self.requests) == 1, f"expected exactly one request at the fake fal, got {list(self.requests)}"
        return next(iter(self.requests.values()))

    def complete(self, request_id: str) -> FakeRequest:
        """Finish a request held in the queue (Script.queued_polls=None): status says COMPLETED from now on."""
        with self._lock:
            request = self.requests[request_id]
            request.released = True
            return request

    def video_url(self, request_id: str) -> str:
        return f"{self.files_base_url}/files/{request_id}.mp4"

    def result_body(self, request: FakeRequest) -> dict:
        video = request.script.video if request.script.video is not None else self.default_video
        return {
            "video": {
                "url": self.video_url(request.request_id),
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": len(video),
            }
        }

    def webhook_delivery(
        self,
        request_id: str,
        *,
        status: str = "OK",
        error: str | None = None,
        signer: WebhookSigner | None = None,
        timestamp: int | None = None,
        body_request_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers fal would POST to the request's webhook URL, signed (by `signer` to forge one)."""
        request = self.requests.get(request_id)
        payload: dict[str, Any] = {
            "request_id": body_request_id or request_id,
            "gateway_request_id": request_id,
            "status": status,
        }
        if status == "OK":
            payload["payload"] = self.result_body(request) if request else {}
        else:
            payload["error"] = error or "Request failed"
            payload["payload"] = {"detail": [{"msg": error or "Request failed", "type": "error"}]}
        body = json.dumps(payload).encode()
        return body, (signer or self.signer).headers(request_id, body, timestamp=timestamp)

    def deliver_webhook(self, request_id: str, *, url: str | None = None, **kwargs: Any) -> tuple[int, dict]:
        """POST a signed delivery to the webhook URL the request was submitted with (or `url`)."""
        import requests

        body, headers = self.webhook_delivery(request_id, **kwargs)
        target = url or self.requests[request_id].webhook_url
        assert target, f"request {request_id} was submitted without a webhook URL"
        response = requests.post(
            target, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=120
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"text": response.text}

    # --- the protocol ---

    def _add_handler_time(self, kind: str, seconds: float, request_id: str | None) -> None:
        with self._lock:
            self.handler_seconds[kind] += seconds
            if request_id in self.requests:
                self.requests[request_id].handler_seconds += seconds

    def _error(self, status: int, detail: Any, request_id: str | None = None) -> tuple[int, Any, dict]:
        headers = {"x-fal-request-id": request_id} if request_id else {}
        return status, {"detail": detail}, headers

    def _route(self, method: str, raw_path: str, headers: dict, body: bytes, kind: str) -> tuple[int, Any, dict]:
        url = urlsplit(raw_path)
        with self._lock:
            self.calls.append((method, url.path if kind == "queue" else f"files:{url.path}"))
        if kind == "files":
            return self._serve_file(url.path)
        authorization = headers.get("Authorization")
        if (
            not authorization
            or not authorization.startswith("Key ")
            or (self.expected_key is not None and authorization != f"Key {self.expected_key}")
        ):
            return self._error(401, "No valid fal key in the Authorization header.")
        parts = [p for p in url.path.split("/") if p]
        if "requests" in parts:
            at = parts.index("requests")
            if len(parts) < at + 2:
                return self._error(404, "Not found.")
            owner_alias, request_id, rest = "/".join(parts[:at]), parts[at + 1], parts[at + 2 :]
            with self._lock:
                request = self.requests.get(request_id)
            if request is None or request.owner_alias != owner_alias:
                return self._error(404, f"Request {request_id} not found for {owner_alias}.")
            if method == "GET" and rest == ["status"]:
                return self._status(request, url)
            if method == "GET" and not rest:
                return self._result(request)
            if method == "PUT" and rest == ["cancel"]:
                return self._cancel(request)
            return self._error(405, "Method not allowed.")
        if method != "POST" or len(parts) < 2:
            return self._error(404, "Not found.")
        return self._submit("/".join(parts), url, authorization, body)

    def _submit(self, endpoint: str, url, authorization: str, body: bytes) -> tuple[int, Any, dict]:
        try:
            arguments = json.loads(body or b"null")
        except ValueError:
            arguments = None
        webhook = (parse_qs(url.query).get("fal_webhook") or [None])[0]
        with self._lock:
            script = self.scripts[0] if self.scripts else self.default_script
            submission = Submission(endpoint, arguments, webhook, authorization, 200)
            self.submissions.append(submission)
            if script.submit_errors > 0:
                script.submit_errors -= 1
                submission.status_code = script.submit_error_status
                return self._error(
                    script.submit_error_status, "Internal error, try again.", f"failed-{secrets.token_hex(4)}"
                )
            if self.scripts:
                self.scripts.popleft()
            if script.submit_status != 200:
                submission.status_code = script.submit_status
                return self._error(script.submit_status, script.submit_detail or "Unprocessable request.")
            if not isinstance(arguments, dict):
                submission.status_code = 422
                return self._error(422, "The body must be a JSON object.")
            if self.validate is not None:
                problems = self.validate(endpoint, arguments)
                if problems is None:
                    submission.status_code = 404
                    return self._error(404, f"Application '{endpoint}' not found.")
                problems = problems or over_input_budget(arguments)
                if problems:  # as fal does: 422 with pydantic's list of {loc, msg, type}
                    submission.status_code = 422
                    return self._error(422, problems)
            request_id = secrets.token_hex(16)
            request = FakeRequest(request_id, endpoint, arguments, webhook, script)
            self.requests[request_id] = request
            submission.request_id = request_id
        if script.submit_answer_delay:
            time.sleep(script.submit_answer_delay)  # accepted: the client is waiting for the answer
        base = f"{self.queue_base_url}/{request.owner_alias}/requests/{request_id}"
        return (
            200,
            {
                "status": "IN_QUEUE",
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
            {"x-fal-request-id": request_id},
        )

    def _status(self, request: FakeRequest, url) -> tuple[int, Any, dict]:
        with_logs = parse_qs(url.query).get("logs", ["false"])[0].lower() in ("1", "true")
        with self._lock:
            script = request.script
            if script.status_errors > 0:
                script.status_errors -= 1
                return self._error(503, "Service temporarily unavailable.", request.request_id)
            state = request.state()
            position = (script.queued_polls or 0) - request.status_polls - 1 if script.queued_polls else 0
            request.status_polls += 1
        base = f"{self.queue_base_url}/{request.owner_alias}/requests/{request.request_id}"
        body: dict[str, Any] = {"status": state, "request_id": request.request_id, "response_url": base}
        logs = [{"message": "fake fal at work", "level": "INFO", "timestamp": "2026-01-01T00:00:00Z"}]
        if state == "IN_QUEUE":
            body["queue_position"] = max(position, 0)
        else:
            body["logs"] = logs if with_logs else None
        if state == "COMPLETED":
            body["metrics"] = {"inference_time": 0.01}
            error = "Request was cancelled." if request.cancelled else script.status_error
            if error:
                body["error"], body["error_type"] = error, "request_error"
        return 200, body, {"x-fal-request-id": request.request_id}

    def _result(self, request: FakeRequest) -> tuple[int, Any, dict]:
        with self._lock:
            request.result_fetches += 1
            state = request.state()
            script = request.script
        if state != "COMPLETED":
            return self._error(400, "Request is still in progress.", request.request_id)
        if request.cancelled:
            return self._error(400, "Request was cancelled.", request.request_id)
        if script.result_status != 200:
            return self._error(
                script.result_status, script.result_detail or "Unprocessable result.", request.request_id
            )
        return 200, self.result_body(request), {"x-fal-request-id": request.request_id}

    def _cancel(self, request: FakeRequest) -> tuple[int, Any, dict]:
        with self._lock:
            if request.state() == "COMPLETED":
                return 400, {"status": "ALREADY_COMPLETED"}, {"x-fal-request-id": request.request_id}
            request.cancelled = True
        return 202, {"status": "CANCELLATION_REQUESTED"}, {"x-fal-request-id": request.request_id}

    def _serve_file(self, path: str) -> tuple[int, Any, dict]:
        if path == JWKS_PATH:
            return 200, {"keys": [self.signer.jwk()]}, {}
        if path.startswith("/files/") and path.endswith(".mp4"):
            request = self.requests.get(path[len("/files/") : -len(".mp4")])
            if request is not None:
                video = request.script.video if request.script.video is not None else self.default_video
                return 200, video, {"Content-Type": "video/mp4", "x-fal-request-id": request.request_id}
        return 404, {"detail": "Not found."}, {}
