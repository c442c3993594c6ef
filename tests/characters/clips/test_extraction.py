"""The extraction pipeline on clips made by demo/clips.py, and the service that stores its result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage

from characters.clips import extraction, services
from characters.clips.extraction import extract_candidates
from characters.models import CandidateFrame, Clip
from characters.vision import faces
from characters.vision.video import InvalidVideo
from demo import clips

GOOD, BLUR, DARK = (0, 2), (2, 4), (4, 6)


def frames_between(scored, start: float, end: float):
    return [s for s in scored if start <= s.seconds < end]


@pytest.fixture(scope="module")
def mixed_result(mixed_clip):
    return extract_candidates(mixed_clip, fps=1.0, top_n=10)


@pytest.fixture(scope="module")
def edge_clip(clip_dir):
    """0-2 s the whole face in frame, 2-4 s the same framing slid right so the face is cut by the left edge."""
    return clips.write_clip(
        clip_dir / "edge.mp4",
        [
            clips.Segment("astronaut", 2, 1.2, 1.2, (0.45, 0.3)),
            clips.Segment("astronaut", 2, 1.2, 1.2, (0.8, 0.3)),
        ],
    )


@pytest.fixture(scope="module")
def static_clip(clip_dir):
    return clips.write_clip(clip_dir / "static.mp4", [clips.Segment("astronaut", 5, 1.2, 1.2, (0.45, 0.3))])


# --- Ranking -----------------------------------------------------------------------------------


def test_sharp_well_lit_seconds_rank_above_blurred_and_dark(mixed_result):
    good = frames_between(mixed_result.scored, *GOOD)
    blurred = frames_between(mixed_result.scored, *BLUR)
    dark = frames_between(mixed_result.scored, *DARK)
    assert good and blurred and dark, "each labelled segment should have frames with the person"
    worst_good = min(s.quality for s in good)
    assert worst_good > max(s.quality for s in blurred) + 10
    assert worst_good > max(s.quality for s in dark) + 10
    # The components say why.
    assert max(s.sharpness_score for s in blurred) < min(s.sharpness_score for s in good) / 2
    assert max(s.lighting_score for s in dark) < min(s.lighting_score for s in good) / 2
    # And the kept frames come best first, led by a good second.
    qualities = [f.quality for f in mixed_result.frames]
    assert qualities == sorted(qualities, reverse=True)
    assert GOOD[0] <= mixed_result.frames[0].seconds < GOOD[1]


def test_face_cut_by_the_frame_edge_scores_lower(edge_clip):
    result = extract_candidates(edge_clip, fps=1.0)
    whole = frames_between(result.scored, 0, 2)
    cut = frames_between(result.scored, 2, 4)
    assert len(whole) == 2 and cut, "the cut face is still found"
    for frame in cut:
        face = frame.detections[0]
        assert face["inside_frame"] < 0.9 and face["box"]["x"] < 0
        assert frame.occluded and not frame.dominant
    assert min(s.quality for s in whole) > max(s.quality for s in cut) + 10
    assert min(s.composition_score for s in whole) > max(s.composition_score for s in cut)


def test_frames_without_a_person_are_left_out(mixed_result):
    assert mixed_result.frames_analysed == 10
    assert frames_between(mixed_result.scored, 8, 10) == []
    assert all(f.seconds < 8 for f in mixed_result.frames)


def test_clip_without_a_person_gives_no_frames_and_no_error(no_person_clip):
    result = extract_candidates(no_person_clip)
    assert result.frames == [] and result.scored == []
    assert result.frames_analysed == 3
    assert result.warning == ""
    assert result.last_frame is not None  # the clip's last frame is kept all the same


# --- Duplicates, top N, sampling -------------------------------------------------------------------


def test_static_clip_keeps_one_frame_the_best(static_clip):
    result = extract_candidates(static_clip, fps=1.0)
    assert len(result.scored) == 5
    assert len(result.frames) == 1
    assert result.frames[0].quality == max(s.quality for s in result.scored)


def test_distinct_shots_are_not_duplicates(edge_clip):
    result = extract_candidates(edge_clip, fps=1.0, min_quality=0)  # the cut-face shot scores under the floor
    assert {int(f.seconds) // 2 for f in result.frames} == {0, 1}  # one from each framing


def test_top_n_and_sampling_rate(mixed_clip):
    one = extract_candidates(mixed_clip, fps=2.0, top_n=1)
    assert one.frames_analysed == 20
    assert len(one.frames) == 1
    assert one.frames[0].quality == max(s.quality for s in one.scored)


def test_progress_runs_from_0_to_100(good_clip):
    seen: list[int] = []
    extract_candidates(good_clip, progress=seen.append)
    assert seen[0] == 0 and seen[-1] == 100
    assert seen == sorted(seen) and len(seen) >= 4
    assert all(0 <= p <= 100 for p in seen)


# --- Pose, detections, dominant --------------------------------------------------------------------


def test_profile_clip_is_classed_right(profile_clip):
    """The cameraman looks towards the right edge of the picture (see the module's pose convention)."""
    result = extract_candidates(profile_clip, fps=1.0)
    assert len(result.scored) >= 4
    assert {s.pose for s in result.scored} == {"right"}
    assert all(s.detections[0]["yaw"] > faces.PROFILE_YAW_DEGREES for s in result.scored)


def test_profile_clip_mirrored_is_classed_left(profile_clip, clip_dir):
    import cv2

    mirrored = clip_dir / "profile_mirrored.mp4"
    cap = cv2.VideoCapture(str(profile_clip))
    frames = []
    while (read := cap.read())[0]:
        frames.append(cv2.flip(read[1], 1))
    cap.release()
    writer = cv2.VideoWriter(str(mirrored), cv2.VideoWriter_fourcc(*"mp4v"), 10, frames[0].shape[1::-1])
    for frame in frames[::3]:
        writer.write(frame)
    writer.release()
    result = extract_candidates(mirrored, fps=1.0)
    assert result.scored and {s.pose for s in result.scored} == {"left"}


def test_good_clip_is_frontal(good_clip):
    result = extract_candidates(good_clip, fps=2.0)
    assert len(result.scored) >= 5
    assert {s.pose for s in result.scored} == {"frontal"}


def test_detections_are_json_with_boxes_landmarks_and_flags(good_clip):
    result = extract_candidates(good_clip, fps=1.0)
    frame = result.frames[0]
    h, w = frame.image.shape[:2]
    assert (w, h) == (1280, 720)
    json.dumps([f.detections for f in result.frames])  # storable as it is
    face = frame.detections[0]
    assert set(face) >= {"box", "box_relative", "confidence", "landmarks", "coverage", "occluded", "pose", "full_body"}
    box, rel = face["box"], face["box_relative"]
    assert abs(box["x"] - rel["x"] * w) <= 1 and abs(box["width"] - rel["width"] * w) <= 1
    assert abs(box["y"] - rel["y"] * h) <= 1 and abs(box["height"] - rel["height"] * h) <= 1
    assert 0.5 <= face["confidence"] <= 1
    assert set(face["landmarks"]) == {"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear"}
    # The subject's right eye is on the left of a frontal face in the picture.
    assert face["landmarks"]["right_eye"][0] < face["landmarks"]["nose_tip"][0] < face["landmarks"]["left_eye"][0]
    assert 0 < face["coverage"] < 1
    assert frame.full_body is False  # a waist-up portrait


def test_dominant_needs_the_quality_setting_and_a_clear_shot(good_clip, mixed_clip, settings):
    settings.EXTRACTION_DOMINANT_QUALITY = 0
    clear = extract_candidates(good_clip, fps=1.0)
    assert clear.frames[0].dominant  # one whole, confident, large face
    for frame in clear.scored:
        assert frame.dominant == (not frame.occluded and frame.detections[0]["inside_frame"] >= 0.99)
    settings.EXTRACTION_DOMINANT_QUALITY = 100
    assert not any(f.dominant for f in extract_candidates(good_clip, fps=1.0).scored)


def test_models_are_made_once_per_thread():
    assert faces.detectors() is faces.detectors()


# --- Resolution independence ---------------------------------------------------------------------


def test_same_content_scores_alike_at_720p_and_1080p(clip_dir):
    small = extract_candidates(clips.good_frontal(clip_dir / "same_720.mp4", seconds=3.0), fps=1.0)
    large = extract_candidates(clips.good_frontal(clip_dir / "same_1080.mp4", size=(1920, 1080), seconds=3.0), fps=1.0)
    assert [s.seconds for s in small.scored] == [s.seconds for s in large.scored] == [0.0, 1.0, 2.0]
    for a, b in zip(small.scored, large.scored, strict=True):
        assert abs(a.quality - b.quality) <= 4, (a.seconds, a.quality, b.quality)
        assert abs(a.sharpness_score - b.sharpness_score) <= 0.08
        assert a.pose == b.pose
    assert large.frames[0].image.shape[:2] == (1080, 1920)  # candidates keep the full resolution


# --- Broken files ----------------------------------------------------------------------------


def test_truncated_tail_is_processed_as_far_as_it_decodes(truncated_tail_clip):
    result = extract_candidates(truncated_tail_clip, fps=1.0)
    assert "ends early" in result.warning
    assert "of the 5.0 s its header announces" in result.warning
    assert 1.0 < result.decoded_seconds < 4.5
    assert f"decoded {result.decoded_seconds:.1f} s" in result.warning
    assert result.frames and all(f.seconds < result.decoded_seconds for f in result.frames)
    # The last frame is the last one that decoded, not the last sampled one.
    assert result.last_frame is not None and result.last_frame.shape == (720, 1280, 3)
    assert result.decoded_seconds - 0.05 < result.last_frame_seconds < result.decoded_seconds


def test_whole_clip_keeps_its_last_frame(good_clip):
    result = extract_candidates(good_clip, fps=1.0)
    assert result.warning == ""
    assert result.last_frame_seconds == pytest.approx(149 / 30, abs=0.01)


def test_unreadable_file_is_refused(missing_header_clip):
    with pytest.raises(InvalidVideo):
        extract_candidates(missing_header_clip)


# --- The service: storing the result -----------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    if "FileSystemStorage" in settings.STORAGES["default"]["BACKEND"]:
        settings.MEDIA_ROOT = tmp_path / "media"
    return default_storage


def _clip_for(path, story_title="Extraction story"):
    user = get_user_model().objects.create_user("uploader", password="pw-for-tests")
    story = services.story_create(title=story_title, created_by=user)
    with open(path, "rb") as fh:
        return services.clip_create(story=story, uploader=user, upload=File(fh, name=path.name))


def _stored_files(storage, clip: Clip) -> set[str]:
    prefix = f"frames/{clip.story_id}/{clip.pk}"
    _, files = storage.listdir(prefix)
    return {f"{prefix}/{name}" for name in files}


@pytest.mark.django_db
def test_clip_extract_frames_stores_candidates_and_replaces_them_on_rerun(media, mixed_clip):
    clip = _clip_for(mixed_clip)
    clip = services.clip_extract_frames(clip_id=clip.pk)
    assert clip.status == Clip.Status.READY and clip.progress == 100
    assert clip.people_found and clip.frames_analysed == 10 and clip.warning_message == ""
    first = list(clip.candidates.order_by("rank"))
    assert 1 <= len(first) <= 10
    assert [f.rank for f in first] == list(range(1, len(first) + 1))
    assert [f.quality for f in first] == sorted((f.quality for f in first), reverse=True)
    best = first[0]
    assert best.timestamp in ("00:00", "00:01") and best.pose == "frontal"
    assert best.detections[0]["confidence"] > 0.5 and best.width == 1280
    for frame in first:
        assert media.exists(frame.image.name) and media.exists(frame.thumbnail.name)
    with media.open(best.thumbnail.name) as fh:
        from PIL import Image

        assert max(Image.open(fh).size) <= services.THUMBNAIL_MAX_SIDE
    assert clip.last_frame and media.exists(clip.last_frame.name)
    assert clip.last_frame_seconds == pytest.approx(299 / 30, abs=0.01)
    files_before = _stored_files(media, clip)
    assert len(files_before) == 2 * len(first) + 1

    clip = services.clip_extract_frames(clip_id=clip.pk)
    second = list(clip.candidates.order_by("rank"))
    assert len(second) == len(first)
    assert not {f.pk for f in first} & {f.pk for f in second}
    assert CandidateFrame.objects.filter(clip=clip).count() == len(second)
    files_after = _stored_files(media, clip)
    assert len(files_after) == 2 * len(second) + 1  # no leftovers from the first run
    assert files_after == {f.image.name for f in second} | {f.thumbnail.name for f in second} | {clip.last_frame.name}


@pytest.mark.django_db
def test_clip_without_a_person_ends_ready_with_no_candidates(media, no_person_clip):
    clip = services.clip_extract_frames(clip_id=_clip_for(no_person_clip).pk)
    assert clip.status == Clip.Status.READY and clip.progress == 100
    assert clip.candidates.count() == 0 and not clip.people_found
    assert clip.error_message == "" and clip.last_frame


@pytest.mark.django_db
def test_clip_with_truncated_tail_keeps_the_warning(media, truncated_tail_clip):
    clip = services.clip_extract_frames(clip_id=_clip_for(truncated_tail_clip).pk)
    assert clip.status == Clip.Status.READY
    assert "ends early" in clip.warning_message
    assert clip.candidates.exists()


def test_pool_keeps_the_better_of_near_duplicates():
    """The selection rule on its own: a later, better twin replaces the earlier one; a worse one is dropped."""

    def analysis(seconds, quality, bits):
        score = extraction.FrameScore(seconds, quality, 0, 0, 0, 0, False, "frontal", False, False, [])
        return extraction.FrameAnalysis(score, np.array([bits], dtype=np.uint8))

    image = np.zeros((4, 4, 3), np.uint8)
    pool = extraction._Pool(size=2)
    pool.offer(analysis(0, 50, [0] * 8), image)
    pool.offer(analysis(1, 70, [0] * 7 + [1]), image)  # twin of 0 s, better: replaces it
    pool.offer(analysis(2, 60, [1] * 7 + [0]), image)  # twin of 1 s, worse: dropped
    pool.offer(analysis(3, 40, [255] * 8), image)  # distinct
    pool.offer(analysis(4, 45, [255, 255, 255, 255, 0, 0, 0, 0]), image)  # distinct, better than 3 s
    assert [(f.seconds, f.quality) for f in pool.best_first()] == [(1, 70), (4, 45)]
