"""One JPEG encoder for every picture we store: candidate frames and thumbnails, reference images,
element images."""

from __future__ import annotations

import cv2
import numpy as np

from common.exceptions import ServiceError

DEFAULT_QUALITY = 90


def encode_jpeg(image: np.ndarray, *, quality: int = DEFAULT_QUALITY, max_side: int | None = None) -> bytes:
    """A BGR picture as JPEG bytes; with `max_side`, scaled down (never up) to fit it first."""
    if max_side:
        height, width = image.shape[:2]
        scale = max_side / max(height, width)
        if scale < 1:
            size = (round(width * scale), round(height * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ServiceError("A picture could not be encoded as JPEG.", code="jpeg_encoding_failed", status_code=500)
    return buffer.tobytes()
