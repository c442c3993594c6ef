"""Make short test and demo clips from public-domain photos that ship with scikit-image.

Each clip is a slow pan/zoom over a photo, with optional defects (blur, low light, the subject
leaving the frame, no person) in known seconds, like the labelled samples. H.264 through the
project's ffmpeg (common.ffmpeg), which browsers play. The same ffmpeg turns them into the other
formats and broken files the upload checks must tell apart.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.video_render import pan_zoom_window, write_mp4


@dataclass(frozen=True)
class Segment:
    photo: str  # astronaut | camera | coffee
    seconds: float
    zoom_from: float = 1.0  # 1.0 = the whole (aspect-cropped) photo; 2.0 = half of it
    zoom_to: float = 1.2
    center: tuple[float, float] = (0.5, 0.4)  # relative centre of the window in the photo
    drift_x: float = 0.0  # how far the centre moves across the segment (relative, + = right)
    defect: str = ""  # "" | blur | dark | motion_blur


def photo(name: str) -> np.ndarray:
    """The photo as BGR uint8."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)


def _apply_defect(frame: np.ndarray, defect: str, rng: np.random.Generator) -> np.ndarray:
    if defect == "blur":
        return cv2.GaussianBlur(frame, (0, 0), sigmaX=8 * frame.shape[0] / 720)
    if defect == "motion_blur":
        k = max(3, int(31 * frame.shape[1] / 720)) | 1
        return cv2.blur(frame, (k, 1))
    if defect == "dark":
        dark = (frame.astype(np.float32) / 255.0) ** 1.8 * 255 * 0.3
        noise = rng.normal(0, 6, frame.shape)
        return np.clip(dark + noise, 0, 255).astype(np.uint8)
    return frame


def render_frames(segments: Iterable[Segment], size: tuple[int, int], fps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    photos: dict[str, np.ndarray] = {}
    for seg in segments:
        img = photos.setdefault(seg.photo, photo(seg.photo))
        n = max(1, round(seg.seconds * fps))
        for i in range(n):
            t = i / max(1, n - 1)
            zoom = seg.zoom_from + (seg.zoom_to - seg.zoom_from) * t
            center = (seg.center[0] + seg.drift_x * t, seg.center[1])
            yield _apply_defect(pan_zoom_window(img, size, zoom, center), seg.defect, rng)


def write_clip(
    path: Path | str,
    segments: Iterable[Segment],
    *,
    size: tuple[int, int] = (1280, 720),
    fps: int = 30,
    faststart: bool = True,
) -> Path:
    """Render `segments` into an MP4 at `path` and return the path."""
    return write_mp4(path, render_frames(segments, size, fps), size=size, fps=fps, faststart=faststart)


# Ready-made clips with the same timelines as the labelled samples.
def good_frontal(path, *, size=(1280, 720), seconds=5.0, fps=30) -> Path:
    return write_clip(path, [Segment("astronaut", seconds, 1.4, 2.6, (0.45, 0.33))], size=size, fps=fps)


def mixed_defects(path, *, size=(1280, 720), fps=30) -> Path:
    """0-2 good / 2-4 blurred / 4-6 dark / 6-8 face leaves the frame / 8-10 no person (coffee)."""
    return write_clip(path, [
        Segment("astronaut", 2, 1.2, 1.35, (0.46, 0.28)),
        Segment("astronaut", 2, 1.8, 1.9, (0.45, 0.33), defect="blur"),
        Segment("astronaut", 2, 1.9, 2.0, (0.45, 0.33), defect="dark"),
        Segment("astronaut", 2, 2.4, 2.4, (0.55, 0.33), drift_x=0.2),
        Segment("coffee", 2, 1.0, 1.1, (0.5, 0.5)),
    ], size=size, fps=fps)


def profile(path, *, size=(1280, 720), seconds=5.0, fps=30) -> Path:
    """The cameraman photo: one person seen from the side."""
    return write_clip(path, [Segment("camera", seconds, 1.2, 1.6, (0.45, 0.35))], size=size, fps=fps)


def no_person(path, *, size=(640, 360), seconds=3.0, fps=24) -> Path:
    return write_clip(path, [Segment("coffee", seconds, 1.0, 1.2, (0.5, 0.5))], size=size, fps=fps)


def truncated_tail(src: Path, dest: Path, keep: float = 0.6) -> Path:
    """A faststart MP4 whose media data stops early: the header promises more frames than there are."""
    data = Path(src).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * keep)])
    return Path(dest)


