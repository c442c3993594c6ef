"""The local media view answers HTTP Range requests, so a browser can seek a <video>."""

import os

import pytest
from django.http import Http404
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from common import media
from common.media import serve_media

SIZE = 10_000
DATA = bytes(i % 251 for i in range(SIZE))  # no repeating 256-byte period, so offsets are checked

# Closing a response sends request_finished, which checks the database connections.
pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(tmp_path, settings):
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "clip.mp4").write_bytes(DATA)
    (root / "frames").mkdir()
    (root / "frames" / "frame.jpg").write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    (tmp_path / "secret.txt").write_text("outside the media root")
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def rf():
    return RequestFactory()


def get(rf, path, method="get", **headers):
    request = getattr(rf, method)(f"/media/{path}", headers=headers)
    return serve_media(request, path)


def body_of(response) -> bytes:
    try:
        if response.streaming:
            return b"".join(response.streaming_content)
        return response.content
    finally:
        response.close()


def test_whole_file_advertises_ranges_and_streams(rf, media_root):
    response = get(rf, "clips/clip.mp4")
    assert response.status_code == 200
    assert response.streaming  # never built in memory
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(SIZE)
    assert response["ETag"]
    assert body_of(response) == DATA


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-250", SIZE - 250, SIZE - 1),
        ("bytes=9990-20000", 9990, SIZE - 1),  # a last position past the end is clipped
        ("bytes=-20000", 0, SIZE - 1),  # a suffix longer than the file is the whole file
        ("bytes=5000-5000", 5000, 5000),
    ],
)
def test_single_range_gives_206_with_exact_bytes(rf, media_root, header, first, last):
    response = get(rf, "clips/clip.mp4", Range=header)
    assert response.status_code == 206
    assert response.streaming
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert body_of(response) == DATA[first : last + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
def test_unsatisfiable_range_gives_416(rf, media_root, header):
    response = get(rf, "clips/clip.mp4", Range=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["items=0-10", "bytes=0-10,20-30", "bytes=50-10", "bytes=-", "bytes=abc"])
def test_unusable_range_header_is_ignored(rf, media_root, header):
    response = get(rf, "clips/clip.mp4", Range=header)
    assert response.status_code == 200
    assert body_of(response) == DATA


def test_large_range_is_streamed_in_chunks(rf, media_root, monkeypatch):
    monkeypatch.setattr(media, "CHUNK_SIZE", 1000)
    response = get(rf, "clips/clip.mp4", Range="bytes=0-")
    chunks = list(response.streaming_content)
    response.close()
    assert len(chunks) == 10
    assert max(len(c) for c in chunks) == 1000
    assert b"".join(chunks) == DATA


def test_if_range_with_the_current_etag_gives_the_range_and_a_stale_one_the_whole_file(rf, media_root):
    etag = get(rf, "clips/clip.mp4")["ETag"]
    fresh = get(rf, "clips/clip.mp4", Range="bytes=0-9", **{"If-Range": etag})
    assert fresh.status_code == 206
    assert body_of(fresh) == DATA[:10]
    stale = get(rf, "clips/clip.mp4", Range="bytes=0-9", **{"If-Range": '"not-the-etag"'})
    assert stale.status_code == 200
    assert body_of(stale) == DATA


def test_if_none_match_gives_304(rf, media_root):
    etag = get(rf, "clips/clip.mp4")["ETag"]
    assert get(rf, "clips/clip.mp4", **{"If-None-Match": etag}).status_code == 304


def test_head_sends_headers_without_a_body(rf, media_root):
    whole = get(rf, "clips/clip.mp4", method="head")
    assert whole.status_code == 200
    assert whole["Content-Length"] == str(SIZE)
    assert body_of(whole) == b""
    part = get(rf, "clips/clip.mp4", method="head", Range="bytes=10-19")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-19/{SIZE}"
    assert body_of(part) == b""


def test_content_type_follows_the_file(rf, media_root):
    response = get(rf, "frames/frame.jpg")
    assert response["Content-Type"] == "image/jpeg"
    response.close()


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "clips/../../secret.txt",
        "/etc/passwd",
        "..\\secret.txt",
        "clips",
        "",
        "clips/missing.mp4",
        "clips/clip.mp4\x00.jpg",
    ],
)
def test_paths_outside_the_root_or_not_files_are_refused(rf, media_root, path):
    with pytest.raises(Http404):
        get(rf, path)


def test_a_symlink_leading_out_of_the_root_is_refused(rf, media_root):
    link = media_root / "frames" / "escape.txt"
    try:
        os.symlink(media_root.parent / "secret.txt", link)
    except OSError:
        pytest.skip("this filesystem has no symlinks")
    with pytest.raises(Http404):
        get(rf, "frames/escape.txt")


def test_writes_are_not_allowed(rf, media_root):
    request = rf.post("/media/clips/clip.mp4")
    assert serve_media(request, "clips/clip.mp4").status_code == 405


def test_routed_under_media_url_for_local_storage(client, media_root, settings):
    if settings.S3_BUCKET:
        pytest.skip("media is on S3 in this run; presigned URLs serve ranges there")
    match = resolve("/media/clips/clip.mp4")
    assert match.func is serve_media
    response = client.get("/media/clips/clip.mp4", HTTP_RANGE="bytes=1-3")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == DATA[1:4]
    encoded = client.get("/media/clips/..%2f..%2fsecret.txt")
    assert encoded.status_code == 404
    with pytest.raises(Resolver404):
        resolve("/mediax/clips/clip.mp4")
