"""Fetch a URL a user gave us into a temporary file without letting it reach our own network.

The address check runs when the socket connects, not only when the URL is read: the host name is
resolved once, every address it resolves to is checked, and the socket connects to a checked
address, so a DNS answer that changes between a check and a connect (rebinding) cannot slip a
private address through. TLS still uses the host name for SNI and certificate checks, and the
Host header still names the host. Redirects are followed by hand, each hop checked the same way.

Limits: the size (refused early on Content-Length, and streaming stops past it), a connect and a
read timeout per socket operation, and a total time limit enforced by a watchdog that shuts the
socket down, which also ends a server that trickles bytes just fast enough to dodge the read
timeout. Failures are `ServiceError`s, so the API answers them with a clear 4xx/5xx.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings
from rest_framework import status
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import connection as urllib3_connection
from urllib3.util.timeout import Timeout

from common.exceptions import ServiceError
from common.upload_size import clip_max_bytes, too_large_message

MAX_REDIRECTS = 3
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "CharacterPersistence-ClipFetcher/1.0"

# Instance metadata services hand out cloud credentials: refused even inside an allowed network.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
# Refused by name, before any DNS query is made.
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
# Characters a URL has no business carrying; some parsers drop or reinterpret them silently.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_SAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class FetchError(ServiceError):
    """The URL could not be fetched (network or remote server trouble)."""

    status_code: int = status.HTTP_502_BAD_GATEWAY
    code = "url_fetch_failed"


class UrlRefused(FetchError):
    """The URL is not one the server will fetch (scheme, credentials, address)."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "url_refused"


