"""Serve local MEDIA_ROOT files with HTTP Range support.

Django's own `static.serve` always answers 200 with the whole file, and a browser cannot seek a
<video> whose server ignores `Range`. This view answers single byte ranges with 206 Partial
Content (RFC 9110 §14), streams from disk in chunks, and refuses paths outside MEDIA_ROOT.
On S3 the presigned URLs already honour Range, so this view is only routed for local media.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe

CHUNK_SIZE = 256 * 1024
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

# Not every system's mime.types knows the video containers we accept.
mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("video/quicktime", ".mov")
mimetypes.add_type("video/webm", ".webm")


class RangeNotSatisfiable(Exception):
    pass


def resolve_media_path(root: Path, path: str) -> Path:
    """The file under `root` that `path` names; Http404 for anything outside it or not a regular file."""
    normalized = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if normalized in ("", ".") or normalized.startswith("..") or "\x00" in normalized:
        raise Http404("No such file.")
    root = root.resolve()
    candidate = (root / normalized).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise Http404("No such file.")
    return candidate


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive, for a single `bytes=` range.

    None means "ignore the header and send the whole file" (absent, malformed, or several ranges,
    which a server may answer in full). RangeNotSatisfiable means 416.
    """
    match = _SINGLE_RANGE.match(header.strip()) if header else None
    if not match:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # bytes=-n: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored, as RFC 9110 says
    if first >= size:
        raise RangeNotSatisfiable
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _read_range(path: Path, first: int, length: int):
    with open(path, "rb") as fh:
        fh.seek(first)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def _validator(stat) -> tuple[str, str]:
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    return etag, http_date(stat.st_mtime)


def _if_range_matches(if_range: str, etag: str, last_modified_ts: int) -> bool:
    if not if_range:
        return True
    if if_range.startswith(('"', "W/")):
        return if_range == etag  # strong comparison; weak tags never match
    since = parse_http_date_safe(if_range)
    return since is not None and since >= last_modified_ts


@require_safe
def serve_media(request, path: str):
    full_path = resolve_media_path(Path(settings.MEDIA_ROOT), path)
    stat = full_path.stat()
    size = stat.st_size
    etag, last_modified = _validator(stat)
    content_type, encoding = mimetypes.guess_type(full_path.name)
    if encoding or not content_type:
        # A compressed file is sent as the bytes it is, never as a transparently decoded body.
        content_type = "application/octet-stream"

    if request.headers.get("If-None-Match") == etag:
        response: HttpResponseBase = HttpResponseNotModified()
        response["ETag"] = etag
        return response

    byte_range = None
    if _if_range_matches(request.headers.get("If-Range", ""), etag, int(stat.st_mtime)):
        try:
            byte_range = parse_range(request.headers.get("Range", ""), size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response

    if byte_range is None:
        if request.method == "HEAD":
            response = HttpResponse(content_type=content_type)
            response["Content-Length"] = str(size)
        else:
            # FileResponse streams the file (and lets the server use sendfile when it can).
            response = FileResponse(open(full_path, "rb"), content_type=content_type)  # noqa: SIM115
    else:
        first, last = byte_range
        length = last - first + 1
        body = () if request.method == "HEAD" else _read_range(full_path, first, length)
        response = StreamingHttpResponse(body, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(length)

    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = last_modified
    return response
