"""The frame extraction pipeline: decode -> detect -> score -> select.

Pure image work with no database access, so the Celery task, the `extract_frames` command and
the benchmark all run exactly this code. (Being written; the contract below is fixed.)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class FrameCandidate:
    seconds: float
    image: np.ndarray  # BGR, full resolution
    quality: int  # 0-100
    sharpness_score: float  # each component 0-1
    lighting_score: float
    face_score: float
    composition_score: float
    dominant: bool
    pose: str  # frontal | left | right
    full_body: bool
    occluded: bool
    detections: list[dict] = field(default_factory=list)


@dataclass
class ExtractionResult:
    frames: list[FrameCandidate]  # best first, at most top_n
    frames_analysed: int
    last_frame: np.ndarray | None
    last_frame_seconds: float | None
    warning: str = ""


ProgressCallback = Callable[[int], None]


def extract_candidates(
    path: Path | str, *, fps: float = 1.0, top_n: int = 10, progress: ProgressCallback | None = None
) -> ExtractionResult:
    raise NotImplementedError
