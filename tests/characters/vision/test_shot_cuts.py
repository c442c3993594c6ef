"""The shot-cut rule (characters.vision.tracking): what starts a new shot between two samples.

Frames come straight from demo/clips.py's pan/zoom windows over scikit-image photos (no video file), one
sample a second apart as extraction takes them; bench/shots.py measures the rule on rendered clips.
"""

from __future__ import annotations

import numpy as np
import pytest

from characters.vision.tracking import CUT_DISTANCE, ShotTracker, frame_histogram, histogram_distance
from common.video_render import pan_zoom_window
from demo.clips import photo

SIZE = (480, 270)


def _shots(frames: list[np.ndarray]) -> list[int]:
    tracker = ShotTracker()
    shots = []
    for second, frame in enumerate(frames):
        tracker.observe(float(second), frame, [])
        shots.append(tracker.shot_index)
    tracker.close()
    return shots


def _pan(name: str, zoom: float, start_x: float, step: float, samples: int = 3) -> list[np.ndarray]:
    """A fast pan: the window moves `step` of the photo's width between samples."""
    img = photo(name)
    return [pan_zoom_window(img, SIZE, zoom, (start_x + step * i, 0.45)) for i in range(samples)]


@pytest.mark.parametrize(("first", "second"), [("camera", "moon"), ("moon", "coins"), ("clock", "camera")])
def test_a_cut_between_two_grey_shots_starts_a_shot(first, second):
    # Grey pictures put all their colour in one hue/saturation bin: only their brightness tells them apart.
    frames = _pan(first, 1.3, 0.45, 0.02, samples=2) + _pan(second, 1.3, 0.45, 0.02, samples=2)
    assert _shots(frames) == [0, 0, 1, 1]


def test_a_cut_between_two_colour_shots_starts_a_shot():
    frames = _pan("astronaut", 1.4, 0.45, 0.02, samples=2) + _pan("coffee", 1.0, 0.5, 0.02, samples=2)
    assert _shots(frames) == [0, 0, 1, 1]


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee"])
def test_a_fast_pan_over_one_photo_stays_one_shot(name):
    # bench/shots.py's fast pans: about a fifth of the frame between samples a second apart.
    assert _shots(_pan(name, 1.6, 0.3, 0.13, samples=4)) == [0, 0, 0, 0]


def test_a_dark_noisy_shot_stays_one_shot():
    rng = np.random.default_rng(3)
    dark = [
        np.clip(frame.astype(np.float32) * 0.3 + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
        for frame in _pan("astronaut", 1.9, 0.45, 0.02, samples=3)
    ]
    assert _shots(dark) == [0, 0, 0]


def test_brightness_is_in_the_histogram():
    # The same grey picture, one much brighter: a hue/saturation histogram alone would call them equal.
    grey = pan_zoom_window(photo("moon"), SIZE, 1.0, (0.5, 0.5))
    brighter = np.clip(grey.astype(np.int16) + 110, 0, 255).astype(np.uint8)
    assert histogram_distance(frame_histogram(grey), frame_histogram(brighter)) > CUT_DISTANCE
