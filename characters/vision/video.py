"""Reading video files: what a clip is (probe) and which frames it holds (decode).

OpenCV's wheel carries its own FFmpeg build, so nothing here needs a system ffmpeg.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
from django.conf import settings

# Container signatures: ISO base media (MP4/MOV) have `ftyp` (or, for old QuickTime, `moov`/`mdat`/
# `wide`/`free`) at offset 4; Matroska/WebM starts with the EBML magic.
_ISO_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
ALLOWED_CONTAINERS = ("mp4", "mov", "webm")
_QUICKTIME_BRANDS = {b"qt  "}


class InvalidVideo(Exception):
    """The file is not a clip we can take; the message says why and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    fps: float
    frame_count: int
    duration_seconds: float
    width: int
    height: int


def sniff_container(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == _EBML_MAGIC:
        return "webm"
    if len(head) >= 12 and head[4:8] in _ISO_BOX_TYPES:
        if head[4:8] == b"ftyp" and head[8:12] in _QUICKTIME_BRANDS:
            return "mov"
        return "mp4"
    return None


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ").lower() or "unknown"


def open_capture(path: Path | str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise InvalidVideo(
            "The file could not be read as a video (its container is damaged or incomplete). "
            "Export it again as MP4 (H.264), MOV or WebM and upload the new file."
        )
    return cap


def probe_video(path: Path | str, *, size_bytes: int | None = None) -> VideoInfo:
    """Check that `path` is a clip within the limits in settings; raise InvalidVideo if not."""
    path = Path(path)
    size = path.stat().st_size if size_bytes is None else size_bytes
    if size == 0:
        raise InvalidVideo("The file is empty (0 bytes). Choose the video file itself and upload it again.")
    if size > settings.CLIP_MAX_BYTES:
        raise InvalidVideo(
            f"The file is {size / 1_048_576:.0f} MB; clips may be at most "
            f"{settings.CLIP_MAX_BYTES / 1_048_576:.0f} MB. Trim or compress it and try again."
        )
    container = sniff_container(path)
    if container is None:
        raise InvalidVideo(
            "This file is not a video: only MP4, MOV and WebM clips are accepted. "
            "If it is a video, export it again in one of those formats."
        )
    cap = open_capture(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        codec = _fourcc(cap)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise InvalidVideo(
            "No picture could be decoded from this video. The file may be damaged or use a codec we "
            "cannot read; export it again as MP4 (H.264) and retry."
        )
    if not fps or fps > 240:
        raise InvalidVideo("The video does not say its frame rate. Export it again as MP4 (H.264) and retry.")
    duration = frame_count / fps if frame_count > 0 else 0.0
    if duration > settings.CLIP_MAX_SECONDS:
        raise InvalidVideo(
            f"The clip lasts {duration:.1f} s; clips may be at most {settings.CLIP_MAX_SECONDS:.0f} s. "
            "Trim it and upload it again."
        )
    long_side, short_side = max(width, height), min(width, height)
    max_long = max(settings.CLIP_MAX_WIDTH, settings.CLIP_MAX_HEIGHT)
    max_short = min(settings.CLIP_MAX_WIDTH, settings.CLIP_MAX_HEIGHT)
    if long_side > max_long or short_side > max_short:
        raise InvalidVideo(
            f"The clip is {width}x{height}; the largest accepted size is {max_long}x{max_short} (4K). "
            "Scale it down and upload it again."
        )
    return VideoInfo(container, codec, fps, frame_count, duration, width, height)


# --- A local file to decode ---------------------------------------------------------------------------

# Remote storages (S3): videos being scrubbed are kept locally, so each preview does not download them again.
REMOTE_VIDEO_CACHE_DIR = Path(tempfile.gettempdir()) / "cps-pin-clips"
REMOTE_VIDEO_CACHE_FILES = 4


def local_video_copy(video) -> tuple[Path, bool]:
    """A local path to a stored video (a FieldFile) and whether it is a temporary copy to delete afterwards.

    Local storage gives its own path; other storages (S3) are downloaded to a temp file.
    """
    try:
        return Path(video.path), False
    except NotImplementedError:
        suffix = Path(video.name).suffix
        tmp = tempfile.NamedTemporaryFile(prefix="clip-", suffix=suffix, delete=False)
        with video.open("rb") as src, tmp:
            shutil.copyfileobj(src, tmp, 1 << 20)
        return Path(tmp.name), True


def cached_local_video(video) -> Path:
    """A local file with a stored video, for repeated decoding (the pin panel's previews). Local storage gives
    its own path; a remote video is downloaded once into a small cache (stored videos are never rewritten: a
    new upload gets a new name)."""
    try:
        return Path(video.path)
    except NotImplementedError:
        pass
    storage = video.storage
    key = f"{type(storage).__name__}:{getattr(storage, 'bucket_name', '')}:{video.name}"
    REMOTE_VIDEO_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = REMOTE_VIDEO_CACHE_DIR / (hashlib.sha256(key.encode()).hexdigest()[:32] + Path(video.name).suffix)
    if cached.exists():
        os.utime(cached)
        return cached
    downloaded, _ = local_video_copy(video)
    os.replace(downloaded, cached)  # atomic: a concurrent reader sees the whole file or none
    for stale in sorted(REMOTE_VIDEO_CACHE_DIR.iterdir(), key=lambda p: p.stat().st_mtime)[:-REMOTE_VIDEO_CACHE_FILES]:
        stale.unlink(missing_ok=True)
    return cached
