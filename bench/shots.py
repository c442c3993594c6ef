"""Shot cuts: our histogram rule against PySceneDetect, on clips whose cuts are known.

    .venv/bin/python bench/shots.py [--repeat N] [--out bench/out]

PySceneDetect is not a dependency (its wheel brings opencv-python, which would overwrite mediapipe's
opencv-contrib cv2). For this bench only it goes into bench/.scenedetect, with no dependencies:

    .venv/bin/pip install --no-deps --target bench/.scenedetect scenedetect tqdm

Without it the bench prints that line and measures ours alone.

Renders clips in a temp dir with demo/clips.py (960x540, 24 fps): hard cuts between different photos or
sets (robot clips too), cuts between two framings of one photo (a close-up cut to a wide shot of the same
scene), and shots with no cut that move a lot (fast zooms and pans, a dark shot, motion-blurred pans). Then:
  ours          characters.vision.tracking.ShotTracker fed the frames SampledDecoder hands out at 1, 2
                and 4 samples/s, as extraction does; a true cut is found when the shot index changes at
                the first sample after it.
  PySceneDetect ContentDetector (default threshold) and AdaptiveDetector on every frame, and
                ContentDetector with frame_skip so it sees 1 frame/s like ours; a cut of theirs counts
                when within 1 s (our sampling interval) of the truth, the nearest at or after it first.
Prints, per detector: recall (per kind of cut too), precision, false cuts inside the no-cut shots (per kind
of shot), and its time over decode-only (OpenCV reads every frame) of the same clips in the same run. Then,
apart (they are not hard cuts), how many cuts each detector places on dissolves, a fade through black, a
three-frame flash and a lasting light change, rendered here with numpy. Ours' Bhattacharyya distances at 1/s are
printed per kind (at the true cuts, and the largest inside each kind of no-cut shot), so where CUT_DISTANCE
sits shows. Writes bench/out/shots.png: the frames either side of every cut a detector missed or invented.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCENEDETECT_DIR = ROOT / "bench" / ".scenedetect"
if SCENEDETECT_DIR.is_dir():
    sys.path.insert(1, str(SCENEDETECT_DIR))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.decoding import decode_only  # noqa: E402
from characters.vision.decode import END_OF_CLIP, SampledDecoder  # noqa: E402
from characters.vision.tracking import CUT_DISTANCE, ShotTracker, frame_histogram, histogram_distance  # noqa: E402
from common.ffmpeg import ffmpeg_binary  # noqa: E402
from common.video_render import pan_zoom_window, write_mp4  # noqa: E402
from demo import clips  # noqa: E402

SIZE = (960, 540)
FPS = 24
OUR_RATES = (1.0, 2.0, 4.0)
TOLERANCE = 1.0  # seconds: one of our sampling intervals at the default EXTRACTION_FPS
INSTALL = f".venv/bin/pip install --no-deps --target {SCENEDETECT_DIR.relative_to(ROOT)} scenedetect tqdm"

OTHER, REFRAME, GREY = "other photo/set", "same photo, other framing", "other photo, both grey"


@dataclass
class Clip:
    name: str
    path: Path
    cuts: list[tuple[float, str]]  # (seconds of the new shot's first frame, kind of cut)
    shots: list[tuple[float, float, str]]  # (start, end, kind of shot): no cut inside
    events: list[tuple[float, float, str]] = field(default_factory=list)  # transitions, light changes


def _timeline(planned, fps: int) -> tuple[list, list]:
    """Cuts and shots from [(seconds, shot kind, kind of the cut into it)], frames counted as clips.py does."""
    cuts, shots, frame = [], [], 0
    for seconds, kind, cut in planned:
        n = max(1, round(seconds * fps))
        if frame:
            cuts.append((frame / fps, cut))
        shots.append((frame / fps, (frame + n) / fps, kind))
        frame += n
    return cuts, shots


def hard_cut_clips(tmp: Path) -> list[Clip]:
    S, R = clips.Segment, clips.RobotShot
    plans = {
        "photos": [  # a different photo at each cut, the camera moving
            (S("astronaut", 3.4, 1.2, 1.5, (0.45, 0.35)), "slow zoom", None),
            (S("coffee", 2.6, 1.0, 1.1, (0.5, 0.5)), "steady", OTHER),
            (S("chelsea", 3.3, 1.0, 2.2, (0.5, 0.4)), "fast zoom", OTHER),
            (S("camera", 2.8, 1.2, 1.4, (0.45, 0.35)), "slow zoom", OTHER),
            (S("rocket", 3.1, 1.6, 1.6, (0.3, 0.5), drift_x=0.4), "fast pan", OTHER),
            (S("astronaut", 2.7, 1.9, 2.0, (0.45, 0.33), defect="dark"), "dark", OTHER),
            (S("coffee", 3.2, 1.5, 1.5, (0.3, 0.5), drift_x=0.4, defect="motion_blur"), "motion-blurred pan", OTHER),
            (S("camera", 2.5, 1.0, 1.05, (0.5, 0.4)), "steady", OTHER),
            (S("chelsea", 3.0, 1.4, 1.5, (0.5, 0.4), defect="motion_blur"), "motion blur", OTHER),
            (S("astronaut", 2.6, 1.0, 1.1, (0.5, 0.5)), "steady", OTHER),
        ],
        "framings": [  # wide shot <-> close-up of the same photo, and some other-photo cuts between
            (S("astronaut", 3.2, 1.0, 1.05, (0.5, 0.5)), "steady", None),
            (S("astronaut", 2.7, 2.6, 2.7, (0.45, 0.3)), "steady", REFRAME),
            (S("astronaut", 2.9, 1.1, 1.15, (0.55, 0.45)), "steady", REFRAME),
            (S("coffee", 3.1, 1.0, 1.05, (0.5, 0.5)), "steady", OTHER),
            (S("coffee", 2.6, 2.5, 2.6, (0.5, 0.55)), "steady", REFRAME),
            (S("chelsea", 3.0, 1.0, 1.05, (0.5, 0.5)), "steady", OTHER),
            (S("chelsea", 2.8, 2.4, 2.5, (0.5, 0.35)), "steady", REFRAME),
            (S("chelsea", 2.5, 1.2, 1.2, (0.4, 0.5), drift_x=0.1), "slow pan", REFRAME),
            (S("rocket", 3.3, 1.0, 1.05, (0.5, 0.5)), "steady", OTHER),
            (S("rocket", 2.8, 2.8, 2.9, (0.45, 0.5)), "steady", REFRAME),
            (S("camera", 2.6, 1.0, 1.05, (0.5, 0.5)), "steady", OTHER),
            (S("camera", 2.6, 2.6, 2.7, (0.45, 0.3)), "steady", REFRAME),
            (S("astronaut", 2.9, 2.2, 2.3, (0.5, 0.3)), "steady", OTHER),
        ],
        "motion": [  # fast moves with no cut, and cuts to another framing of the same photo between them
            (S("astronaut", 4.0, 1.0, 3.0, (0.45, 0.35)), "fast zoom", None),
            (S("astronaut", 3.5, 2.0, 2.0, (0.25, 0.5), drift_x=0.5), "fast pan", REFRAME),
            (S("coffee", 3.4, 1.5, 1.5, (0.25, 0.5), drift_x=0.45), "fast pan", OTHER),
            (S("coffee", 2.9, 2.4, 2.5, (0.5, 0.5), defect="dark"), "dark", REFRAME),
            (S("rocket", 3.5, 3.0, 1.0, (0.45, 0.5)), "fast zoom", OTHER),
            (S("rocket", 3.0, 1.6, 1.6, (0.3, 0.5), drift_x=0.4, defect="motion_blur"), "motion-blurred pan", REFRAME),
            (S("chelsea", 3.6, 1.0, 2.8, (0.5, 0.35)), "fast zoom", OTHER),
            (S("chelsea", 3.2, 1.8, 1.8, (0.3, 0.5), drift_x=0.4), "fast pan", REFRAME),
        ],
        "grey": [  # black-and-white footage: scikit-image's grey photos
            (S("camera", 3.1, 1.2, 1.4, (0.45, 0.35)), "slow zoom", None),
            (S("moon", 2.8, 1.0, 1.1, (0.5, 0.5)), "steady", GREY),
            (S("coins", 3.0, 1.4, 1.4, (0.35, 0.5), drift_x=0.3), "fast pan", GREY),
            (S("camera", 2.7, 2.4, 2.5, (0.45, 0.3)), "steady", GREY),
            (S("clock", 2.9, 1.0, 1.6, (0.5, 0.5)), "fast zoom", GREY),
            (S("brick", 3.2, 1.2, 1.3, (0.5, 0.5)), "steady", GREY),
            (S("camera", 2.6, 1.0, 1.05, (0.5, 0.45)), "steady", GREY),
        ],
    }
    out = []
    for name, plan in plans.items():
        path = clips.write_clip(tmp / f"{name}.mp4", [p[0] for p in plan], size=SIZE, fps=FPS)
        cuts, shots = _timeline([(p[0].seconds, p[1], p[2]) for p in plan], FPS)
        out.append(Clip(name, path, cuts, shots))
    robot_plan = [  # the robot walking over sets (demo/clips.py robot_clip)
        (R("rocket", 3.2, start=(0.1, 0.2), end=(0.6, 0.3)), "robot walking", None),
        (R("chelsea", 2.9, start=(0.6, 0.3), end=(0.2, 0.25), scale_from=0.8, scale_to=1.3), "robot walking", OTHER),
        (R("coffee", 3.1, robot=False), "steady", OTHER),
        (R("rocket", 2.7, start=(0.3, 0.2), end=(0.5, 0.2), zoom=(1.8, 1.9)), "robot walking", OTHER),
        (R("rocket", 3.0, robot=False, zoom=(1.0, 1.1)), "steady", REFRAME),
        (R("chelsea", 2.8, colour=(200, 60, 160), seed=3), "robot walking", OTHER),
    ]
    path, _ = clips.robot_clip(tmp / "robot.mp4", [p[0] for p in robot_plan], size=SIZE, fps=FPS)
    cuts, shots = _timeline([(p[0].seconds, p[1], p[2]) for p in robot_plan], FPS)
    out.append(Clip("robot", path, cuts, shots))
    return out


def transitions_clip(tmp: Path) -> Clip:
    """Gradual changes of shot and light changes inside a shot, rendered frame by frame here."""
    photos = {name: clips.photo(name) for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")}
    shots = [("astronaut", (0.45, 0.35)), ("coffee", (0.5, 0.5)), ("chelsea", (0.5, 0.4)), ("rocket", (0.5, 0.5))]
    shots += [("camera", (0.45, 0.35)), ("astronaut", (0.5, 0.45))]
    hold = round(2.5 * FPS)

    def view(index: int, i: int, n: int) -> np.ndarray:
        name, center = shots[index]
        return pan_zoom_window(photos[name], SIZE, 1.2 + 0.1 * i / n, center)

    frames: list[np.ndarray] = []
    events: list[tuple[float, float, str]] = []

    def gradual(a: int, b: int, n: int, kind: str) -> None:
        start = len(frames) / FPS
        for i in range(n):
            t = (i + 1) / (n + 1)
            if kind.startswith("fade"):
                src = view(a, hold, hold) if t < 0.5 else view(b, 0, hold)
                weight = abs(1 - 2 * t)
                frames.append((src.astype(np.float32) * weight).astype(np.uint8))
            else:
                frames.append(cv2.addWeighted(view(a, hold, hold), 1 - t, view(b, 0, hold), t, 0))
        events.append((start, len(frames) / FPS, kind))

    frames += [view(0, i, hold) for i in range(hold)]
    gradual(0, 1, FPS, "dissolve 1 s")
    frames += [view(1, i, hold) for i in range(hold)]
    gradual(1, 2, 8, "dissolve 1/3 s")
    frames += [view(2, i, hold) for i in range(hold)]
    gradual(2, 3, FPS, "fade through black 1 s")
    frames += [view(3, i, hold) for i in range(hold)]
    gradual(3, 4, 2 * FPS, "dissolve 2 s")
    # Light inside one shot (no cut): a three-frame flash, then the lights going up for good.
    frames += [view(4, i, 2 * hold) for i in range(hold)]
    events.append((len(frames) / FPS, (len(frames) + 3) / FPS, "flash (3 frames)"))
    for i in range(hold, 2 * hold):
        frame = view(4, i, 2 * hold)
        if i < hold + 3:
            frame = cv2.convertScaleAbs(frame, alpha=1.8, beta=60)
        frames.append(frame)
    events.append((len(frames) / FPS, len(frames) / FPS, "hard cut (reference)"))
    frames += [view(5, i, 2 * hold) for i in range(hold)]
    events.append((len(frames) / FPS, len(frames) / FPS, "light up x1.6 for good"))
    frames += [cv2.convertScaleAbs(view(5, i, 2 * hold), alpha=1.6, beta=10) for i in range(hold, 2 * hold)]
    path = write_mp4(tmp / "transitions.mp4", frames, size=SIZE, fps=FPS)
    return Clip("transitions", path, [], [], events)


# --- Detectors ---------------------------------------------------------------------------------------------


def fixed_gop_copy(path: Path) -> Path:
    """The clip encoded as many phones and hardware encoders do: an I picture every second, none at cuts."""
    out = path.with_name(path.stem + "_gop1s.mp4")
    subprocess.run(
        [ffmpeg_binary(), "-y", "-loglevel", "error", "-i", str(path), "-c:v", "libx264", "-g", str(FPS)]
        + ["-keyint_min", str(FPS), "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )
    return out


def ours(path: Path, fps: float, *, hints: bool = True) -> list[tuple[float, float]]:
    """The production rule: [(previous sample, sample)] where the shot index changed. `hints`: take the
    encoder's off-schedule I pictures as the production code does (False: the histogram alone)."""
    decoder, tracker = SampledDecoder(path, fps), ShotTracker()
    decoder.start()
    found, previous = [], None
    try:
        while (item := decoder.samples.get()) is not END_OF_CLIP:
            seconds, frame = item
            shot = tracker.shot_index
            keyframe = hints and previous is not None and decoder.keyframe_between(previous, seconds)
            tracker.observe(seconds, frame, [], keyframe=keyframe)
            if previous is not None and tracker.shot_index != shot:
                found.append((previous, seconds))
            previous = seconds
    finally:
        decoder.stop()
        tracker.close()
    if decoder.error is not None:
        raise decoder.error
    return found