class UrlUnavailable(FetchError):
    """The remote server answered, but not with a file (4xx, a web page)."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "url_unavailable"


class FetchTooLarge(FetchError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "url_too_large"


class FetchTimeout(FetchError):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    code = "url_timeout"


@dataclass(frozen=True)
class FetchedFile:
    path: Path  # the caller deletes it
    url: str  # the final URL, after redirects
    filename: str  # a safe file name taken from the final URL's path
    content_type: str
    size_bytes: int


# --- Addresses ------------------------------------------------------------------------------


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Networks `SAFE_FETCH_ALLOWED_NETWORKS` lets through although they are not public (default: none)."""
    networks = getattr(settings, "SAFE_FETCH_ALLOWED_NETWORKS", ())
    return tuple(ipaddress.ip_network(net, strict=False) for net in networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if any (mapped, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    return None


def address_refusal(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, allowed=None) -> str | None:
    """Why the server must not connect to `address`, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    allowed = allowed_networks() if allowed is None else allowed
    candidates = [ip]
    if ip.version == 6 and (embedded := _embedded_ipv4(ip)) is not None:
        candidates.insert(0, embedded)  # judge ::ffff:127.0.0.1 as the loopback address it is
    for candidate in candidates:
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata address"
    if any(ip in net for net in allowed if net.version == ip.version):
        return None
    for candidate in candidates:
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_reserved:
            return "a reserved address"
        if candidate.is_private:
            return "a private address"
        if not candidate.is_global:
            return "a reserved address"
    return None


def _refuse_address(host: str, address: str, reason: str) -> UrlRefused:
    shown = host if host == address else f"{host} ({address})"
    return UrlRefused(
        f"The link points to {reason}: {shown}. The server only fetches clips from public http(s) hosts.",
        details={"host": host, "address": address},
    )


# --- The total time limit -------------------------------------------------------------------


class _Deadline:
    """The total time limit of one fetch. When it passes, the watchdog shuts down every socket
    the fetch opened, which ends any blocking read at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def track(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                self._shutdown(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                self._shutdown(connection)

    @staticmethod
    def _shutdown(connection: HTTPConnection) -> None:
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()

    def error(self) -> FetchTimeout:
        return FetchTimeout(
            f"Fetching the link took longer than {self.seconds:g} seconds, the limit. "
            "Upload the file itself, or use a faster host."
        )


# --- Connections that check where they connect ----------------------------------------------


# The mixin is only ever mixed into urllib3's HTTPConnection; the checker reads its attributes from there.
_ConnectionBase = HTTPConnection if TYPE_CHECKING else object


class _GuardedConnectionMixin(_ConnectionBase):  # type: ignore[misc,valid-type]
    """Resolve the host once, refuse if any address is not public, connect to a checked address."""

    def __init__(self, *args, deadline: _Deadline, allowed: tuple, **kwargs):
        self._deadline = deadline
        self._allowed = allowed
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        host, port = self.host, self.port
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"The host {host} could not be found. Check the link.") from exc
        addresses = list(dict.fromkeys(cast(str, info[4][0]) for info in infos))  # IP families: a string
        for address in addresses:
            if reason := address_refusal(address, self._allowed):
                raise _refuse_address(host, address, reason)
        last_error: OSError | None = None
        for address in addresses:
            remaining = self._deadline.remaining()
            if remaining <= 0:
                raise self._deadline.error()
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else CONNECT_TIMEOUT_SECONDS
            try:
                # An IP literal: create_connection's own lookup only parses it, no DNS.
                return urllib3_connection.create_connection(
                    (address, port), min(timeout, remaining), self.source_address, self.socket_options
                )
            except OSError as exc:
                last_error = exc
        if isinstance(last_error, TimeoutError):
            raise FetchTimeout(f"The host {host} did not answer in time.")
        raise FetchError(f"Could not connect to {host}: {last_error}.")

    def connect(self) -> None:
        self._deadline.track(self)
        super().connect()


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


# --- URLs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # IDNA-encoded, no brackets
    port: int
    request_path: str


def parse_fetch_url(url: str) -> _Target:
    """Check the parts of a URL that need no network: scheme, credentials, host, port."""
    url = (url or "").strip()
    if not url:
        raise UrlRefused("Give the link to a video file (http:// or https://).")
    if _UNSAFE_URL_CHARS.search(url):
        raise UrlRefused("The link contains spaces, control characters or backslashes; check it and try again.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}://" if scheme else "a link without http:// or https://"
        raise UrlRefused(f"Only http:// and https:// links can be fetched, not {shown}.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("Links with a user name or password in them are not accepted.")
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname:
        raise UrlRefused("The link has no host name.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UrlRefused("The link's port number is not valid.") from None
    try:
        literal = ipaddress.ip_address(hostname.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        # A literal address is checked now, before anything is sent anywhere.
        if reason := address_refusal(literal):
            raise _refuse_address(hostname, str(literal), reason)
        host = str(literal)
    else:
        try:
            host = hostname.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlRefused("The link's host name is not valid.") from None
        if host in METADATA_HOSTNAMES:
            raise UrlRefused(f"The link points to a cloud metadata service ({host}), which the server never fetches.")
    path = parts.path or "/"
    request_path = f"{path}?{parts.query}" if parts.query else path
    return _Target(url=url, scheme=scheme, host=host, port=port, request_path=request_path)


def _filename_from(url: str) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return _SAFE_FILENAME_CHARS.sub("_", name).strip("._")[:120] or "clip"


def _too_large(max_bytes: int) -> FetchTooLarge:
    return FetchTooLarge(too_large_message("The file at that link", limit=max_bytes))


# --- Fetching -------------------------------------------------------------------------------


def fetch_to_temp_file(
    url: str,
    *,
    max_bytes: int | None = None,
    timeout: float | None = None,
    dest_dir: Path | str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchedFile:
    """Download `url` (public http(s) hosts only) to a temp file; raise a `FetchError` otherwise.

    `max_bytes` defaults to CLIP_MAX_BYTES and `timeout` (total seconds) to CLIP_FETCH_TIMEOUT_SECONDS.
    Nothing is left on disk when it raises.
    """
    max_bytes = clip_max_bytes() if max_bytes is None else max_bytes
    timeout = settings.CLIP_FETCH_TIMEOUT_SECONDS if timeout is None else timeout
    allowed = allowed_networks()
    current = url
    target = parse_fetch_url(current)  # refuse what needs no network before starting the clock
    deadline = _Deadline(timeout)
    try:
        for hop in range(MAX_REDIRECTS + 1):
            if hop:
                target = parse_fetch_url(current)
            with _get(target, deadline, allowed, ssl_context) as response:
                if response.status not in REDIRECT_STATUSES:
                    return _save_body(response, current, max_bytes, deadline, dest_dir)
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"The link redirected ({response.status}) without saying where to.")
                current = urljoin(current, location)
        raise FetchError(f"The link redirected more than {MAX_REDIRECTS} times; give the file's own link.")
    except Urllib3Error as exc:
        if deadline.expired or isinstance(exc, Urllib3Timeout):
            raise deadline.error() from exc
        if isinstance(exc, Urllib3SSLError):
            raise FetchError(f"The secure connection to {target.host} failed: {exc}.") from exc
        raise FetchError(f"Could not fetch the link: {exc}.") from exc
    except FetchError:
        raise
    except OSError as exc:
        if deadline.expired:
            raise deadline.error() from exc
        raise FetchError(f"Could not fetch the link: {exc}.") from exc
    finally:
        deadline.cancel()


@contextlib.contextmanager
def _get(target: _Target, deadline: _Deadline, allowed: tuple, ssl_context: ssl.SSLContext | None):
    """One GET on a fresh guarded connection, redirects not followed; closed when the block ends."""
    remaining = max(deadline.remaining(), 0.001)
    timeouts = Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, remaining), read=min(READ_TIMEOUT_SECONDS, remaining))
    pool: HTTPConnectionPool
    if target.scheme == "https":
        pool = _GuardedHTTPSPool(
            target.host,
            target.port,
            maxsize=1,
            retries=False,
            timeout=timeouts,
            deadline=deadline,
            allowed=allowed,
            ssl_context=ssl_context,
        )
    else:
        pool = _GuardedHTTPPool(
            target.host, target.port, maxsize=1, retries=False, timeout=timeouts, deadline=deadline, allowed=allowed
        )
    try:
        response = pool.urlopen(
            "GET",
            target.request_path,
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "video/*, application/octet-stream;q=0.9, */*;q=0.5",
                "Accept-Encoding": "identity",
            },
        )
        try:
            yield response
        finally:
            response.close()
    finally:
        pool.close()


def _save_body(response, url: str, max_bytes: int, deadline: _Deadline, dest_dir) -> FetchedFile:
    if response.status >= 400:
        reason = f"{response.status} {response.reason or ''}".strip()
        error = UrlUnavailable if response.status < 500 else FetchError
        raise error(f"The link answered {reason}. Check that it points to the video file itself.")
    if response.status != 200:
        raise FetchError(f"The link answered {response.status} instead of the file.")
    content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type.startswith("text/"):
        raise UrlUnavailable(
            f"The link leads to a web page or text ({content_type}), not a video file. "
            "Give the link to the video file itself."
        )
    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)

    filename = _filename_from(url)
    suffix = Path(filename).suffix.lower()[:8]
    tmp = tempfile.NamedTemporaryFile(prefix="clip-fetch-", suffix=suffix, dir=dest_dir, delete=False)
    written = 0
    try:
        with tmp:
            while True:
                chunk = response.read1(CHUNK_BYTES)
                if deadline.expired:
                    raise deadline.error()
                if not chunk:
                    break
                written += len(chunk)
                if written > max_bytes:
                    raise _too_large(max_bytes)
                tmp.write(chunk)
        if deadline.expired:  # the watchdog's shutdown can look like a normal end of the body
            raise deadline.error()
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return FetchedFile(path=Path(tmp.name), url=url, filename=filename, content_type=content_type, size_bytes=written)
