"""Pins store JPEGs made by the one encoder (characters.vision.jpeg), also when the clip's last frame is a PNG,
and the element size limit is told in the same words as the clip size limit (common.upload_size)."""

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile

from characters.pins import frames
from common.upload_size import format_size
from tests.support.factories import ClipFactory
from tests.support.media import own_media_root_for_every_test  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db


def test_a_png_last_frame_is_pinned_as_a_jpeg_from_the_one_encoder(monkeypatch):
    picture = np.full((480, 640, 3), (40, 120, 200), dtype=np.uint8)
    clip = ClipFactory(last_frame_seconds=4.9)
    clip.last_frame.save("last.png", ContentFile(cv2.imencode(".png", picture)[1].tobytes()))
    calls = []
    real = frames.encode_jpeg
    monkeypatch.setattr(frames, "encode_jpeg", lambda image, **kw: calls.append(kw) or real(image, **kw))

    frame = frames.clip_last_frame(clip=clip)

    assert calls and frame.jpeg[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == picture.shape and np.abs(decoded.astype(int) - picture).max() <= 4


def test_the_element_size_limit_is_told_like_the_clip_limit():
    [problem] = frames.element_image_problems(
        width=1000, height=1000, size_bytes=frames.ELEMENT_IMAGE_MAX_BYTES + 1, image_format="JPEG"
    )
    assert problem.endswith(f"at most {format_size(frames.ELEMENT_IMAGE_MAX_BYTES)}.")
