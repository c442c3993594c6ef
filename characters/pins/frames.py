"""The images pins are made of: the frame on screen at a clip time, the stored last frame, and
Kling O1's element image rules (JPEG/PNG, at most 10 MB, each side at least 300 px, aspect ratio
0.4-2.5). A frame that cannot meet them is refused with the reason; frames are never upscaled,
since a blown-up small frame only gives the model a blurred character. `pin_frame_for` gives the
exact JPEG a pin would store (the panel's preview shows it)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from characters.models import (
    Clip,
)
from characters.vision.jpeg import encode_jpeg
from characters.vision.video import InvalidVideo, cached_local_video, open_capture
from common.exceptions import Conflict, ServiceError
from common.upload_size import format_size

ELEMENT_IMAGE_MAX_BYTES = 10 * 1024 * 1024
ELEMENT_IMAGE_MIN_SIDE = 300
ELEMENT_IMAGE_MIN_ASPECT = 0.4
ELEMENT_IMAGE_MAX_ASPECT = 2.5
ELEMENT_IMAGE_FORMATS = ("JPEG", "PNG")
# Tried in order until the JPEG fits the size limit (a 4K frame of noise can exceed 10 MB at high quality).
JPEG_QUALITIES = (92, 85, 75, 60)
# A timestamp may land this far past the reported duration (rounding in players and containers).
TIMESTAMP_TOLERANCE_SECONDS = 0.001


class FrameNotUsable(ServiceError):
    """The frame cannot become an element image (too small, odd shape, not decodable)."""

    status_code = 422
    code = "frame_not_usable"


class InvalidTimestamp(ServiceError):
    code = "invalid_timestamp"


@dataclass(frozen=True)
class PinFrame:
    """A JPEG ready to store as an element image, and where it came from."""

    jpeg: bytes
    width: int
    height: int
    seconds: float | None  # the clip time it shows (the last frame's time for the last-frame shortcut)
    frame_index: int | None  # None for the stored last frame (no decoding happened)
    from_last_frame: bool = False


def format_precise_timestamp(seconds: float) -> str:
    """`mm:ss.mmm`, as the panel shows the current time."""
    millis = round(seconds * 1000)
    return f"{millis // 60000:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def element_image_problems(*, width: int, height: int, size_bytes: int, image_format: str) -> list[str]:
    """Why an image cannot be a Kling O1 element image; empty when it can."""
    problems = []
    if image_format not in ELEMENT_IMAGE_FORMATS:
        problems.append(f"The image is {image_format or 'of an unknown format'}; the provider takes JPEG or PNG.")
    if min(width, height) < ELEMENT_IMAGE_MIN_SIDE:
        problems.append(
            f"The frame is {width}×{height} px; the generation provider needs at least {ELEMENT_IMAGE_MIN_SIDE} px "
            "on each side. Pin from a larger clip (frames are never upscaled: that would only blur the character)."
        )
    aspect = width / height if height else 0
    if height and not ELEMENT_IMAGE_MIN_ASPECT <= aspect <= ELEMENT_IMAGE_MAX_ASPECT:
        problems.append(
            f"The frame's aspect ratio is {aspect:.2f} ({width}×{height}); the provider accepts "
            f"{ELEMENT_IMAGE_MIN_ASPECT} to {ELEMENT_IMAGE_MAX_ASPECT}."
        )
    if size_bytes > ELEMENT_IMAGE_MAX_BYTES:
        problems.append(
            f"The image is {size_bytes / 1_048_576:.1f} MB; the provider takes at most "
            f"{format_size(ELEMENT_IMAGE_MAX_BYTES)}."
        )
    return problems


def _checked(frame: PinFrame, image_format: str = "JPEG") -> PinFrame:
    problems = element_image_problems(
        width=frame.width, height=frame.height, size_bytes=len(frame.jpeg), image_format=image_format
    )
    if problems:
        raise FrameNotUsable(" ".join(problems), details={"width": frame.width, "height": frame.height})
    return frame


def _encode_element_jpeg(image) -> bytes:
    for quality in JPEG_QUALITIES:
        data = encode_jpeg(image, quality=quality)
        if len(data) <= ELEMENT_IMAGE_MAX_BYTES:
            return data
    raise FrameNotUsable(
        f"The frame stays larger than {format_size(ELEMENT_IMAGE_MAX_BYTES)} as a JPEG, the provider's limit for "
        "an element image."
    )


def checked_timestamp(clip: Clip, seconds) -> float:
    """The timestamp as a float within [0, duration]; InvalidTimestamp with the valid range otherwise."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise InvalidTimestamp(f"“{seconds}” is not a time in seconds.") from None
    duration = clip.duration_seconds
    if not duration:
        raise InvalidTimestamp(f"Clip {clip.pk} has no known duration, so no frame can be picked by time.")
    if not math.isfinite(value) or value < 0 or value > duration + TIMESTAMP_TOLERANCE_SECONDS:
        raise InvalidTimestamp(
            f"The timestamp {seconds} s is outside clip {clip.pk}: pick a time between 0 and {duration:.3f} s.",
            details={"min": 0, "max": duration},
        )
    return min(value, duration)


