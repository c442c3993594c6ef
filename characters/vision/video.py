"""Reading video files: what a clip is (probe), a copy browsers play (transcode), and its frames (decode).

Probing and transcoding run the project's ffmpeg (common.ffmpeg: the static one `imageio-ffmpeg` ships,
with libx264); frame decoding stays with OpenCV, whose wheel carries its own FFmpeg.

What a clip is comes from reading it, not from its header: the duration is measured by reading the
video stream's packets to the end (stopping a second past the limit, so a long file costs little) and
one picture is decoded to prove the stream is readable. A header that lies about the duration, or says
nothing, changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
from django.conf import settings

from common.ffmpeg import FfmpegMissing, ffmpeg_binary
from common.upload_size import exceeds_clip_size, too_large_message

# Container signatures, only to name the container and to word the message for a damaged file: ISO base
# media (MP4/MOV) have `ftyp` (or, for old QuickTime, `moov`/`mdat`/`wide`/`free`) at offset 4;
# Matroska/WebM starts with the EBML magic; AVI is a RIFF file of form `AVI `.
_ISO_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_QUICKTIME_BRANDS = {b"qt  "}

# The demuxers ffmpeg may use on an upload: containers of one file. Image demuxers (a photo is no clip),
# playlists and concat lists (they open other files or URLs) and the text renderer are left out. A few
# audio formats are in so that a sound file is told "no video stream" rather than "not a video".
_DEMUXERS = (
    "mov",
    "matroska",
    "avi",
    "mpeg",
    "mpegts",
    "mpegvideo",
    "m4v",
    "h264",
    "hevc",
    "flv",
    "asf",
    "ogg",
    "mxf",
    "gif",
    "dv",
    "ivf",
    "nut",
    "rm",
    "yuv4mpegpipe",
    "obu",
    "mp3",
    "wav",
    "aac",
    "flac",
    "w64",
)
# Input options for every run on a user's file: only those demuxers, only the local file.
_INPUT_GUARDS = ("-format_whitelist", ",".join(_DEMUXERS), "-protocol_whitelist", "file")
# ffmpeg's short demuxer name -> the container we record (and the stored original's extension).
_CONTAINER_NAMES = {"mpegts": "ts", "asf": "wmv", "mpeg": "mpg", "mpegvideo": "mpg", "yuv4mpegpipe": "y4m"}
PROBE_TIMEOUT_SECONDS = 120
ACCEPTED_FORMATS_TEXT = "MP4, MOV, WebM, MKV or AVI"


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
    pix_fmt: str = ""

    @property
    def browser_playable(self) -> bool:
        """H.264 in 4:2:0 8-bit inside MP4: what every browser and the generation providers take as it is."""
        return self.container == "mp4" and self.codec == "h264" and self.pix_fmt == "yuv420p"


def sniff_container(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head[:4] == _EBML_MAGIC:
        return "webm" if b"webm" in head else "mkv"
    if len(head) >= 12 and head[4:8] in _ISO_BOX_TYPES:
        if head[4:8] == b"ftyp" and head[8:12] in _QUICKTIME_BRANDS:
            return "mov"
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def open_capture(path: Path | str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise InvalidVideo(
            "The file could not be read as a video (its container is damaged or incomplete). "
            "Export it again as MP4 (H.264), MOV or WebM and upload the new file."
        )
    return cap


# --- Probing with ffmpeg ----------------------------------------------------------------------------------


def _ffmpeg() -> str:
    try:
        return ffmpeg_binary()
    except FfmpegMissing as exc:
        raise RuntimeError(f"Clips cannot be checked: {exc}") from None


def _run(args: list[str]) -> tuple[dict[str, str], str]:
    """Run ffmpeg with `-progress` on stdout; return its last progress values and its log."""
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    values: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values, proc.stderr.decode("utf-8", "replace")


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's stream description at commas outside parentheses: `yuv420p(tv, bt709)` stays whole."""
    current: list[str]
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


