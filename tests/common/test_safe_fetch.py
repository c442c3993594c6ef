"""common.safe_fetch: which URLs the server fetches, and the limits it keeps.

Traffic only ever goes to loopback. For every refused address the test proves no socket was
connected (and, where the refusal needs no DNS, no name was looked up) with a Python audit hook
that sees every `socket.connect` and `socket.getaddrinfo` in the process.
"""

import socket
import ssl
import sys
import time

import pytest

from common.safe_fetch import (
    FetchError,
    FetchTimeout,
    FetchTooLarge,
    UrlRefused,
    UrlUnavailable,
    address_refusal,
    fetch_to_temp_file,
)
from tests.support import servers
from tests.support.tls import make_tls_files

BODY = bytes(range(256)) * 400  # 100 KiB that are not text


# --- Watching the sockets -------------------------------------------------------------------

_socket_events: list | None = None


def _audit(event, args):
    if _socket_events is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _socket_events.append((event, args[1] if event == "socket.connect" else args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed; this one only records while a test asks it to


class SocketLog:
    def __init__(self, events: list):
        self.events = events

    @property
    def connects(self) -> list:
        return [address for event, address in self.events if event == "socket.connect"]

    @property
    def lookups(self) -> list:
        return [host for event, host in self.events if event == "socket.getaddrinfo"]


@pytest.fixture
def sockets():
    global _socket_events
    _socket_events = []
    try:
        yield SocketLog(_socket_events)
    finally:
        _socket_events = None


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "fetched"
    path.mkdir()
    return path


@pytest.fixture
def allow_loopback(settings):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def server():
    routes = {
        "/clips/take%201.mp4": servers.file_route(BODY),
        "/clip.mp4": servers.file_route(BODY),
        "/hop": servers.redirect_route("/clip.mp4", 301),
        "/loop": servers.redirect_route("/loop"),
        "/page": servers.file_route(b"<html>a page</html>", content_type="text/html; charset=utf-8"),
        "/gone": lambda handler: handler.send_error(404),
        "/broken": lambda handler: handler.send_error(500),
        "/no-length": servers.file_route(BODY, send_length=False),
        "/claims-huge": servers.declared_length_route(10**12),
        "/trickle": servers.trickle_route(every_seconds=0.1),
        "/stall": servers.stall_route(5),
    }
    with servers.serve(routes) as running:
        running.routes = routes
        yield running


def refused(url: str, dest, **kwargs) -> UrlRefused:
    with pytest.raises(UrlRefused) as caught:
        fetch_to_temp_file(url, dest_dir=dest, **kwargs)
    assert list(dest.iterdir()) == []
    return caught.value


# --- Allowed fetches ------------------------------------------------------------------------


def test_fetches_a_file_from_an_allowed_host(server, allow_loopback, dest, sockets):
    fetched = fetch_to_temp_file(server.url("/clips/take%201.mp4"), dest_dir=dest)

    assert fetched.path.parent == dest
    assert fetched.path.read_bytes() == BODY
    assert fetched.size_bytes == len(BODY)
    assert fetched.filename == "take_1.mp4"
    assert fetched.content_type == "video/mp4"
    assert {address[0] for address in sockets.connects} == {"127.0.0.1"}
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_follows_a_redirect_within_allowed_hosts(server, allow_loopback, dest):
    fetched = fetch_to_temp_file(server.url("/hop"), dest_dir=dest)

    assert fetched.url == server.url("/clip.mp4")
    assert fetched.path.read_bytes() == BODY
    assert [r.path for r in server.requests] == ["/hop", "/clip.mp4"]


# --- Refused addresses (default settings: nothing but public hosts) --------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/clip.mp4", "loopback"),
        ("http://localhost:{port}/clip.mp4", "loopback"),
        ("http://127.1:{port}/clip.mp4", "loopback"),  # short form
        ("http://2130706433:{port}/clip.mp4", "loopback"),  # 127.0.0.1 as one number
        ("http://[::1]:{port}/clip.mp4", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/clip.mp4", "loopback"),  # IPv4-mapped IPv6
        ("http://0.0.0.0:{port}/clip.mp4", "unspecified"),
        ("http://[::]:{port}/clip.mp4", "unspecified"),
        ("http://10.1.2.3/clip.mp4", "private"),
        ("http://172.16.5.4/clip.mp4", "private"),
        ("http://192.168.0.10/clip.mp4", "private"),
        ("http://[fd12:3456::1]/clip.mp4", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://100.100.100.200/latest/meta-data/", "metadata"),
        ("http://169.254.1.1/clip.mp4", "link-local"),
        ("http://[fe80::1]/clip.mp4", "link-local"),
        ("http://224.0.0.1/clip.mp4", "multicast"),
        ("http://[ff02::1]/clip.mp4", "multicast"),
        ("http://240.0.0.1/clip.mp4", "reserved"),
        ("http://100.64.0.1/clip.mp4", "reserved"),  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_refused_before_connecting(url, reason, server, dest, sockets):
    port = server.base_url.rsplit(":", 1)[1]

    error = refused(url.format(port=port), dest)

    assert reason in error.message
    assert error.status_code == 400
    assert sockets.connects == []
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "not file://"),
        ("ftp://example.com/clip.mp4", "not ftp://"),
        ("gopher://example.com/clip.mp4", "not gopher://"),
        ("javascript:alert(1)", "not javascript://"),
        ("//example.com/clip.mp4", "without http"),
        ("example.com/clip.mp4", "without http"),
        ("http://user:secret@example.com/clip.mp4", "user name or password"),
        ("http://example.com@127.0.0.1/clip.mp4", "user name or password"),
        ("http://exa mple.com/clip.mp4", "spaces"),
        ("http://example.com\\@127.0.0.1/clip.mp4", "backslashes"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://example.com:99999/clip.mp4", "port"),
        ("http:///clip.mp4", "no host"),
        ("", "Give the link"),
    ],
)
def test_bad_urls_are_refused_without_any_lookup(url, words, dest, sockets):
    error = refused(url, dest)

    assert words in error.message
    assert sockets.lookups == []
    assert sockets.connects == []


def test_metadata_addresses_stay_refused_inside_an_allowed_network(settings, dest, sockets):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["169.254.0.0/16", "fd00::/8"]

    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/"):
        assert "metadata" in refused(url, dest).message
    assert sockets.connects == []


def test_a_name_with_any_non_public_address_is_refused(allow_loopback, server, dest, sockets, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def two_faced(host, *args, **kwargs):
        if host == "two-faced.test":
            return real_getaddrinfo("127.0.0.1", *args, **kwargs) + real_getaddrinfo("10.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_faced)
    port = server.base_url.rsplit(":", 1)[1]

    error = refused(f"http://two-faced.test:{port}/clip.mp4", dest)

    assert "10.0.0.1" in error.message
    assert sockets.connects == []


def test_the_checked_address_is_the_one_connected_to(allow_loopback, server, dest, sockets, monkeypatch):
    """DNS rebinding: a name that answers an allowed address first and another one later must not
    get the later one connected to; the check and the connect use one and the same answer."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host == "rebind.test":
            return real_getaddrinfo(next(answers, "127.0.0.2"), *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = int(server.base_url.rsplit(":", 1)[1])

    fetched = fetch_to_temp_file(f"http://rebind.test:{port}/clip.mp4", dest_dir=dest)

    assert fetched.path.read_bytes() == BODY
    assert sockets.connects == [("127.0.0.1", port)]
    assert server.requests[0].headers["Host"] == f"rebind.test:{port}"


def test_address_refusal_lets_public_addresses_through():
    assert address_refusal("93.184.215.14", ()) is None
    assert address_refusal("2606:2800:21f:cb07:6820:80da:af6b:8b2c", ()) is None
    assert address_refusal("::ffff:10.0.0.1", ()) == "a private address"


# --- Redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
        ("http://127.0.0.2:{port}/clip.mp4", "loopback"),  # loopback, but outside the allowed 127.0.0.1/32
        ("http://[::1]:{port}/clip.mp4", "loopback"),
        ("http://10.0.0.5/clip.mp4", "private"),
        ("file:///etc/passwd", "not file://"),
        ("http://user:pw@example.com/clip.mp4", "user name"),
    ],
)
def test_a_redirect_to_a_refused_place_is_refused(location, words, allow_loopback, server, dest, sockets):
    port = int(server.base_url.rsplit(":", 1)[1])
    server.routes["/away"] = servers.redirect_route(location.format(port=port))

    error = refused(server.url("/away"), dest)

    assert words in error.message
    assert sockets.connects == [("127.0.0.1", port)]  # the first hop only
    assert [r.path for r in server.requests] == ["/away"]


def test_too_many_redirects_are_refused(allow_loopback, server, dest):
    with pytest.raises(FetchError, match="redirected more than 3 times"):
        fetch_to_temp_file(server.url("/loop"), dest_dir=dest)

    assert len(server.requests) == 4
    assert list(dest.iterdir()) == []


# --- Size and time limits -------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_the_body(allow_loopback, server, dest):
    started = time.monotonic()
    with pytest.raises(FetchTooLarge) as caught:
        fetch_to_temp_file(server.url("/claims-huge"), max_bytes=50_000, dest_dir=dest)

    assert caught.value.status_code == 413
    assert "larger than 49 KB" in caught.value.message
    assert time.monotonic() - started < 2
    assert list(dest.iterdir()) == []


def test_a_body_growing_past_the_limit_is_cut_off(allow_loopback, server, dest):
    with pytest.raises(FetchTooLarge):
        fetch_to_temp_file(server.url("/no-length"), max_bytes=len(BODY) - 1, dest_dir=dest)

    assert list(dest.iterdir()) == []


def test_a_body_exactly_at_the_limit_is_fine(allow_loopback, server, dest):
    fetched = fetch_to_temp_file(server.url("/no-length"), max_bytes=len(BODY), dest_dir=dest)

    assert fetched.path.read_bytes() == BODY


@pytest.mark.parametrize("path", ["/trickle", "/stall"])
def test_a_slow_server_hits_the_total_time_limit(path, allow_loopback, server, dest):
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as caught:
        fetch_to_temp_file(server.url(path), timeout=1.0, dest_dir=dest)

    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.5
    assert caught.value.status_code == 504
    assert "longer than 1 seconds" in caught.value.message
    assert list(dest.iterdir()) == []


def test_the_time_limit_comes_from_settings(allow_loopback, server, dest, settings):
    settings.CLIP_FETCH_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch_to_temp_file(server.url("/trickle"), dest_dir=dest)

    assert time.monotonic() - started < 1.5


# --- What the remote server answers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "error", "status", "words"),
    [
        ("/gone", UrlUnavailable, 400, "404"),
        ("/broken", FetchError, 502, "500"),
        ("/page", UrlUnavailable, 400, "text/html"),
    ],
)
def test_answers_that_are_not_a_file_are_refused(path, error, status, words, allow_loopback, server, dest):
    with pytest.raises(error) as caught:
        fetch_to_temp_file(server.url(path), dest_dir=dest)

    assert caught.value.status_code == status
    assert words in caught.value.message
    assert list(dest.iterdir()) == []


def test_nothing_listening_is_a_clear_502(allow_loopback, dest):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with pytest.raises(FetchError) as caught:
        fetch_to_temp_file(f"http://127.0.0.1:{free_port}/clip.mp4", dest_dir=dest)

    assert caught.value.status_code == 502
    assert "Could not connect to 127.0.0.1" in caught.value.message


# --- HTTPS: connect to the checked address, verify the certificate against the name ----------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A throwaway CA and a certificate for the name `localhost` only, signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    make_tls_files(folder, dns_names=["localhost"])
    return folder


@pytest.fixture
def tls_server(tls_files):
    server_names: list = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    with servers.serve({"/clip.mp4": servers.file_route(BODY)}, tls=context, url_host="localhost") as running:
        running.server_names = server_names
        yield running


@pytest.fixture
def trust_test_ca(tls_files):
    return ssl.create_default_context(cafile=str(tls_files / "ca.pem"))


def test_https_keeps_the_host_name_for_sni_and_host(tls_server, trust_test_ca, settings, dest, sockets):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]  # `localhost` may resolve to both
    port = int(tls_server.base_url.rsplit(":", 1)[1])

    fetched = fetch_to_temp_file(tls_server.url("/clip.mp4"), dest_dir=dest, ssl_context=trust_test_ca)

    assert fetched.path.read_bytes() == BODY
    assert tls_server.server_names == ["localhost"]
    assert tls_server.requests[0].headers["Host"] == f"localhost:{port}"
    assert ("127.0.0.1", port) in sockets.connects
    assert "localhost" not in {address[0] for address in sockets.connects}  # always an address, never a name


def test_https_certificate_is_checked_against_the_name_in_the_link(tls_server, trust_test_ca, settings, dest):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    port = int(tls_server.base_url.rsplit(":", 1)[1])

    with pytest.raises(FetchError, match="secure connection to 127.0.0.1 failed"):
        fetch_to_temp_file(f"https://127.0.0.1:{port}/clip.mp4", dest_dir=dest, ssl_context=trust_test_ca)

    assert tls_server.requests == []
    assert list(dest.iterdir()) == []


def test_https_certificates_are_verified_by_default(tls_server, settings, dest):
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]

    with pytest.raises(FetchError, match="secure connection"):
        fetch_to_temp_file(tls_server.url("/clip.mp4"), dest_dir=dest)  # the test CA is not trusted

    assert tls_server.requests == []
