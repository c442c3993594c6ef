"""Uploaded style reference images: hostile input, checked and re-encoded before anything is stored.

An upload is believed only for what its bytes decode to: its name and content type are ignored. It must be at
most STYLE_IMAGE_MAX_BYTES, a real JPEG, PNG or WebP by its content (Pillow identifies it), within
STYLE_IMAGE_MAX_PIXELS before it is decoded (a small file can declare a huge picture), decode whole (OpenCV),
and meet the provider's image rules (`characters.pins.frames.element_image_problems`: each side at least 300 px,
aspect 0.4-2.5). What is stored is our own JPEG of the decoded picture (the one encoder), never the upload.
Nothing here writes: the service stores the JPEGs once the job is created.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from characters.pins.frames import element_image_problems
from characters.vision.jpeg import encode_jpeg
from common.exceptions import ServiceError
from common.upload_size import format_size

STYLE_IMAGE_MAX_BYTES = 10 * 1024 * 1024
STYLE_IMAGE_MAX_PIXELS = 40_000_000  # 8K x 5K: more is a decompression bomb, not a style reference
STYLE_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")  # by content; all are re-encoded to JPEG
# The stored copy: at most this long a side (a reference needs no more) at the encoder's quality.
STYLE_IMAGE_MAX_SIDE = 2048


class StyleImageRejected(ServiceError):
    code = "invalid_style_image"


@dataclass(frozen=True)
class StyleUpload:
    """An upload as we will store it: our JPEG, and the name the contributor gave (for messages only)."""

    jpeg: bytes
    width: int
    height: int
    original_name: str


def _refuse(name: str, why: str) -> StyleImageRejected:
    return StyleImageRejected(f"The style image “{name}” {why}", details={"file": name})


def checked_style_upload(upload) -> StyleUpload:
    """The upload decoded and re-encoded as JPEG; StyleImageRejected (400, naming the file and why) otherwise."""
    name = str(getattr(upload, "name", "") or "upload")[:120]
    size = getattr(upload, "size", None)
    if size is not None and size > STYLE_IMAGE_MAX_BYTES:
        raise _refuse(name, f"is {size / 1_048_576:.1f} MB; at most {format_size(STYLE_IMAGE_MAX_BYTES)} is taken.")
    upload.seek(0)
    data = upload.read(STYLE_IMAGE_MAX_BYTES + 1)
    if not data:
        raise _refuse(name, "is empty.")
    if len(data) > STYLE_IMAGE_MAX_BYTES:
        raise _refuse(name, f"is larger than {format_size(STYLE_IMAGE_MAX_BYTES)}, the most taken.")
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only: format and declared size
            image_format, (width, height) = header.format or "", header.size
    except Image.DecompressionBombError:
        raise _refuse(name, f"declares more than {STYLE_IMAGE_MAX_PIXELS:,} pixels, the most taken.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise _refuse(name, "is not an image (its content was checked, not its name).") from None
    if image_format not in STYLE_IMAGE_FORMATS:
        raise _refuse(name, f"is {image_format}; JPEG, PNG or WebP are taken.")
    if width * height > STYLE_IMAGE_MAX_PIXELS:
        raise _refuse(name, f"declares {width}×{height} px; at most {STYLE_IMAGE_MAX_PIXELS:,} pixels are taken.")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None or decoded.shape[1] != width or decoded.shape[0] != height:
        raise _refuse(name, f"says it is a {image_format} but does not decode whole (damaged or not an image).")
    jpeg = encode_jpeg(decoded, max_side=STYLE_IMAGE_MAX_SIDE)
    problems = element_image_problems(width=width, height=height, size_bytes=len(jpeg), image_format="JPEG")
    if problems:
        raise _refuse(name, "cannot go to the provider: " + " ".join(problems))
    stored = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    return StyleUpload(jpeg=jpeg, width=stored.shape[1], height=stored.shape[0], original_name=name)


def style_image_name(story_id: int, job_id: str, position: int) -> str:
    """Where a job's uploaded style image is stored: beside its video (generated/<story>/<job>.mp4)."""
    return f"generated/{story_id}/{job_id}/style-{position}.jpg"
