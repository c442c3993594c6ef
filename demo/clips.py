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
    return write_clip(
        path,
        [
            Segment("astronaut", 2, 1.2, 1.35, (0.46, 0.28)),
            Segment("astronaut", 2, 1.8, 1.9, (0.45, 0.33), defect="blur"),
            Segment("astronaut", 2, 1.9, 2.0, (0.45, 0.33), defect="dark"),
            Segment("astronaut", 2, 2.4, 2.4, (0.55, 0.33), drift_x=0.2),
            Segment("coffee", 2, 1.0, 1.1, (0.5, 0.5)),
        ],
        size=size,
        fps=fps,
    )


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
    data[at + 3 : at + 11] = struct.pack(">d", claimed_seconds * 1000)
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def webm_without_duration(src: Path, dest: Path) -> Path:
    """A copy of the WebM `src` with no duration in its header (as live recorders write): the Duration
    element becomes an EBML Void element of the same size."""
    data = bytearray(Path(src).read_bytes())
    at = _matroska_duration_element(data)
    data[at : at + 11] = b"\xec\x89" + bytes(9)
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


# Who is who: two people (the astronaut, the cameraman) cut into shots across clips.
def astronaut_cut_to_cameraman(path, *, size=(960, 540), fps=24) -> Path:
    """0-3 s the astronaut / 3-5 s the coffee cup (no one) / 5-8 s the cameraman: two cuts."""
    return write_clip(
        path,
        [
            Segment("astronaut", 3, 1.4, 1.7, (0.45, 0.33)),
            Segment("coffee", 2, 1.0, 1.1, (0.5, 0.5)),
            Segment("camera", 3, 1.2, 1.45, (0.45, 0.35)),
        ],
        size=size,
        fps=fps,
    )


def cameraman_cut_to_astronaut(path, *, size=(960, 540), fps=24) -> Path:
    """0-3 s the cameraman, wider / 3-6 s the astronaut, closer and off-centre: one cut, other framings."""
    return write_clip(
        path,
        [
            Segment("camera", 3, 1.0, 1.2, (0.5, 0.4)),
            Segment("astronaut", 3, 2.0, 2.3, (0.5, 0.3), drift_x=-0.03),
        ],
        size=size,
        fps=fps,
    )


def person_switches_halfway(path, *, size=(960, 540), fps=24, seconds=6.0) -> Path:
    """The astronaut for the first half, the cameraman for the second (a generated clip gone wrong)."""
    return write_clip(
        path,
        [
            Segment("astronaut", seconds / 2, 1.4, 1.6, (0.45, 0.33)),
            Segment("camera", seconds / 2, 1.2, 1.4, (0.45, 0.35)),
        ],
        size=size,
        fps=fps,
    )


# --- A character that is not a person (marks: characters.vision.marking) -----------------------------


def robot_sprite(*, colour: tuple[int, int, int] = (40, 140, 230), seed: int = 7, side: int = 200):
    """A cartoon robot-rabbit (BGR image and its mask): a body, a head with ears and eyes, a painted chest
    panel of random marks (texture for keypoints), no face a face detector would take."""
    rng = np.random.default_rng(seed)
    h, w = int(side * 1.5), side
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    body = (int(w * 0.1), int(h * 0.42), int(w * 0.9), int(h * 0.98))
    head = (int(w * 0.2), int(h * 0.16), int(w * 0.8), int(h * 0.44))
    layers: list[tuple[np.ndarray, tuple[int, ...]]] = [(img, colour), (mask, (255,))]
    for shape_img, value in layers:
        cv2.rectangle(shape_img, body[:2], body[2:], value, -1)
        cv2.rectangle(shape_img, head[:2], head[2:], value, -1)
        for ex in (0.3, 0.62):  # the ears
            cv2.ellipse(
                shape_img, (int(w * (ex + 0.04)), int(h * 0.09)), (int(w * 0.07), int(h * 0.09)), 0, 0, 360, value, -1
            )
    cv2.rectangle(img, (int(w * 0.3), int(h * 0.24)), (int(w * 0.42), int(h * 0.3)), (20, 230, 250), -1)  # eyes: slots
    cv2.rectangle(img, (int(w * 0.58), int(h * 0.24)), (int(w * 0.7), int(h * 0.3)), (20, 230, 250), -1)
    x0, y0, x1, y1 = int(w * 0.18), int(h * 0.48), int(w * 0.82), int(h * 0.92)
    for _ in range(60):  # the chest panel
        x, y = int(rng.integers(x0, x1 - 8)), int(rng.integers(y0, y1 - 8))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(5, 22)), y + int(rng.integers(5, 22))), col, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(3, 11)), col, -1)
    img[mask == 0] = 0
    return img, mask


