"""MIN_QUALITY_SCORE and EXTRACTION_TOP_N: frames under the floor are not offered, unless a character of the clip
(or, without identity, the clip) has none at it; then its best few, marked low quality and naming that character,
on the pages, in the API and in the command."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management import call_command
from rest_framework.test import APIClient

from characters.clips import extraction, services
from characters.clips.extraction import (
    LOW_QUALITY_FALLBACK,
    DimCharacter,
    FrameAnalysis,
    FrameCandidate,
    FrameScore,
    select_candidates,
)
from characters.vision.tracking import Track, _Face
from demo import clips


def candidate(seconds: float, quality: int, tracks: tuple[int, ...] = ()) -> FrameCandidate:
    return FrameCandidate(
        seconds,
        np.zeros((2, 2, 3), np.uint8),
        quality,
        0,
        0,
        0,
        0,
        False,
        "frontal",
        False,
        False,
        detections=[{"track": t} for t in tracks],
    )


# --- The rule on its own -------------------------------------------------------------------------------


def test_frames_under_the_floor_are_not_offered_when_some_reach_it():
    best_first = [candidate(0, 88), candidate(1, 70), candidate(2, 69), candidate(3, 40)]
    chosen = select_candidates(best_first, top_n=10, min_quality=70)
    assert [(f.seconds, f.quality) for f in chosen] == [(0, 88), (1, 70)]  # 70 is at the floor: offered
    assert not any(f.low_quality for f in chosen)


def test_top_n_caps_the_frames_above_the_floor():
    best_first = [candidate(s, 95 - s) for s in range(6)]
    assert [f.seconds for f in select_candidates(best_first, top_n=4, min_quality=70)] == [0, 1, 2, 3]


def test_a_clip_with_nothing_above_the_floor_offers_its_best_few_marked_low_quality():
    best_first = [candidate(s, 60 - s) for s in range(6)]
    chosen = select_candidates(best_first, top_n=10, min_quality=70)
    assert [f.seconds for f in chosen] == list(range(LOW_QUALITY_FALLBACK))
    assert all(f.low_quality for f in chosen)
    assert not any(f.low_quality for f in best_first)  # the input is left as it was
    assert len(select_candidates(best_first, top_n=2, min_quality=70)) == 2  # top_n still caps
    assert select_candidates([], top_n=10, min_quality=70) == []  # no person: nothing


# --- Per character ---------------------------------------------------------------------------------------


def test_a_character_with_no_frame_at_the_floor_still_gets_its_best_frames_within_top_n():
    sharp = [candidate(s, 95 - s, tracks=(0,)) for s in range(10)]  # person A: ten frames at the floor
    dim = DimCharacter({1}, [candidate(20, 60, tracks=(1,)), candidate(21, 55, tracks=(0, 1))])  # B, all under it
    chosen = select_candidates(sharp, top_n=10, min_quality=70, dim_characters=[dim])
    assert len(chosen) == 10  # top_n still caps: B's two take the place of A's two worst
    assert [f.seconds for f in chosen] == [*range(8), 20, 21]
    assert [f.low_quality for f in chosen] == [False] * 8 + [True] * 2
    # The frames name whom they are offered for: B's face, not A's beside it.
    assert [[d.get("low_quality", False) for d in f.detections] for f in chosen[-2:]] == [[True], [False, True]]
    assert not any("low_quality" in d for f in dim.frames for d in f.detections)  # the input is left as it was


def test_a_small_top_n_shows_one_frame_of_each_dim_character_before_a_second_of_any():
    a = DimCharacter({0}, [candidate(0, 60, (0,)), candidate(1, 59, (0,)), candidate(2, 58, (0,))])
    b = DimCharacter({1}, [candidate(5, 40, (1,)), candidate(6, 39, (1,))])
    chosen = select_candidates([], top_n=2, min_quality=70, dim_characters=[a, b])
    assert [(f.seconds, f.low_quality) for f in chosen] == [(0, True), (5, True)]
    # With a frame at the floor, one of those is kept, and the dim character gets the rest.
    chosen = select_candidates([candidate(9, 90, (2,))], top_n=2, min_quality=70, dim_characters=[b])
    assert [(f.seconds, f.low_quality) for f in chosen] == [(9, False), (5, True)]
    # One frame showing two dim characters is offered once, for both.
    both = candidate(7, 50, (0, 1))
    chosen = select_candidates(
        [], top_n=10, min_quality=70, dim_characters=[DimCharacter({0}, [both]), DimCharacter({1}, [both])]
    )
    assert len(chosen) == 1 and [d["low_quality"] for d in chosen[0].detections] == [True, True]


def _analysis(seconds: float, quality: int, tracks: tuple[int, ...], bit: int) -> FrameAnalysis:
    score = FrameScore(seconds, quality, 0, 0, 0, 0, False, "frontal", False, False, [{"track": t} for t in tracks])
    phash = np.zeros((1, 8), np.uint8)
    phash[0, :] = 255 if bit else 0  # 0 and 1 are 64 bits apart: never near-duplicates
    phash[0, 0] = seconds  # a few bits apart from the same `bit`
    return FrameAnalysis(score, phash)


def _track(index: int, shot: int, descriptor: np.ndarray, quality: float) -> Track:
    track = Track(index, shot, float(shot), float(shot), {}, best_quality=quality)
    track.faces = [_Face(quality, float(shot), None, (), descriptor=descriptor)]
    return track


def test_dim_characters_are_the_clip_tracks_joined_by_descriptor_that_no_frame_at_the_floor_shows():
    person = np.random.default_rng(1).normal(0, 0.05, 128)
    other = person + 0.1  # about 1.1 away: another person
    tracks = [_track(0, 0, person, 0.9), _track(1, 1, other, 0.5), _track(2, 2, person + 0.001, 0.4)]
    dim = extraction._DimTracks(min_quality=70)
    image = np.zeros((2, 2, 3), np.uint8)
    dim.offer(_analysis(0, 85, (0,), 0), image)  # the person, sharp
    dim.offer(_analysis(5, 50, (1,), 1), np.zeros((2, 2, 3), np.uint8))  # the other person, dim
    dim.offer(_analysis(6, 45, (1,), 0), np.zeros((2, 2, 3), np.uint8))
    dim.offer(_analysis(9, 40, (2,), 1), image)  # the person again, dim, in another shot: covered by shot 0
    characters = dim.characters(tracks)
    assert [(c.tracks, [f.seconds for f in c.frames]) for c in characters] == [({1}, [5, 6])]
    # Seen at the floor later (here in a frame with someone else) counts too: nothing left to add.
    dim.offer(_analysis(7, 80, (1, 0), 0), image)
    assert dim.characters(tracks) == []


def test_dim_tracks_hold_a_bounded_number_of_frames_and_keep_one_of_each_track_while_they_can():
    dim = extraction._DimTracks(min_quality=70, held=3)
    for track in range(3):
        for k in range(3):
            dim.offer(_analysis(track * 10 + k, 60 - k - track, (track,), k % 2), np.zeros((2, 2, 3), np.uint8))
    assert sum(len(entries) for entries in dim.frames.values()) == 3
    assert {t: [a.score.seconds for a, _ in entries] for t, entries in dim.frames.items()} == {0: [0], 1: [10], 2: [20]}
    dim.offer(_analysis(30, 20, (3,), 0), np.zeros((2, 2, 3), np.uint8))  # a fourth track: the worst one goes
    assert sorted(dim.frames) == [0, 1, 2]


# --- Through the pipeline and the service ----------------------------------------------------------------


@pytest.fixture(scope="module")
def blurred_clip(clip_dir):
    """The whole clip out of focus: the face is found, no frame is sharp enough to reach the floor."""
    return clips.write_clip(
        clip_dir / "all_blurred.mp4",
        [
            clips.Segment("astronaut", 2, 1.8, 1.9, (0.45, 0.33), defect="blur"),
            clips.Segment("astronaut", 2, 1.3, 1.4, (0.46, 0.28), defect="dark"),
            clips.Segment("astronaut", 2, 2.2, 2.3, (0.45, 0.33), defect="blur"),
        ],
    )


def _extracted(path, title: str):
    user = get_user_model().objects.create_user(f"up-{title}", password="pw-for-tests")
    story = services.story_create(title=title, created_by=user)
    with open(path, "rb") as fh:
        clip = services.clip_create(story=story, uploader=user, upload=File(fh, name=path.name))
    return services.clip_extract_frames(clip_id=clip.pk)


@pytest.mark.django_db
def test_mixed_clip_offers_only_frames_at_or_above_the_floor(mixed_clip, settings):
    settings.MIN_QUALITY_SCORE = 70
    clip = _extracted(mixed_clip, "Mixed")
    qualities = list(clip.candidates.values_list("quality", flat=True))
    assert qualities and min(qualities) >= 70
    assert not clip.candidates.filter(low_quality=True).exists()
    # The clip does have frames with a person under the floor (blurred, dark): they were left out.
    scored = extraction.extract_candidates(mixed_clip, fps=settings.EXTRACTION_FPS, top_n=10, min_quality=0)
    assert any(f.quality < 70 for f in scored.frames)


@pytest.mark.django_db
def test_the_floor_and_top_n_come_from_settings(mixed_clip, settings):
    settings.MIN_QUALITY_SCORE = 0
    settings.EXTRACTION_TOP_N = 2
    clip = _extracted(mixed_clip, "Settings")
    assert clip.candidates.count() == 2
    assert not clip.candidates.filter(low_quality=True).exists()


@pytest.mark.django_db
def test_a_clip_with_no_good_frame_offers_its_best_marked_low_quality(blurred_clip, client, settings):
    settings.MIN_QUALITY_SCORE = 70
    clip = _extracted(blurred_clip, "Blurred")
    frames = list(clip.candidates.order_by("rank"))
    assert 1 <= len(frames) <= LOW_QUALITY_FALLBACK
    assert all(f.low_quality and f.quality < 70 for f in frames)

    body = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    assert [c["low_quality"] for c in body["candidates"]] == [True] * len(frames)

    page = client.get(clip.get_absolute_url()).content.decode()
    assert page.count("badge--low-quality") == len(frames)
    assert "Low quality" in page


def test_the_command_honours_the_floor(blurred_clip, mixed_clip, settings):
    settings.MIN_QUALITY_SCORE = 70

    def run(path) -> list[dict]:
        out = io.StringIO()
        call_command("extract_frames", str(path), "--json", stdout=out, stderr=io.StringIO())
        return json.loads(out.getvalue())["frames"]

    mixed = run(mixed_clip)
    assert mixed and all(f["quality"] >= 70 and not f["low_quality"] for f in mixed)
    blurred = run(blurred_clip)
    assert 1 <= len(blurred) <= LOW_QUALITY_FALLBACK and all(f["low_quality"] for f in blurred)


@pytest.fixture(scope="module")
def sharp_then_dim_clip(clip_dir):
    """The astronaut sharp and well lit for 3 s, then a cut to the cameraman in the dark for 3 s."""
    return clips.write_clip(
        clip_dir / "sharp_then_dim.mp4",
        [
            clips.Segment("astronaut", 3, 1.4, 1.7, (0.45, 0.33)),
            clips.Segment("camera", 3, 1.2, 1.45, (0.45, 0.35), defect="dark"),
        ],
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_a_dim_second_person_is_offered_beside_a_sharp_first_one_and_named(sharp_then_dim_clip, client, settings):
    settings.MIN_QUALITY_SCORE = 70
    scored = extraction.extract_candidates(sharp_then_dim_clip, fps=1.0, min_quality=0).scored
    assert max(f.quality for f in scored if f.seconds < 3) >= 70 > max(f.quality for f in scored if f.seconds >= 3)

    clip = _extracted(sharp_then_dim_clip, "Sharp and dim")
    frames = list(clip.candidates.order_by("rank"))
    sharp = [f for f in frames if f.seconds < 3]
    dim = [f for f in frames if f.seconds >= 3]
    assert sharp and all(not f.low_quality and f.quality >= 70 for f in sharp)
    assert 1 <= len(dim) <= LOW_QUALITY_FALLBACK and all(f.low_quality and f.quality < 70 for f in dim)
    assert [f.rank for f in frames] == list(range(1, len(frames) + 1)) and frames[: len(sharp)] == sharp
    # The dim frames name the character they are offered for: the cameraman's group, by its label.
    groups = {f.detections[0]["group_id"] for f in dim}
    assert len(groups) == 1 and groups != {sharp[0].detections[0]["group_id"]}
    assert all(d["low_quality"] for f in dim for d in f.detections)
    assert not any(d.get("low_quality") for f in sharp for d in f.detections)
    assert {f.low_quality_for for f in dim} == {"Character B"} and sharp[0].low_quality_for == ""

    body = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    api_dim = [c for c in body["candidates"] if c["low_quality"]]
    assert len(api_dim) == len(dim) and all(c["detections"][0]["low_quality"] for c in api_dim)
    page = client.get(clip.get_absolute_url()).content.decode()
    assert page.count("badge--low-quality") == len(dim)
    assert "Low quality · Character B" in page and "No frame of Character B in this clip" in page
