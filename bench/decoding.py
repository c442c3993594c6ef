"""The benches' common baseline: decode only, OpenCV reading every frame of a clip and doing nothing with it
(the floor for any in-process tool). Extraction, identity and shot-cut figures are ratios to it."""

from __future__ import annotations

from pathlib import Path

import cv2


def decode_only(path: Path) -> int:
    """Read every frame (decoded and converted to BGR, as `VideoCapture.read` gives them); the frame count."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    return frames