def _paste(frame: np.ndarray, sprite: np.ndarray, mask: np.ndarray, x: int, y: int, scale: float) -> dict:
    """Draw the sprite with its top-left at (x, y); returns its box in the frame."""
    if scale != 1.0:
        sprite = cv2.resize(sprite, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    h, w = mask.shape
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if x1 > x0 and y1 > y0:
        region = frame[y0:y1, x0:x1]
        m = mask[y0 - y : y1 - y, x0 - x : x1 - x] > 0
        region[m] = sprite[y0 - y : y1 - y, x0 - x : x1 - x][m]
    return {"x": x, "y": y, "width": w, "height": h}


@dataclass(frozen=True)
class RobotShot:
    background: str  # a scikit-image photo: the set
    seconds: float
    robot: bool = True
    start: tuple[float, float] = (0.1, 0.2)  # the robot's top-left, relative to the frame
    end: tuple[float, float] = (0.5, 0.25)
    scale_from: float = 1.0
    scale_to: float = 1.0
    colour: tuple[int, int, int] = (40, 140, 230)
    seed: int = 7  # the chest panel's pattern
    zoom: tuple[float, float] = (1.0, 1.1)  # the camera on the set


def robot_clip(path, shots: Iterable[RobotShot], *, size=(960, 540), fps=24) -> tuple[Path, list[tuple[float, dict]]]:
    """A clip of RobotShots; returns its path and the robot's true box per frame (seconds, box)."""
    truth: list[tuple[float, dict]] = []
    shots = list(shots)

    def frames():
        index = 0
        for shot in shots:
            set_photo = photo(shot.background)
            sprite, mask = robot_sprite(colour=shot.colour, seed=shot.seed, side=round(size[1] * 0.3))
            n = max(1, round(shot.seconds * fps))
            for i in range(n):
                t = i / max(1, n - 1)
                zoom = shot.zoom[0] + (shot.zoom[1] - shot.zoom[0]) * t
                frame = pan_zoom_window(set_photo, size, zoom, (0.5, 0.5))
                if shot.robot:
                    x = shot.start[0] + (shot.end[0] - shot.start[0]) * t
                    y = shot.start[1] + (shot.end[1] - shot.start[1]) * t
                    scale = shot.scale_from + (shot.scale_to - shot.scale_from) * t
                    box = _paste(frame, sprite, mask, round(x * size[0]), round(y * size[1]), scale)
                    truth.append((index / fps, box))
                index += 1
                yield frame

    return write_mp4(path, frames(), size=size, fps=fps), truth


ROBOT_PAINT = "#E68C28"  # RobotShot's default colour (BGR 40, 140, 230) as #RRGGBB: the robot's body paint


def robot_still(
    background: str,
    x: float,
    y: float,
    scale: float = 1.0,
    *,
    colour: tuple[int, int, int] = (40, 140, 230),
    seed: int = 7,
    size=(960, 540),
    slack: float = 0.06,
) -> tuple[np.ndarray, dict, np.ndarray]:
    """One frame of a robot clip: the frame, the box a person would draw around the robot (its box grown by
    `slack` of its size on each side, as a hand-drawn box is), and the robot's true mask (bool)."""
    frame = pan_zoom_window(photo(background), size, 1.05, (0.5, 0.5))
    sprite, mask = robot_sprite(colour=colour, seed=seed, side=round(size[1] * 0.3))
    at = round(x * size[0]), round(y * size[1])
    box = _paste(frame, sprite, mask, *at, scale)
    truth = np.zeros_like(frame)
    _paste(truth, np.full_like(sprite, 255), mask, *at, scale)
    dx, dy = round(box["width"] * slack), round(box["height"] * slack)
    drawn = {"x": box["x"] - dx, "y": box["y"] - dy, "width": box["width"] + 2 * dx, "height": box["height"] + 2 * dy}
    return frame, drawn, truth[..., 0] > 0
