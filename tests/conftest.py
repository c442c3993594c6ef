"""Shared fixtures. Clips are made here from scikit-image's public-domain photos (no download)."""
from pathlib import Path

import pytest

from common.testing import clips


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def good_clip(clip_dir) -> Path:
    """5 s, 1280x720, frontal astronaut, sharp and well lit."""
    return clips.good_frontal(clip_dir / "good.mp4")


@pytest.fixture(scope="session")
def mixed_clip(clip_dir) -> Path:
    """10 s: 0-2 good / 2-4 blurred / 4-6 dark / 6-8 face leaving the frame / 8-10 no person."""
    return clips.mixed_defects(clip_dir / "mixed.mp4")


@pytest.fixture(scope="session")
def profile_clip(clip_dir) -> Path:
    return clips.profile(clip_dir / "profile.mp4")


@pytest.fixture(scope="session")
def no_person_clip(clip_dir) -> Path:
    return clips.no_person(clip_dir / "no_person.mp4")


@pytest.fixture(scope="session")
def truncated_tail_clip(clip_dir, good_clip) -> Path:
    return clips.truncated_tail(good_clip, clip_dir / "truncated_tail.mp4")


@pytest.fixture(scope="session")
def missing_header_clip(clip_dir) -> Path:
    return clips.missing_header(clip_dir / "missing_header.mp4")