def our_distances(path: Path, fps: float) -> list[tuple[float, float, float]]:
    """[(previous sample, sample, Bhattacharyya distance)] for the diagnostics (not timed)."""
    decoder = SampledDecoder(path, fps)
    decoder.start()
    out, previous = [], None
    try:
        while (item := decoder.samples.get()) is not END_OF_CLIP:
            seconds, frame = item
            hist = frame_histogram(frame)
            if previous is not None:
                out.append((previous[0], seconds, histogram_distance(previous[1], hist)))
            previous = (seconds, hist)
    finally:
        decoder.stop()
    return out


def scenedetect_cuts(path: Path, detector: str) -> list[float]:
    """Seconds of the first frame of each new scene PySceneDetect finds."""
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    video = open_video(str(path))
    manager = SceneManager()
    manager.add_detector(AdaptiveDetector() if detector == "adaptive" else ContentDetector())
    skip = round(video.frame_rate) - 1 if detector == "content 1/s" else 0
    manager.detect_scenes(video, frame_skip=skip)
    return [start.seconds for start, _ in manager.get_scene_list()[1:]]


# --- Scoring -----------------------------------------------------------------------------------------------


@dataclass
class Score:
    found: Counter = field(default_factory=Counter)  # kind of cut -> found
    total: Counter = field(default_factory=Counter)
    detected: int = 0
    correct: int = 0
    false_in_shots: Counter = field(default_factory=Counter)  # kind of shot -> false cuts
    misses: list = field(default_factory=list)  # (clip, before s, after s)
    inventions: list = field(default_factory=list)
    events: dict = field(default_factory=dict)  # event kind -> cuts placed on it

    @property
    def recall(self) -> float:
        return sum(self.found.values()) / max(1, sum(self.total.values()))

    @property
    def precision(self) -> float:
        return self.correct / max(1, self.detected)


