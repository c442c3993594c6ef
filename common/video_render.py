"""Render frames into a browser-playable video: pan/zoom windows over still images, encoded as MP4.

Used by the offline generation provider (a real clip from the reference images, no API key) and
by the test and demo clips. H.264 through the project's ffmpeg (common.ffmpeg: the one imageio-ffmpeg
ships, or FFMPEG_BINARY), which browsers play; OpenCV's own MPEG-4 writer only if there is none.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from common.ffmpeg import FfmpegMissing, ffmpeg_binary


def pan_zoom_window(img: np.ndarray, size: tuple[int, int], zoom: float, center: tuple[float, float]) -> np.ndarray:
    """The part of `img` a camera at `center` (relative) with `zoom` sees, as a `size` frame.

    zoom 1.0 is the largest window of the output's aspect that fits the image; areas outside the
    image come out black (a subject can leave the frame).
    """
    out_w, out_h = size
    ph, pw = img.shape[:2]
    aspect = out_w / out_h
    base_w = min(pw, ph * aspect)
    win_w = base_w / zoom
    win_h = win_w / aspect
    cx, cy = center[0] * pw, center[1] * ph
    x0 = cx - win_w / 2
    y0 = min(max(cy - win_h / 2, 0), ph - win_h)
    scale = out_w / win_w
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float32)
    return cv2.warpAffine(img, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def write_mp4(
    path: Path | str, frames: Iterable[np.ndarray], *, size: tuple[int, int], fps: int, faststart: bool = True
) -> Path:
    """Encode BGR frames of `size` into an MP4 at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ffmpeg = ffmpeg_binary()
    except FfmpegMissing:
        ffmpeg = None
    if ffmpeg:
        cmd = [
            ffmpeg,
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{size[0]}x{size[1]}",
            "-r",
            str(fps),
            "-i",
            "-",
            # Accurate colour conversion: scores compare colours measured on these clips with the photos.
            "-sws_flags",
            "accurate_rnd+full_chroma_int+full_chroma_inp",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-an",
        ]
        if faststart:
            cmd += ["-movflags", "+faststart"]
        proc = subprocess.Popen([*cmd, str(path)], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed writing {path}")
    else:
        # cv2 has VideoWriter_fourcc; its stubs only name VideoWriter.fourcc.
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)  # type: ignore[attr-defined]
        for frame in frames:
            writer.write(frame)
        writer.release()
    return path
