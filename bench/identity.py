"""Who is who: purity and completeness of the character groups, and what identity costs the extraction.

    .venv/bin/python bench/identity.py [--repeat N] [--fps F] [--height 720|1080] [--out bench/out]

Renders a story of clips with demo/clips.py in a temp dir: two people (scikit-image's astronaut and
cameraman photos) and a shot with no one (the coffee cup), cut into several shots per clip, in different
framings, one dark. Then, in one run:
  groups        every clip's tracks (extraction with identity) joined by the same rule as the story's
                (characters.groups.services.GroupIndex); each track's true person is the photo on screen
                at its best face's second.
                purity       = tracks in their group's majority person / all tracks (two people never mixed)
                completeness = tracks in their person's largest group / all tracks (one person, one group)
  time          decode only (OpenCV reads every frame, nothing else), extraction without identity and
                with it (models made once, as a worker keeps them); medians of --repeat runs in turn, the
                median of each run's own ratio beside it, and the process's CPU seconds (all threads), which
                a busy machine skews less than the wall clock.
Writes a contact sheet PNG per run (bench/out/identity_groups.png): one row per group, the best face of
each of its tracks, labelled with the clip, the second and the true person.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.decoding import decode_only  # noqa: E402
from characters.clips import extraction  # noqa: E402
from characters.groups.joining import GroupIndex  # noqa: E402
from characters.vision import faces  # noqa: E402
from characters.vision.identity import SAME_CHARACTER_DISTANCE, distance  # noqa: E402
from demo import clips  # noqa: E402

PEOPLE = {"astronaut": "astronaut", "camera": "cameraman"}
SIZES = {720: (1280, 720), 1080: (1920, 1080)}  # --height: what the clips are rendered at
SIZE = SIZES[720]


def story_clips() -> list[list[clips.Segment]]:
    S = clips.Segment
    return [
        [
            S("astronaut", 3, 1.4, 1.7, (0.45, 0.33)),
            S("coffee", 2, 1.0, 1.1, (0.5, 0.5)),
            S("camera", 3, 1.2, 1.45, (0.45, 0.35)),
        ],
        [S("camera", 3, 1.0, 1.2, (0.5, 0.4)), S("astronaut", 3, 2.0, 2.3, (0.5, 0.3), drift_x=-0.03)],
        [
            S("astronaut", 2, 1.2, 1.3, (0.46, 0.28)),
            S("camera", 2, 1.6, 1.8, (0.42, 0.33)),
            S("astronaut", 2, 1.9, 2.0, (0.45, 0.33), defect="dark"),
            S("camera", 2, 1.3, 1.3, (0.5, 0.38)),
        ],
        [S("coffee", 3, 1.0, 1.2, (0.5, 0.5))],
    ]


def truth_at(segments: list[clips.Segment], seconds: float) -> str:
    start = 0.0
    for segment in segments:
        if seconds < start + segment.seconds:
            return PEOPLE.get(segment.photo, "nobody")
        start += segment.seconds
    return PEOPLE.get(segments[-1].photo, "nobody")


def frame_at(path: Path, seconds: float) -> np.ndarray:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    cap.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, frame = cap.read()
    cap.release()
    return frame if ok else np.zeros((SIZE[1], SIZE[0], 3), np.uint8)


def group_tracks(results, paths, timelines):
    """[(group key, clip index, track, truth)] joined clip by clip as the story does."""
    index, placed, next_key = GroupIndex(), [], 1
    for c, result in enumerate(results):
        for track in sorted(result.tracks, key=lambda t: -t.best_quality):
            if track.descriptor is None:
                continue
            span = (c, track.shot_index, track.start_seconds, track.end_seconds)
            key = index.match(track.descriptor, span)
            if key is None:
                key, next_key = next_key, next_key + 1
            index.add(key, track.descriptor, span)
            placed.append((key, c, track, truth_at(timelines[c], track.best_seconds)))
    return placed


def purity_completeness(placed) -> tuple[float, float]:
    total = len(placed) or 1
    by_group: dict[int, Counter] = {}
    by_truth: dict[str, Counter] = {}
    for key, _, _, truth in placed:
        by_group.setdefault(key, Counter())[truth] += 1
        by_truth.setdefault(truth, Counter())[key] += 1
    purity = sum(c.most_common(1)[0][1] for c in by_group.values()) / total
    completeness = sum(c.most_common(1)[0][1] for c in by_truth.values()) / total
    return purity, completeness


def contact_sheet(placed, paths, out: Path) -> Path:
    tile, rows = 150, {}
    for key, c, track, truth in placed:
        b = track.best_box
        frame = frame_at(paths[c], track.best_seconds)
        side = int(max(b["width"], b["height"]) * 1.4)
        cx, cy = b["x"] + b["width"] // 2, b["y"] + b["height"] // 2
        x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
        crop = frame[y0 : y0 + side, x0 : x0 + side]
        crop = cv2.resize(crop if crop.size else frame, (tile, tile), interpolation=cv2.INTER_AREA)
        cv2.rectangle(crop, (0, tile - 30), (tile, tile), (0, 0, 0), -1)
        cv2.putText(
            crop,
            f"clip {c + 1} {track.best_seconds:.0f}s",
            (4, tile - 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        cv2.putText(crop, truth, (4, tile - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (120, 255, 120), 1, cv2.LINE_AA)
        rows.setdefault(key, []).append(crop)
    width = 170 + tile * max(len(r) for r in rows.values())
    sheet = np.full((tile * len(rows), width, 3), 40, np.uint8)
    for r, key in enumerate(sorted(rows)):
        cv2.putText(
            sheet,
            f"Group {key}",
            (10, r * tile + tile // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        for i, crop in enumerate(rows[key]):
            sheet[r * tile : (r + 1) * tile, 170 + i * tile : 170 + (i + 1) * tile] = crop
    out.mkdir(parents=True, exist_ok=True)
    path = out / "identity_groups.png"
    cv2.imwrite(str(path), sheet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--height", type=int, choices=sorted(SIZES), default=720, help="the clips' frame height")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    global SIZE
    SIZE = SIZES[args.height]

    with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
        timelines = story_clips()
        paths = [clips.write_clip(Path(tmp) / f"clip{i + 1}.mp4", t, size=SIZE) for i, t in enumerate(timelines)]
        models = faces.detectors()
        results = [extraction.extract_candidates(p, fps=args.fps, models=models) for p in paths]  # warm, and kept
        placed = group_tracks(results, paths, timelines)
        purity, completeness = purity_completeness(placed)

        runs: dict[str, list[float]] = {"decode only": [], "extraction": [], "extraction + identity": []}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name in runs:
                started, cpu_started = time.perf_counter(), time.process_time()
                for p in paths:
                    if name == "decode only":
                        decode_only(p)
                    else:
                        extraction.extract_candidates(
                            p, fps=args.fps, models=models, identity=name.endswith("identity")
                        )
                runs[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
        medians = {name: statistics.median(times) for name, times in runs.items()}
        ratios = {
            name: statistics.median(t / d for t, d in zip(times, runs["decode only"], strict=True))
            for name, times in runs.items()
        }
        cpu_medians = {name: statistics.median(times) for name, times in cpu.items()}

        video_seconds = sum(s.seconds for t in timelines for s in t)
        print(
            f"{len(paths)} clips, {video_seconds:.0f} s of {SIZE[0]}x{SIZE[1]} video at {args.fps:g} samples/s; "
            f"threshold {SAME_CHARACTER_DISTANCE}"
        )
        print(f"tracks {len(placed)}, groups {len({k for k, *_ in placed})}, people {len({t for *_, t in placed})}")
        for key in sorted({k for k, *_ in placed}):
            members = [(c, tr, t) for k, c, tr, t in placed if k == key]
            print(f"  group {key}: " + ", ".join(f"clip{c + 1}@{tr.best_seconds:.0f}s={t}" for c, tr, t in members))
        same, other = [], []
        for i, (_, _, a, ta) in enumerate(placed):
            for _, _, b, tb in placed[i + 1 :]:
                (same if ta == tb else other).append(distance(a.descriptor, b.descriptor))
        if same:
            print(f"distance same person {min(same):.2f}-{max(same):.2f}", end="")
        if other:
            print(f", different people {min(other):.2f}-{max(other):.2f}", end="")
        print()
        print(f"purity {purity:.3f} (target >= 0.95), completeness {completeness:.3f} (target >= 0.9)")
        base, cpu_base = medians["decode only"], cpu_medians["decode only"]
        print(f"medians of {args.repeat} runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for name, value in medians.items():
            print(
                f"{name:24s} {value:6.2f} s  {value / base:5.2f}x decode only "
                f"(per run {ratios[name]:.2f}x)  cpu {cpu_medians[name]:5.2f} s  {cpu_medians[name] / cpu_base:5.2f}x"
            )
        print(f"contact sheet: {contact_sheet(placed, paths, args.out)}")


if __name__ == "__main__":
    main()
