"""The pose model runs only where it can tell something (extraction.POSE_MAX_FACE_HEIGHT): frames with no face,
or whose biggest face leaves room for a body. A close-up skips it and loses no flag it could have set."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from characters.clips import extraction
from characters.vision.faces import Detectors
from demo.clips import photo

pytestmark = pytest.mark.slow  # MediaPipe


class CountingPose:
    def __init__(self, pose) -> None:
        self.pose, self.calls = pose, 0

    def process(self, rgb):
        self.calls += 1
        return self.pose.process(rgb)


@pytest.fixture(scope="module")
def models():
    models = Detectors()
    yield models
    models.close()


def _close_up() -> np.ndarray:
    """The astronaut's head and shoulders filling a 16:9 frame: her face about 0.4 of its height."""
    return cv2.resize(photo("astronaut")[20:308, 0:512], (1280, 720), interpolation=cv2.INTER_AREA)


def _wide() -> np.ndarray:
    """The same photo small on a grey set: her face well under POSE_MAX_FACE_HEIGHT."""
    frame = np.full((720, 1280, 3), 120, np.uint8)
    frame[360:616, 512:768] = cv2.resize(photo("astronaut"), (256, 256), interpolation=cv2.INTER_AREA)
    return frame


def _analyse(models, frame):
    counting = CountingPose(models.pose)
    real, models.pose = models.pose, counting
    try:
        return extraction.analyse_frame(models, frame, 1.0), counting.calls
    finally:
        models.pose = real


def test_a_close_up_skips_the_pose_model_and_keeps_its_flags(models, monkeypatch):
    analysis, calls = _analyse(models, _close_up())
    face = analysis.score.detections[0]
    assert face["box_relative"]["height"] > extraction.POSE_MAX_FACE_HEIGHT and calls == 0
    # What the pose model would have said, run anyway: no whole body, not occluded; the same flags.
    monkeypatch.setattr(extraction, "POSE_MAX_FACE_HEIGHT", 1.0)
    with_pose, calls = _analyse(models, _close_up())
    assert calls == 1
    assert (with_pose.score.full_body, with_pose.score.occluded) == (analysis.score.full_body, analysis.score.occluded)
    assert with_pose.score.quality == analysis.score.quality


def test_a_small_face_and_a_frame_without_one_run_it(models):
    analysis, calls = _analyse(models, _wide())
    assert analysis is not None and calls == 1
    assert analysis.score.detections[0]["box_relative"]["height"] <= extraction.POSE_MAX_FACE_HEIGHT
    nobody, calls = _analyse(models, np.full((720, 1280, 3), 90, np.uint8))
    assert nobody is None and calls == 1  # the pose model may still see a head the detector missed
