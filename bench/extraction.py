"""Time the extraction pipeline against a plain decode and the seed's way of doing it.

    .venv/bin/python bench/extraction.py [CLIP] [--repeat N] [--fps F]

With no CLIP it renders a 5 s 1080p30 clip with demo/clips.py into a temp dir (pass
../shared/samples/astronaut_kenburns_1080p30_5s.mp4 to use the sample). Prints, from one run:
  decode only   OpenCV reads every frame and does nothing else (the floor for any in-process tool)
  ours          characters.clips.extraction.extract_candidates (models made once, as a worker keeps them)
  seed baseline ffmpeg writes PNG frames at 1 fps into a temp dir, then each file is read with
                cv2.imread and run through MediaPipe face detection (full range), as the seed does
  katna         Katna's keyframe extraction, only when Katna is importable
Each figure is the median of --repeat runs, run in turn so that drift affects all alike. The
first (cold) run of ours, which also builds the MediaPipe graphs, is reported on its own.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from bench.decoding import decode_only  # noqa: E402
from characters.clips import extraction  # noqa: E402
from characters.vision import faces  # noqa: E402
from demo import clips  # noqa: E402


def ours(path: Path, fps: float, models: faces.Detectors) -> int:
    return len(extraction.extract_candidates(path, fps=fps, top_n=10, models=models).frames)


class SeedBaseline:
    """The seed's FrameExtractor: ffmpeg dumps PNGs at `fps`, then imread + face detection per file."""

    def __init__(self) -> None:
        import mediapipe as mp

        self.face_detection = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    def __call__(self, path: Path, fps: float) -> int:
        with tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-i",
                    str(path),
                    "-vf",
                    f"fps={fps}",
                    "-q:v",
                    "2",
                    str(Path(tmp) / "frame_%04d.png"),
                ],
                check=True,
                capture_output=True,
            )
            with_faces = 0
            for frame_path in sorted(Path(tmp).glob("frame_*.png")):
                image = cv2.imread(str(frame_path))
                result = self.face_detection.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                with_faces += bool(result.detections)
            return with_faces


def katna_runner():
    try:
        from Katna.video import Video  # type: ignore[import-not-found]
        from Katna.writer import KeyFrameDiskWriter  # type: ignore[import-not-found]
    except Exception:  # not installed, or broken by its own dependencies
        return None
    video = Video()

    def run(path: Path, fps: float) -> int:
        with tempfile.TemporaryDirectory(prefix="bench-katna-") as tmp:
            video.extract_video_keyframes(no_of_frames=10, file_path=str(path), writer=KeyFrameDiskWriter(location=tmp))
            return len(list(Path(tmp).iterdir()))

    return run


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", nargs="?", type=Path, help="a video file (default: a rendered 5 s 1080p30 clip)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fps", type=float, default=1.0, help="sampling rate for ours and the baseline")
    args = parser.parse_args()
    if not shutil.which("ffmpeg"):
        print("ffmpeg is needed for the seed baseline (apt install ffmpeg).", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        clip = args.clip
        if clip is None:
            clip = clips.good_frontal(Path(tmp) / "bench_1080p30_5s.mp4", size=(1920, 1080), seconds=5.0, fps=30)
        if not clip.is_file():
            print(f"No such file: {clip}", file=sys.stderr)
            return 2
        cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        video_fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        print(f"clip: {clip.name}  {w}x{h}  {video_fps:g} fps  {count} frames ({count / video_fps:.1f} s)")
        print(f"sampling {args.fps:g} fps, median of {args.repeat} runs, {cv2.getNumThreads()} OpenCV threads\n")

        start = time.perf_counter()
        models = faces.Detectors()
        cold = timed(ours, clip, args.fps, models)
        cold_total = time.perf_counter() - start
        seed = SeedBaseline()
        runners = {
            "decode only": lambda: decode_only(clip),
            "ours": lambda: ours(clip, args.fps, models),
            "seed baseline": lambda: seed(clip, args.fps),
        }
        katna = katna_runner()
        if katna is not None:
            runners["katna"] = lambda: katna(clip, args.fps)
        runners["seed baseline"]()  # warm its graph too, for fairness
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.repeat):
            for name, run in runners.items():
                times[name].append(timed(run))
        median = {name: statistics.median(values) for name, values in times.items()}

    for name, value in median.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"{name:<14} {value:7.3f} s   (runs {spread} s)")
    print(f"{'ours, cold':<14} {cold:7.3f} s   (first run; {cold_total:.3f} s with building the models)")
    print()
    best = {name: min(values) for name, values in times.items()}
    print("ratios                 median   best run (least disturbed by other work on the machine)")
    for other, note in (("decode only", "  (target <= 1.5x)"), ("seed baseline", ""), ("katna", "")):
        if other in median:
            ratio, best_ratio = median["ours"] / median[other], best["ours"] / best[other]
            print(f"ours / {other:<13}   {ratio:5.2f}x   {best_ratio:5.2f}x{note}")
    if "katna" not in median:
        print("katna: not installed (pip install katna to include it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