def shot_at(clip: Clip, seconds: float) -> tuple[float, float, str] | None:
    return next((s for s in clip.shots if s[0] <= seconds < s[1]), None)


def score_ours(clip: Clip, found: list[tuple[float, float]], score: Score) -> None:
    half = 0.5 / FPS
    if clip.events:
        for start, end, kind in clip.events:
            # a cut placed on the event: its two samples straddle it (or one falls inside it)
            score.events[kind] = sum(1 for a, b in found if a < end - half and b > start - half)
        return
    hits = set()
    for cut, kind in clip.cuts:
        score.total[kind] += 1
        hit = next(((a, b) for a, b in found if a < cut - half <= b), None)
        if hit:
            hits.add(hit)
            score.found[kind] += 1
        else:
            score.misses.append((clip, cut - 1 / FPS, cut, kind))  # the frames either side, as for theirs
    score.detected += len(found)
    score.correct += len(hits)
    for a, b in found:
        if (a, b) in hits:
            continue
        shot = shot_at(clip, b)  # shots last longer than a sampling interval: a and b are in it
        score.false_in_shots[shot[2] if shot else "?"] += 1
        score.inventions.append((clip, a, b, shot[2] if shot else ""))


def score_theirs(clip: Clip, found: list[float], score: Score, step: float) -> None:
    """`step`: seconds between the frames the detector compared (one frame, or 1 s with frame_skip)."""
    if clip.events:
        for start, end, kind in clip.events:
            score.events[kind] = sum(1 for d in found if start - TOLERANCE <= d <= end + TOLERANCE)
        return
    unmatched = sorted(found)
    for cut, kind in clip.cuts:
        score.total[kind] += 1
        near = [d for d in unmatched if abs(d - cut) <= TOLERANCE]
        if near:
            # the nearest at or after the cut first: a false cut just before it must not take its place
            unmatched.remove(min(near, key=lambda d: (d < cut - 0.5 / FPS, abs(d - cut))))
            score.found[kind] += 1
        else:
            score.misses.append((clip, cut - 1 / FPS, cut, kind))
    score.detected += len(found)
    score.correct += len(found) - len(unmatched)
    for d in unmatched:
        shot = shot_at(clip, d)
        score.false_in_shots[shot[2] if shot else "?"] += 1
        score.inventions.append((clip, d - step, d, shot[2] if shot else ""))


