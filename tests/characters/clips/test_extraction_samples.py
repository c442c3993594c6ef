"""The extraction pipeline on the labelled sample clips in ../shared/samples (skipped when absent).

The timelines come from the samples' labels.json; see their README for what each clip holds.
"""

from __future__ import annotations

import json

import pytest

from characters.clips.extraction import extract_candidates
from characters.vision.video import InvalidVideo, probe_video
from tests.support.paths import SAMPLES

pytestmark = [
    pytest.mark.samples,
    pytest.mark.skipif(not (SAMPLES / "labels.json").is_file(), reason=f"no sample clips in {SAMPLES}"),
]


@pytest.fixture(scope="module")
def labels() -> dict[str, list[dict]]:
    return json.loads((SAMPLES / "labels.json").read_text())


def segment(labels, clip: str, starts_with: str) -> tuple[float, float]:
    found = [s for s in labels[clip] if s["label"].startswith(starts_with)]
    assert len(found) == 1, f"{clip}: no single segment labelled {starts_with!r}"
    return found[0]["start_s"], found[0]["end_s"]


def within(scored, span: tuple[float, float]):
    return [s for s in scored if span[0] <= s.seconds < span[1]]


@pytest.fixture(scope="module")
def mixed():
    return extract_candidates(SAMPLES / "astronaut_mixed_720p30_10s.mp4", fps=2.0, top_n=10)


def test_mixed_sample_good_seconds_rank_above_every_defect(mixed, labels):
    name = "astronaut_mixed_720p30_10s.mp4"
    good = within(mixed.scored, segment(labels, name, "good"))
    assert len(good) == 4
    worst_good = min(s.quality for s in good)
    for label in ("gaussian blur", "low light", "face partially out of frame"):
        defect = within(mixed.scored, segment(labels, name, label))
        assert defect, f"the person is still found in the {label!r} segment"
        assert worst_good > max(s.quality for s in defect) + 10, label
    cut = within(mixed.scored, segment(labels, name, "face partially out of frame"))
    assert all(s.occluded and s.detections[0]["inside_frame"] < 0.9 for s in cut)
    assert within(mixed.scored, segment(labels, name, "no person")) == []
    assert mixed.frames[0].seconds < 2
    assert all(f.seconds < 2 for f in mixed.frames if f.dominant)


def test_mixed_sample_drops_near_duplicates(mixed):
    assert 1 < len(mixed.frames) < len(mixed.scored)


def test_profile_sample_is_right_profile_throughout():
    result = extract_candidates(SAMPLES / "cameraman_profile_720p30_5s.mp4", fps=2.0)
    assert len(result.scored) == 10  # every sampled frame has the person
    assert {s.pose for s in result.scored} == {"right"}
    assert all(40 < s.detections[0]["yaw"] < 90 for s in result.scored)


def test_two_people_sample():
    result = extract_candidates(SAMPLES / "two_people_720p30_6s.mp4", fps=2.0)
    assert len(result.scored) == 12
    with_both = [s for s in result.scored if len(s.detections) == 2]
    # The plain full-range pass finds the profile face only from about 2.5 s; the halves find it earlier.
    assert all(len(s.detections) == 2 for s in result.scored if s.seconds >= 2.5)
    assert len(with_both) >= 9
    for frame in with_both:
        by_x = sorted(frame.detections, key=lambda d: d["box"]["x"])
        assert by_x[0]["pose"] == "frontal" and by_x[0]["box"]["x"] < 640  # the astronaut, left half
        assert by_x[1]["pose"] == "right" and by_x[1]["box"]["x"] >= 640  # the cameraman, right half
        assert not frame.dominant  # two subjects is not a clear single-subject shot
        assert frame.pose == "frontal"  # the larger face leads


def test_vertical_sample_motion_blur_ranks_below(labels):
    result = extract_candidates(SAMPLES / "astronaut_vertical_720x1280_25fps_6s.mp4", fps=2.0)
    name = "astronaut_vertical_720x1280_25fps_6s.mp4"
    good = within(result.scored, (0, 2)) + within(result.scored, (4, 6))
    blurred = within(result.scored, segment(labels, name, "horizontal motion blur"))
    assert len(good) == 8 and blurred
    assert min(s.quality for s in good) > max(s.quality for s in blurred) + 10
    assert result.frames[0].image.shape[:2] == (1280, 720)


def test_kenburns_sample_is_good_throughout():
    result = extract_candidates(SAMPLES / "astronaut_kenburns_1080p30_5s.mp4", fps=1.0)
    assert len(result.scored) == 5
    assert {s.pose for s in result.scored} == {"frontal"}
    assert min(s.quality for s in result.scored) >= 85
    assert any(f.dominant for f in result.frames)
    assert result.last_frame.shape == (1080, 1920, 3)


@pytest.mark.parametrize("name", ["bad_empty.mp4", "bad_not_video.mp4", "bad_truncated.mp4"])
def test_broken_samples_are_refused(name):
    with pytest.raises(InvalidVideo):
        probe_video(SAMPLES / name)
    if name == "bad_truncated.mp4":
        with pytest.raises(InvalidVideo):
            extract_candidates(SAMPLES / name)