_MAPPED_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S* -> #0:0", re.M)
_INPUT_FORMAT = re.compile(r"^Input #0, (.+?), from ", re.M)
_HEADER_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.M)


@dataclass(frozen=True)
class _Stream:
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotated: bool = False


def _parse_stream(log: str, index: int) -> _Stream:
    """The description ffmpeg logs for input stream `index` (the video stream it mapped)."""
    lines = log.splitlines()
    header = re.compile(rf"^\s*Stream #0:{index}\b\S*: Video: (.*)$")
    for i, line in enumerate(lines):
        found = header.match(line)
        if not found:
            continue
        parts = _split_top_level(found.group(1))
        codec = parts[0].split()[0] if parts and parts[0] else ""
        pix_fmt = ""
        if len(parts) > 1 and not re.match(r"^\d+x\d+", parts[1]):
            pix_fmt = re.split(r"[(\s]", parts[1], maxsplit=1)[0]
        width = height = 0
        fps = tbr = 0.0
        for part in parts[1:]:
            size = re.match(r"^(\d+)x(\d+)", part)
            if size and not width:
                width, height = int(size.group(1)), int(size.group(2))
            rate = re.match(r"^([\d.]+)(k?) (fps|tbr)\b", part)
            if rate:
                value = float(rate.group(1)) * (1000 if rate.group(2) else 1)
                if rate.group(3) == "fps":
                    fps = value
                else:
                    tbr = value
        rotated = False
        for following in lines[i + 1 :]:  # side data of this stream, until the next stream or section
            if re.match(r"^\s*(Stream #|Stream mapping|Output|Press)", following):
                break
            turn = re.search(r"rotation of (-?[\d.]+) degrees", following)
            if turn:
                rotated = round(abs(float(turn.group(1)))) % 180 == 90
        return _Stream(codec, pix_fmt, width, height, fps or tbr, rotated)
    return _Stream()


def _container_name(path: Path, log: str) -> str:
    sniffed = sniff_container(path)
    if sniffed:
        return sniffed
    found = _INPUT_FORMAT.search(log)
    first = found.group(1).split(",")[0] if found else "unknown"
    return _CONTAINER_NAMES.get(first, first)[:16]


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, int(value or "") / 1_000_000)
    except ValueError:
        return 0.0


def _header_duration(log: str) -> float | None:
    found = _HEADER_DURATION.search(log)
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _refuse_unreadable(path: Path) -> InvalidVideo:
    if sniff_container(path):
        return InvalidVideo(
            "The file could not be read as a video (its container is damaged or incomplete). "
            f"Export it again as {ACCEPTED_FORMATS_TEXT} and upload the new file."
        )
    return InvalidVideo(
        f"This file is not a video we can read. Upload a video file ({ACCEPTED_FORMATS_TEXT}, or another "
        "format with a video stream); if it is a video, export it again as MP4."
    )


def _refuse_damaged() -> InvalidVideo:
    return InvalidVideo(
        "This video is damaged: no picture could be decoded from it. Export it again (MP4 with H.264 "
        "plays everywhere) and upload the new file."
    )


