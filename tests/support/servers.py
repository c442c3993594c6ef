"""A small HTTP(S) server on loopback for tests that fetch URLs (clip ingestion by URL).

Each route is a function of the request handler, so a test can serve a file, redirect, trickle
bytes slowly or stall, and then look at what the server received.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]


@dataclass
class LocalServer:
    base_url: str
    requests: list[ReceivedRequest] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

    def do_GET(self):  # noqa: N802 (http.server's spelling)
        self.server.record.requests.append(ReceivedRequest(self.path, dict(self.headers.items())))
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(OSError):  # the client hung up, which is what several tests want
            route(self)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@contextlib.contextmanager
def serve(
    routes: dict[str, Route], *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", url_host: str | None = None
) -> Iterator[LocalServer]:
    """Serve `routes` on `host` (an ephemeral port) until the block ends."""
    server = _Server((host, 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    scheme = "https" if tls is not None else "http"
    record = LocalServer(base_url=f"{scheme}://{url_host or host}:{port}")
    server.routes = routes
    server.record = record
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


# --- Routes ---------------------------------------------------------------------------------


def file_route(body: bytes, *, content_type: str = "video/mp4", send_length: bool = True) -> Route:
    """Serve `body`; without `send_length` the body ends when the connection closes."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if send_length:
            handler.send_header("Content-Length", str(len(body)))
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(body)

    return route


def declared_length_route(declared: int, *, content_type: str = "video/mp4") -> Route:
    """Announce a large Content-Length, then send only a little (the client should stop at the header)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(b"\0" * 1024)

    return route


def redirect_route(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def trickle_route(*, every_seconds: float = 0.2, total_bytes: int = 10_000) -> Route:
    """Send one byte every `every_seconds`: each read is quick, the whole never ends in time."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        for _ in range(total_bytes):
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            time.sleep(every_seconds)

    return route


def stall_route(seconds: float) -> Route:
    """Say nothing for `seconds`, then answer."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        file_route(b"late")(handler)

    return route
