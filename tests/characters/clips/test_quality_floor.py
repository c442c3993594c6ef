"""MIN_QUALITY_SCORE and EXTRACTION_TOP_N: frames under the floor are not offered, unless a clip has none above it;
then its best few, marked low quality, on the pages, in the API and in the command."""

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
from characters.clips.extraction import LOW_QUALITY_FALLBACK, FrameCandidate, select_candidates
from demo import clips


def candidate(seconds: float, quality: int) -> FrameCandidate:
    return FrameCandidate(seconds, np.zeros((2, 2, 3), np.uint8), quality, 0, 0, 0, 0, False, "frontal", False, False)


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