def probe_video(path: Path | str, *, size_bytes: int | None = None) -> VideoInfo:
    """Check that `path` is a clip within the limits in settings; raise InvalidVideo if not."""
    path = Path(path)
    size = path.stat().st_size if size_bytes is None else size_bytes
    if size == 0:
        raise InvalidVideo("The file is empty (0 bytes). Choose the video file itself and upload it again.")
    if exceeds_clip_size(size):
        raise InvalidVideo(too_large_message())
    limit = float(settings.CLIP_MAX_SECONDS)
    source = f"file:{path.resolve()}"
    # 1. Open it, pick the first real video stream (`V`: no cover art) and read its packets, without
    #    decoding them, up to a second past the limit: what the file holds, not what its header says.
    scan, log = _run(
        [
            *_INPUT_GUARDS,
            "-i",
            source,
            "-map",
            "0:V:0",
            "-c",
            "copy",
            "-t",
            f"{limit + 1:.3f}",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ]
    )
    if not _INPUT_FORMAT.search(log):
        raise _refuse_unreadable(path)
    mapped = _MAPPED_STREAM.search(log)
    if "matches no streams" in log or not mapped:
        raise InvalidVideo(
            "This file has no video stream (only sound or other data), so there are no pictures to take "
            "characters from. Upload the video itself, with its picture."
        )
    stream = _parse_stream(log, int(mapped.group(1)))
    frame_text = scan.get("frame", "")
    frame_count = int(frame_text) if frame_text.isdigit() else 0
    measured = _seconds(scan.get("out_time_us"))
    fps = stream.fps if 0 < stream.fps <= 240 else 0.0
    if not fps and measured > 0 and frame_count > 1:
        fps = frame_count / measured
    if frame_count == 0:
        raise _refuse_damaged()
    if not fps or fps > 240:
        raise InvalidVideo("The video does not say its frame rate. Export it again as MP4 (H.264) and retry.")
    # Demuxers report the last packet's start or its end; the frame count over the nominal rate covers
    # the first kind.
    duration = max(measured, frame_count / fps)
    if duration > limit + 1e-6:
        # The scan stopped a second past the limit; the header's figure, when it admits to more, is shown.
        claimed = _header_duration(log)
        lasts = f"{claimed:.3g} s" if claimed and claimed > limit else f"more than {limit:g} s"
        raise InvalidVideo(
            f"Too long: the clip lasts {lasts}, the limit is {limit:g} s. "
            f"Trim it to at most {limit:g} s and upload it again."
        )
    width, height = (stream.height, stream.width) if stream.rotated else (stream.width, stream.height)
    long_side, short_side = max(width, height), min(width, height)
    max_long = max(settings.CLIP_MAX_WIDTH, settings.CLIP_MAX_HEIGHT)
    max_short = min(settings.CLIP_MAX_WIDTH, settings.CLIP_MAX_HEIGHT)
    if long_side > max_long or short_side > max_short:
        raise InvalidVideo(
            f"The clip is {width}x{height}; the largest accepted size is {max_long}x{max_short} (4K). "
            "Scale it down and upload it again."
        )
    # 2. Decode one picture: packets alone do not prove the codec's data is readable.
    decoded, _ = _run(
        [
            *_INPUT_GUARDS,
            "-i",
            source,
            "-map",
            "0:V:0",
            "-frames:v",
            "1",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ]
    )
    if decoded.get("frame", "0") in ("", "0"):
        raise _refuse_damaged()
    return VideoInfo(
        container=_container_name(path, log),
        codec=stream.codec or "unknown",
        fps=round(fps, 3),
        frame_count=frame_count,
        duration_seconds=round(duration, 3),
        width=width,
        height=height,
        pix_fmt=stream.pix_fmt,
    )


# --- The copy browsers play ------------------------------------------------------------------------------


def transcode_to_playable(
    src: Path | str, dest: Path | str, *, duration_seconds: float, progress: Callable[[float], None] | None = None
) -> Path:
    """Encode `src` as H.264/yuv420p (+ AAC sound if it has any) in a faststart MP4 at `dest`.

    `progress` gets the fraction done (0-1) as ffmpeg reports it. Raises InvalidVideo if ffmpeg fails.
    """
    dest = Path(dest)
    cmd = [
        _ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        *_INPUT_GUARDS,
        "-i",
        f"file:{Path(src).resolve()}",
        "-map",
        "0:V:0",
        "-map",
        "0:a:0?",
        # x264 4:2:0 needs even sides.
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-f",
        "mp4",
        str(dest),
    ]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
                if key == "out_time_us" and progress and duration_seconds > 0:
                    progress(min(1.0, _seconds(value) / duration_seconds))
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if returncode != 0:
            errors.seek(0)
            detail = errors.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            dest.unlink(missing_ok=True)
            raise InvalidVideo(f"The clip could not be converted to a playable MP4 (ffmpeg: {detail[0]}).")
    return dest


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
