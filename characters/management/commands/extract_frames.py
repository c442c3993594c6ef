"""Run the frame extraction pipeline on a video file and print the candidate frames.

    python manage.py extract_frames clip.mp4 [--fps 2] [--top 6] [--json]

The file is checked as an upload would be (characters.vision.video.probe_video); a refused file exits
non-zero with the reason on stderr. Nothing is written to the database or to storage.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from characters.clips.extraction import ExtractionResult, extract_candidates
from characters.models import format_timestamp
from characters.vision.faces import detectors
from characters.vision.video import InvalidVideo, probe_video

BAR_WIDTH = 30


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value <= 30:
        raise ValueError(text)
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Extract the best character frames from a video file (the pipeline the upload task runs)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="an MP4, MOV or WebM file")
        parser.add_argument(
            "--fps",
            type=positive_float,
            default=None,
            help=f"frames sampled per second (default: the EXTRACTION_FPS setting, {settings.EXTRACTION_FPS:g})",
        )
        parser.add_argument(
            "--top",
            type=positive_int,
            default=None,
            help=f"how many frames to keep (default: the EXTRACTION_TOP_N setting, {settings.EXTRACTION_TOP_N})",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print one JSON object instead of a table"
        )

    def handle(self, *args, path: Path, fps: float | None, top: int | None, as_json: bool, **options):
        # FFmpeg's own messages about damaged streams are noise here: the command says it plainly.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        fps = fps or settings.EXTRACTION_FPS
        top = top or settings.EXTRACTION_TOP_N
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            info = probe_video(path)
        except InvalidVideo as exc:
            raise CommandError(f"{path}: {exc}") from None
        if not as_json:
            self.stdout.write(
                f"{path.name}: {info.width}x{info.height}, {info.fps:g} fps, {info.duration_seconds:.1f} s, "
                f"{info.codec}; sampling {fps:g} frame(s) a second"
            )
        detectors()  # load the models first: start-up is not part of the timed pipeline
        bar = ProgressBar(self.stderr)
        started = time.perf_counter()
        try:
            result = extract_candidates(
                path, fps=fps, top_n=top, min_quality=settings.MIN_QUALITY_SCORE, progress=bar.update
            )
        except InvalidVideo as exc:
            raise CommandError(f"{path}: {exc}") from None
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        if result.warning:
            self.stderr.write(f"Warning: {result.warning}")
        if as_json:
            self.stdout.write(self.to_json(path, result, elapsed))
        else:
            self.print_table(result, elapsed)

    @staticmethod
    def to_json(path: Path, result: ExtractionResult, elapsed: float) -> str:
        return json.dumps(
            {
                "clip": str(path),
                "elapsed_seconds": round(elapsed, 3),
                "frames": [
                    {
                        "timestamp": format_timestamp(frame.seconds),
                        "seconds": frame.seconds,
                        "quality": frame.quality,
                        "dominant": frame.dominant,
                        "low_quality": frame.low_quality,
                        "pose": frame.pose,
                        "detections": frame.detections,
                    }
                    for frame in result.frames
                ],
            }
        )

    def print_table(self, result: ExtractionResult, elapsed: float) -> None:
        if not result.frames:
            self.stdout.write(f"No person found in the {result.frames_analysed} frames analysed.")
        else:
            header = (
                f"{'#':>2}  {'time':5}  {'sec':>6}  {'quality':>7}  {'dominant':8}  {'pose':7}  {'faces':>5}  "
                f"{'full body':9}  {'occluded':8}  sharp  light  face   comp"
            )
            self.stdout.write(header)
            self.stdout.write("-" * len(header))
            for rank, frame in enumerate(result.frames, start=1):
                self.stdout.write(
                    f"{rank:>2}  {format_timestamp(frame.seconds):5}  {frame.seconds:6.2f}  {frame.quality:>7}  "
                    f"{'yes' if frame.dominant else '':8}  {frame.pose:7}  {len(frame.detections):>5}  "
                    f"{'yes' if frame.full_body else '':9}  {'yes' if frame.occluded else '':8}  "
                    f"{frame.sharpness_score:5.2f}  {frame.lighting_score:5.2f}  {frame.face_score:5.2f}  "
                    f"{frame.composition_score:5.2f}"
                )
        with_people = len(result.scored)
        self.stdout.write(
            f"\n{len(result.frames)} frame(s) kept of {with_people} with a person, "
            f"{result.frames_analysed} analysed; last frame at {result.last_frame_seconds or 0:.2f} s; "
            f"pipeline {elapsed:.2f} s"
        )
        if any(frame.low_quality for frame in result.frames):
            self.stdout.write(
                f"Frames marked low quality are under the floor (MIN_QUALITY_SCORE {settings.MIN_QUALITY_SCORE}): "
                "shown because a character in them (their faces say low_quality) has no frame at the floor."
            )


class ProgressBar:
    """A one-line bar on stderr, redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.shown = -1

    def update(self, percent: int) -> None:
        if percent == self.shown or (not self.interactive and percent // 10 == self.shown // 10 and percent < 100):
            return
        self.shown = percent
        filled = BAR_WIDTH * percent // 100
        line = f"extracting [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}%"
        self.stream.write(("\r" + line) if self.interactive else line + "\n", ending="")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive and self.shown >= 0:
            self.stream.write("\n", ending="")
            self.stream.flush()
