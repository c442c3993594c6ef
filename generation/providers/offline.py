"""The offline provider: renders a real short MP4 from the reference images, with no API key.

It keeps the whole workflow (queue, status, result, download, scoring) runnable on a fresh machine:
a slow camera move over each reference image in turn, or, with no images (text-to-video), a
moving colour field with the prompt written on it. The clip is rendered when the request is
submitted and kept in storage under generated/offline/ until it is downloaded.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage

from common.video_render import pan_zoom_window, write_mp4

from .base import ProviderFailed, ProviderRequest, ProviderStatus, VerifiedDelivery, WebhookRejected

FPS = 24
SIZES = {"16:9": (640, 360), "9:16": (360, 640), "1:1": (480, 480)}


def _load(name: str) -> np.ndarray | None:
    with default_storage.open(name, "rb") as fh:
        return cv2.imdecode(np.frombuffer(fh.read(), dtype=np.uint8), cv2.IMREAD_COLOR)


def _camera_frames(images: list[np.ndarray], size: tuple[int, int], count: int):
    per_image = max(1, count // len(images))
    for i in range(count):
        img = images[min(i // per_image, len(images) - 1)]
        t = (i % per_image) / max(1, per_image - 1)
        # A gentle push-in with a little drift, like a slow dolly.
        yield pan_zoom_window(img, size, 1.0 + 0.15 * t, (0.5 + 0.03 * (t - 0.5), 0.45))


def _title_frames(prompt: str, size: tuple[int, int], count: int):
    w, h = size
    words, lines, line = prompt.split(), [], ""
    for word in words:
        if len(line) + len(word) > 34:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines = [*lines, line][:6]
    for i in range(count):
        t = i / max(1, count - 1)
        hue = np.uint8((t * 60 + np.linspace(0, 40, w)) % 180)
        hsv = np.dstack([np.tile(hue, (h, 1)), np.full((h, w), 120, np.uint8), np.full((h, w), 90, np.uint8)])
        frame = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        for n, text in enumerate(lines):
            cv2.putText(frame, text, (24, 60 + 34 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        yield frame


class OfflineProvider:
    name = "offline"
    webhooks = False

    def _output_name(self, request_id: str) -> str:
        return f"generated/offline/{request_id}.mp4"

    def submit(self, request: ProviderRequest) -> str:
        request_id = f"offline_{secrets.token_hex(8)}"
        size = SIZES.get(request.aspect_ratio, SIZES["16:9"])
        count = FPS * int(request.duration)
        images = [img for img in (_load(name) for name in request.image_names) if img is not None]
        frames = (
            _camera_frames(images, size, count)
            if images
            else _title_frames(request.arguments.get("prompt", ""), size, count)
        )
        with tempfile.TemporaryDirectory(prefix="offline-render-") as tmp:
            path = write_mp4(Path(tmp) / "render.mp4", frames, size=size, fps=FPS)
            with open(path, "rb") as fh:
                default_storage.save(self._output_name(request_id), File(fh))
        return request_id

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        if default_storage.exists(self._output_name(request_id)):
            return ProviderStatus("completed")
        return ProviderStatus("completed", error="The offline render is missing.")

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        name = self._output_name(request_id)
        if not default_storage.exists(name):
            raise ProviderFailed("The offline render is missing; submit the job again.")
        return {"video": {"url": default_storage.url(name), "storage_name": name, "content_type": "video/mp4"}}

    def download(self, result: dict, dest_dir: Path) -> Path:
        name = result["video"]["storage_name"]
        dest = Path(dest_dir) / "offline.mp4"
        with default_storage.open(name, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        default_storage.delete(name)  # the job keeps its own copy
        return dest

    def cancel(self, model_id: str, request_id: str) -> None:
        name = self._output_name(request_id)
        if default_storage.exists(name):
            default_storage.delete(name)

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        raise WebhookRejected("The offline provider sends no webhooks.")
