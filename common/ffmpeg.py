"""Which ffmpeg binary the project runs.

OpenCV's wheel decodes video with its own FFmpeg but can encode no H.264, and a fresh machine may have
no system ffmpeg, so the default is the static ffmpeg (with libx264) that the `imageio-ffmpeg` wheel in
requirements.txt ships. FFMPEG_BINARY (settings, from the environment) names another one, e.g.
/usr/bin/ffmpeg.
"""

from __future__ import annotations

import functools
import shutil


class FfmpegMissing(RuntimeError):
    pass


def ffmpeg_binary() -> str:
    from django.conf import settings

    configured = getattr(settings, "FFMPEG_BINARY", "") if settings.configured else ""
    return _resolve(configured)


@functools.cache
def _resolve(configured: str) -> str:
    if configured:
        found = shutil.which(configured)
        if not found:
            raise FfmpegMissing(f"FFMPEG_BINARY={configured!r} is not an executable.")
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is in requirements.txt
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    found = shutil.which("ffmpeg")
    if not found:
        raise FfmpegMissing("No ffmpeg found: install requirements.txt (imageio-ffmpeg) or set FFMPEG_BINARY.")
    return found