# --- The strip of mistakes ---------------------------------------------------------------------------------


def frames_at(path: Path, seconds: list[float]) -> dict[int, np.ndarray]:
    wanted = {max(0, round(s * FPS)) for s in seconds}
    cap, index, got = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG), 0, {}
    while wanted - got.keys():
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            got[index] = frame
        index += 1
    cap.release()
    return got


def mistakes_strip(scores: dict[str, Score], out: Path) -> Path | None:
    rows: dict[tuple, list[str]] = defaultdict(list)
    for name, score in scores.items():
        for clip, before, after, kind in score.misses:
            rows[(clip.name, clip.path, round(before, 3), round(after, 3), f"missed cut: {kind}")].append(name)
        for clip, before, after, kind in score.inventions:
            rows[(clip.name, clip.path, round(before, 3), round(after, 3), f"no cut here: {kind}")].append(name)
    if not rows:
        return None
    tile_w, tile_h, text_w = 240, 135, 420
    by_clip: dict[Path, list[float]] = defaultdict(list)
    for _, path, before, after, _ in rows:
        by_clip[path] += [before, after]
    frames = {path: frames_at(path, times) for path, times in by_clip.items()}
    ordered = sorted(rows, key=lambda r: (r[0], r[3]))
    sheet = np.full((tile_h * len(ordered), 2 * tile_w + text_w, 3), 30, np.uint8)
    for r, key in enumerate(ordered):
        name, path, before, after, what = key
        for c, seconds in enumerate((before, after)):
            frame = frames[path].get(max(0, round(seconds * FPS)))
            if frame is not None:
                tile = cv2.resize(frame, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
                sheet[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w] = tile
        lines = [f"{name} {before:.2f}s | {after:.2f}s", what, *_wrap(", ".join(rows[key]), 44)]
        for i, line in enumerate(lines):
            cv2.putText(
                sheet,
                line,
                (2 * tile_w + 10, r * tile_h + 24 + 24 * i),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255, 255, 255) if i != 1 else (120, 200, 255),
                1,
                cv2.LINE_AA,
            )
        cv2.line(sheet, (0, (r + 1) * tile_h - 1), (sheet.shape[1], (r + 1) * tile_h - 1), (90, 90, 90), 1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "shots.png"
    cv2.imwrite(str(path), sheet)
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


# --- Main --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="timing runs (medians)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    try:
        import scenedetect
    except ImportError:
        scenedetect = None
        print(f"PySceneDetect not installed; measuring ours only. For the comparison: {INSTALL}")

    detectors: dict[str, object] = {f"ours {fps:g}/s": (lambda p, f=fps: ours(p, f)) for fps in OUR_RATES}
    gop_copies: dict[Path, Path] = {}
    # The same clips without the encoder's help: I pictures ignored, and re-encoded with a fixed 1 s GOP.
    detectors["ours 1/s, histogram only"] = lambda p: ours(p, 1.0, hints=False)
    detectors["ours 1/s, 1 s GOP copy"] = lambda p: ours(gop_copies[p], 1.0)
    if scenedetect is not None:
        for name in ("content", "adaptive", "content 1/s"):
            detectors[f"PySceneDetect {name}"] = lambda p, n=name: scenedetect_cuts(p, n)

    with tempfile.TemporaryDirectory(prefix="bench-shots-") as tmp:
        started = time.perf_counter()
        hard = hard_cut_clips(Path(tmp))
        every = [*hard, transitions_clip(Path(tmp))]
        gop_copies.update({clip.path: fixed_gop_copy(clip.path) for clip in every})
        render = time.perf_counter() - started
        times: dict[str, list[float]] = {"decode only": [], **{name: [] for name in detectors}}
        results: dict[str, dict[str, list]] = {}
        for _ in range(args.repeat):
            for name in times:
                run = time.perf_counter()
                if name == "decode only":
                    for clip in every:
                        decode_only(clip.path)
                else:
                    results[name] = {clip.name: detectors[name](clip.path) for clip in every}  # type: ignore[operator]
                times[name].append(time.perf_counter() - run)
        scores: dict[str, Score] = {}
        for name, per_clip in results.items():
            score = scores[name] = Score()
            for clip in every:
                if name.startswith("ours"):
                    score_ours(clip, per_clip[clip.name], score)
                else:
                    score_theirs(clip, per_clip[clip.name], score, 1.0 if name.endswith("1/s") else 1 / FPS)

        seconds = sum(c.shots[-1][1] for c in hard)
        cuts = Counter(kind for c in hard for _, kind in c.cuts)
        shot_kinds = Counter(kind for c in hard for *_, kind in c.shots)
        print(
            f"{len(hard)} clips, {seconds:.0f} s of {SIZE[0]}x{SIZE[1]} at {FPS} fps (rendered in {render:.0f} s), "
            f"{sum(cuts.values())} true cuts: " + ", ".join(f"{n} {k}" for k, n in cuts.items())
        )
        print("no-cut shots: " + ", ".join(f"{n} {k}" for k, n in sorted(shot_kinds.items())))
        if scenedetect is not None:
            print(
                f"PySceneDetect {scenedetect.__version__}, OpenCV {cv2.__version__}; ours CUT_DISTANCE {CUT_DISTANCE}"
            )
        base = statistics.median(times["decode only"])
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; decode only {base:.2f} s")
        header = f"{'detector':26s} {'recall':>6s} {'precision':>9s} {'false cuts':>10s} {'time':>7s} {'x decode':>8s}"
        print(header)
        print("-" * len(header))
        for name, score in scores.items():
            elapsed = statistics.median(times[name])
            print(
                f"{name:26s} {score.recall:6.3f} {score.precision:9.3f} {sum(score.false_in_shots.values()):10d} "
                f"{elapsed:6.2f}s {elapsed / base:7.2f}x"
            )
        print("recall per kind of cut, false cuts per kind of shot:")
        for name, score in scores.items():
            per_cut = ", ".join(f"{k} {score.found[k]}/{n}" for k, n in cuts.items())
            false = ", ".join(f"{k} {n}" for k, n in sorted(score.false_in_shots.items())) or "none"
            print(f"  {name:26s} {per_cut}; false: {false}")
        transitions = every[-1]
        print("not hard cuts (cuts each detector placed on it; a dissolve/fade is a change of shot, light is not):")
        for _, _, kind in transitions.events:
            print(f"  {kind:24s} " + ", ".join(f"{name} {score.events[kind]}" for name, score in scores.items()))

        print(f"ours at 1/s, Bhattacharyya distance between consecutive samples (cut above {CUT_DISTANCE}):")
        at_cuts: dict[str, list[float]] = defaultdict(list)
        in_shots: dict[str, list[float]] = defaultdict(list)
        half = 0.5 / FPS
        for clip in hard:
            for a, b, d in our_distances(clip.path, 1.0):
                cut = next((k for t, k in clip.cuts if a < t - half <= b), None)
                if cut:
                    at_cuts[cut].append(d)
                elif shot := shot_at(clip, b):
                    in_shots[shot[2]].append(d)
        for kind, values in at_cuts.items():
            print(f"  at cuts, {kind:28s} min {min(values):.2f}  median {statistics.median(values):.2f}")
        for kind, values in sorted(in_shots.items()):
            print(f"  inside {kind:30s} max {max(values):.2f}  median {statistics.median(values):.2f}")
        print(f"mistakes strip: {mistakes_strip(scores, args.out)}")


if __name__ == "__main__":
    main()
