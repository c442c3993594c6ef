"""The shot-cut rule (characters.vision.tracking): what starts a new shot between two samples.

Frames come straight from demo/clips.py's pan/zoom windows over scikit-image photos (no video file), one
sample a second apart as extraction takes them; bench/shots.py measures the rule on rendered clips.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from characters.vision.decode import END_OF_CLIP, SampledDecoder
from characters.vision.tracking import (
    CUT_DISTANCE,
    KEYFRAME_CUT_DISTANCE,
    ShotTracker,
    frame_histogram,
    histogram_distance,
)
from common.ffmpeg import ffmpeg_binary
from common.video_render import pan_zoom_window
from demo import clips
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


# --- The encoder's hint: an I picture it started off its schedule ---------------------------------


def test_a_smaller_jump_is_a_cut_across_an_encoders_keyframe():
    wide = pan_zoom_window(photo("astronaut"), SIZE, 1.0, (0.5, 0.45))
    close = pan_zoom_window(photo("astronaut"), SIZE, 1.5, (0.5, 0.45))  # the same scene, reframed
    jump = histogram_distance(frame_histogram(wide), frame_histogram(close))
    assert KEYFRAME_CUT_DISTANCE < jump <= CUT_DISTANCE  # what the histogram alone misses
    for keyframe, shots in ((False, [0, 0]), (True, [0, 1])):
        tracker = ShotTracker()
        tracker.observe(0.0, wide, [])
        tracker.observe(1.0, close, [], keyframe=keyframe)
        assert [0, tracker.shot_index] == shots
        tracker.close()


def _keyframes(path: Path) -> list[float]:
    decoder = SampledDecoder(path, 1.0)
    decoder.start()
    while decoder.samples.get() is not END_OF_CLIP:
        pass
    decoder.stop()
    return decoder.keyframe_seconds


@pytest.mark.slow  # encodes with ffmpeg
def test_the_decoder_reports_the_keyframes_an_encoder_started_at_cuts_not_its_schedule(tmp_path):
    # x264 (demo/clips.py's encoder) starts an I picture at each cut it notices: 2.5 s and 5.5 s here.
    shots = [
        clips.Segment("astronaut", 2.5, 1.0, 1.05, (0.5, 0.45)),
        clips.Segment("camera", 3.0, 1.0, 1.1, (0.5, 0.45)),
        clips.Segment("coffee", 2.5, 1.0, 1.1, (0.5, 0.5)),
    ]
    path = clips.write_clip(tmp_path / "cuts.mp4", shots, size=(640, 360), fps=24)
    assert [round(s, 1) for s in _keyframes(path)] == [2.5, 5.5]
    # A fixed one-second GOP with no scene detection (many phones and hardware encoders): only the first I
    # picture after the start looks off-schedule; the rest follow it every 24 frames and are no hint.
    fixed = tmp_path / "gop.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-y", "-loglevel", "error", "-i", str(path), "-c:v", "libx264", "-g", "24"]
        + ["-keyint_min", "24", "-sc_threshold", "0", str(fixed)],
        check=True,
    )
    assert [round(s, 1) for s in _keyframes(fixed)] == [1.0]