def frame_index_at(seconds: float, fps: float, frame_count: int) -> int:
    """The frame on screen at `seconds`: frame i shows during [i/fps, (i+1)/fps). The end maps to the last frame."""
    index = math.floor(seconds * fps + 1e-6)
    return max(0, min(index, frame_count - 1)) if frame_count > 0 else max(0, index)


def clip_frame_at(*, clip: Clip, seconds) -> PinFrame:
    """Decode the frame on screen at `seconds` (seek by frame index, then one read) as an element JPEG."""
    seconds = checked_timestamp(clip, seconds)
    try:
        # The playable copy once made: the file the panel's scrubber plays, so times agree.
        capture = open_capture(cached_local_video(clip.playback_video))
    except (InvalidVideo, OSError) as exc:
        raise FrameNotUsable(f"Clip {clip.pk} could not be opened: {exc}") from None
    try:
        fps = clip.fps or capture.get(cv2.CAP_PROP_FPS)
        frame_count = clip.frame_count or int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = frame_index_at(seconds, fps, frame_count)
        # OpenCV's FFmpeg backend seeks to the keyframe before and decodes forward to this exact frame.
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok or image is None:
        raise FrameNotUsable(
            f"No picture could be decoded at {format_precise_timestamp(seconds)} (frame {index}) of clip {clip.pk}; "
            "the end of the file may be damaged. Pick an earlier time."
        )
    height, width = image.shape[:2]
    return _checked(PinFrame(_encode_element_jpeg(image), width, height, seconds, index))


def clip_last_frame(*, clip: Clip) -> PinFrame:
    """The clip's stored last frame as it is: its bytes, no video decoding."""
    if not clip.last_frame:
        raise Conflict(
            f"Clip {clip.pk} has no stored last frame yet (its frame extraction has not finished). "
            "Pick a timestamp instead.",
            code="no_last_frame",
        )
    with clip.last_frame.open("rb") as fh:
        data = fh.read()
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            image_format, (width, height) = image.format or "", image.size
            if image_format == "PNG":  # stored pins are JPEG files, made by the one encoder
                decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
                data, image_format = _encode_element_jpeg(decoded), "JPEG"
    except UnidentifiedImageError:
        raise FrameNotUsable(f"Clip {clip.pk}'s stored last frame is not an image; re-extract the clip.") from None
    frame = PinFrame(data, width, height, clip.last_frame_seconds, None, from_last_frame=True)
    return _checked(frame, image_format)


def pin_frame_for(*, clip: Clip, frame_timestamp) -> PinFrame:
    """The exact image a pin or angle from this clip would store: the frame at `frame_timestamp`,
    or the clip's stored last frame when it is None."""
    if frame_timestamp is None:
        return clip_last_frame(clip=clip)
    return clip_frame_at(clip=clip, seconds=frame_timestamp)