def missing_header(dest: Path, *, seconds=3.0) -> Path:
    """An MP4 cut before its header (moov atom written last, then the file cut): unreadable."""
    tmp = Path(dest).with_suffix(".full.mp4")
    write_clip(tmp, [Segment("astronaut", seconds)], size=(640, 360), fps=24, faststart=False)
    data = tmp.read_bytes()
    tmp.unlink()
    Path(dest).write_bytes(data[: int(len(data) * 0.4)])
    return Path(dest)


# --- Other formats and broken files (the upload checks), made with the project's ffmpeg ------------------


def _ffmpeg(*args: str | Path) -> None:
    import subprocess

    from common.ffmpeg import ffmpeg_binary

    subprocess.run([ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def convert(src: Path, dest: Path, *codec_args: str) -> Path:
    """Re-encode `src` into `dest` (the container follows dest's extension) with `codec_args`, no sound."""
    _ffmpeg("-i", src, "-an", *codec_args, dest)
    return Path(dest)


def avi_mpeg4(src: Path, dest: Path) -> Path:
    """MPEG-4 Part 2 in AVI (what old cameras and DivX/Xvid tools write)."""
    return convert(src, dest, "-c:v", "mpeg4", "-q:v", "3")


def mkv_mjpeg(src: Path, dest: Path) -> Path:
    return convert(src, dest, "-c:v", "mjpeg", "-q:v", "4")


def mov_prores(src: Path, dest: Path) -> Path:
    """ProRes 422 Proxy in QuickTime (an editor's export); 10-bit 4:2:2, which no browser plays."""
    return convert(src, dest, "-c:v", "prores_ks", "-profile:v", "0")


def webm_vp8(src: Path, dest: Path) -> Path:
    return convert(src, dest, "-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8")


def audio_only(dest: Path, *, seconds: float = 2.0) -> Path:
    """An AAC sound file in an MP4 container (.m4a): a real file ffmpeg reads, with no video stream."""
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", dest)
    return Path(dest)


def damaged_payload(src: Path, dest: Path) -> Path:
    """An MP4 whose header is intact but whose media data is noise: it opens, no picture decodes."""
    data = bytearray(Path(src).read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = np.random.default_rng(7).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def _matroska_duration_element(data: bytes) -> int:
    """Offset of the Segment Info's Duration element (ID 0x4489, an 8-byte float) that ffmpeg writes."""
    at = data.find(b"\x44\x89\x88")
    if at < 0:
        raise ValueError("no 8-byte Duration element in this Matroska file")
    return at


def webm_claiming_duration(src: Path, dest: Path, *, claimed_seconds: float) -> Path:
    """A copy of the WebM `src` whose header says it lasts `claimed_seconds` (it holds what it holds)."""
    import struct

    data = bytearray(Path(src).read_bytes())
    at = _matroska_duration_element(data)
    # The value is in TimecodeScale units: ffmpeg writes 1 ms.
    data[at + 3:at + 11] = struct.pack(">d", claimed_seconds * 1000)
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def webm_without_duration(src: Path, dest: Path) -> Path:
    """A copy of the WebM `src` with no duration in its header (as live recorders write): the Duration
    element becomes an EBML Void element of the same size."""
    data = bytearray(Path(src).read_bytes())
    at = _matroska_duration_element(data)
    data[at:at + 11] = b"\xec\x89" + bytes(9)
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


# Who is who: two people (the astronaut, the cameraman) cut into shots across clips.
def astronaut_cut_to_cameraman(path, *, size=(960, 540), fps=24) -> Path:
    """0-3 s the astronaut / 3-5 s the coffee cup (no one) / 5-8 s the cameraman: two cuts."""
    return write_clip(path, [
        Segment("astronaut", 3, 1.4, 1.7, (0.45, 0.33)),
        Segment("coffee", 2, 1.0, 1.1, (0.5, 0.5)),
        Segment("camera", 3, 1.2, 1.45, (0.45, 0.35)),
    ], size=size, fps=fps)


def cameraman_cut_to_astronaut(path, *, size=(960, 540), fps=24) -> Path:
    """0-3 s the cameraman, wider / 3-6 s the astronaut, closer and off-centre: one cut, other framings."""
    return write_clip(path, [
        Segment("camera", 3, 1.0, 1.2, (0.5, 0.4)),
        Segment("astronaut", 3, 2.0, 2.3, (0.5, 0.3), drift_x=-0.03),
    ], size=size, fps=fps)


def person_switches_halfway(path, *, size=(960, 540), fps=24, seconds=6.0) -> Path:
    """The astronaut for the first half, the cameraman for the second (a generated clip gone wrong)."""
    return write_clip(path, [
        Segment("astronaut", seconds / 2, 1.4, 1.6, (0.45, 0.33)),
        Segment("camera", seconds / 2, 1.2, 1.4, (0.45, 0.35)),
    ], size=size, fps=fps)
