"""Helpers shared by the pinning tests: real clips in a story, independent decoding, what is in storage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.files import File
from django.core.files.base import ContentFile

from characters.clips import services
from characters.models import Clip, Story
from tests.support.media import own_media_root as media_root  # noqa: F401 -- exported below

# The fixtures, for `from tests.support.pinning import *` in the pinning test modules.
__all__ = ["contributor", "good", "media_root", "mixed", "pin_admin", "pin_story"]


def upload_clip(path: Path, story: Story, uploader) -> Clip:
    """Store a real video as a clip (validated like an upload); its extraction is not run."""
    with open(path, "rb") as fh:
        return services.clip_create(story=story, uploader=uploader, upload=File(fh, name=path.name))


def frames_by_sequential_decoding(path: Path, indexes) -> dict[int, np.ndarray]:
    """Frames of a video by index, found with a fresh capture reading every frame from the start (no seeking)."""
    wanted, found = set(indexes), {}
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        for index in range(max(wanted) + 1):
            ok, frame = capture.read()
            assert ok, f"the video has fewer than {index + 1} frames"
            if index in wanted:
                found[index] = frame
    finally:
        capture.release()
    return found


def store_last_frame(clip: Clip, path: Path) -> bytes:
    """Save the clip's final frame the way the extraction pipeline does; returns the stored JPEG bytes."""
    last_index = clip.frame_count - 1
    last = frames_by_sequential_decoding(path, [last_index])[last_index]
    ok, buffer = cv2.imencode(".jpg", last, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    clip.last_frame.save("last_frame.jpg", ContentFile(buffer.tobytes()), save=False)
    clip.last_frame_seconds = round(last_index / clip.fps, 3)
    clip.save(update_fields=["last_frame", "last_frame_seconds"])
    with clip.last_frame.open("rb") as fh:
        return fh.read()


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def pinned_files(media_root: Path) -> list[str]:
    """Every file under media/pinned/, as storage names."""
    root = Path(media_root)
    return sorted(p.relative_to(root).as_posix() for p in (root / "pinned").rglob("*") if p.is_file())


def grant_pin_permission(user) -> None:
    user.user_permissions.add(Permission.objects.get(codename="pin_character", content_type__app_label="characters"))


@pytest.fixture
def pin_admin(django_user_model):
    return django_user_model.objects.create_superuser("pinner", "pinner@example.com", "pw-pinner-123")


@pytest.fixture
def contributor(django_user_model):
    return django_user_model.objects.create_user("casey", "casey@example.com", "pw-casey-123")


@pytest.fixture
def pin_story(pin_admin) -> Story:
    return services.story_create(title="Pin Story", created_by=pin_admin)


@pytest.fixture
def mixed(pin_story, pin_admin, mixed_clip) -> Clip:
    """10 s of moving pictures (see tests/conftest.py), position 1 of the story."""
    return upload_clip(mixed_clip, pin_story, pin_admin)


@pytest.fixture
def good(pin_story, pin_admin, good_clip) -> Clip:
    """5 s frontal astronaut, position 2 of the story (after `mixed` when both are used)."""
    return upload_clip(good_clip, pin_story, pin_admin)
