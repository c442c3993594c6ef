"""Marked characters by appearance: how well GrabCut finds the subject inside its box, the palette it gives,
the appearance-based consistency score, and a contact sheet to look at.

    .venv/bin/python bench/marks_appearance.py [--sheet out.png]

Renders the robot of the suite's mark clips (demo/clips.py robot_sprite) on several sets, moved and scaled,
with the box a contributor would draw (the sprite's box, grown a little as a hand-drawn box is). Prints, per
frame, GrabCut's foreground against the sprite's true mask (IoU, and the share of the foreground that is the
set), then the palette measured over all frames (characters.dna.images.measure_marked_regions) against the
sprite's own paint; the consistency score (generation.consistency, subject "appearance") of a clip of the
robot, one that switches to a robot painted otherwise halfway, and one without it; and the GrabCut mask of each
appearance a real mark finds (followed in clip 1, found in clip 2). The sheet shows the stills with their box,
mask and cut-out, the palette, then each appearance of the mark: its box and, beside it, the set dimmed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from characters.dna import images  # noqa: E402
from characters.vision import marking  # noqa: E402
from demo import clips  # noqa: E402

SETS = [
    ("rocket", 0.1, 0.2, 1.0),
    ("chelsea", 0.55, 0.3, 0.85),
    ("coffee", 0.3, 0.25, 1.15),
    ("astronaut", 0.6, 0.2, 1.0),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sheet", type=Path, help="write a contact sheet PNG here")
    args = parser.parse_args()
    rows, inputs = [], []
    for key, (background, x, y, scale) in enumerate(SETS):
        frame, box, truth = clips.robot_still(background, x, y, scale)
        started = time.perf_counter()
        found = images.marked_foreground(frame, box)
        elapsed = time.perf_counter() - started
        inside = np.zeros_like(truth)
        inside[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]] = True
        iou = (found & truth).sum() / max(1, (found | truth).sum())
        box_iou = (inside & truth).sum() / max(1, (inside | truth).sum())
        set_share = (found & ~truth).sum() / max(1, found.sum())
        print(
            f"{background:>9}: GrabCut IoU with the true mask {iou:.3f} (the box alone {box_iou:.3f}); "
            f"set pixels in the foreground {set_share:.3f}; {elapsed * 1000:.0f} ms"
        )
        rows.append((frame, box, found))
        inputs.append(images.FrameInput(key, frame, [{"source": "mark", "box": box}], 80, "", True))
    regions = images.measure_marked_regions(inputs)
    paint = {"body paint (sprite)": clips.ROBOT_PAINT, "eye slots (sprite)": "#FAE614"}
    for role, entry in regions.items():
        nearest = min(paint, key=lambda name: images.delta_e(entry["color"], paint[name]))
        off = images.delta_e(entry["color"], paint[nearest])
        print(
            f"{role}: {entry['color']} share {entry['share']:.3f} of {entry['region_pixels']} px in "
            f"{len(entry['frames'])} frames; nearest sprite paint {nearest} dE {off:.1f}"
        )
    print("features:", [f["feature"] for f in images.marked_features(images.palette_from(regions))])
    reference = images.marked_references(inputs)[0].image
    consistency_scores(reference)
    appearances = marked_appearances()
    if args.sheet:
        write_sheet(args.sheet, rows, regions, appearances)
        print("sheet:", args.sheet)


def consistency_scores(reference: np.ndarray) -> dict:
    """The appearance-based consistency score of three rendered clips against the DNA's marked reference."""
    import tempfile

    from generation import consistency

    R = clips.RobotShot
    other = {"colour": (200, 60, 160), "seed": 3}  # the same shape, painted otherwise: another character
    cases = {
        "the robot throughout": [R("rocket", 3, start=(0.1, 0.2), end=(0.5, 0.3)), R("chelsea", 3, start=(0.6, 0.3))],
        "switches to another robot halfway": [
            R("rocket", 3, start=(0.1, 0.2), end=(0.5, 0.3)),
            R("chelsea", 3, **other),
        ],
        "no robot": [R("rocket", 3, robot=False), R("chelsea", 3, robot=False)],
    }
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, shots in cases.items():
            path, _ = clips.robot_clip(Path(tmp) / "clip.mp4", shots)
            started = time.perf_counter()
            result = consistency.score_video(path, [reference], samples=6, subject=consistency.SUBJECT_APPEARANCE)
            elapsed = time.perf_counter() - started
            frames = [(f.seconds, f.score, f.inliers, f.colour_distance) for f in result.frames]
            print(f"score {result.score:3d}  {name}: (seconds, score, inliers, colour) {frames}; {elapsed:.2f} s")
            # The same with no inlier floor and no colour check: how far the misses are from passing.
            floor, colour = marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE
            marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE = 4, 2.0
            try:
                raw = consistency.score_video(path, [reference], samples=6, subject=consistency.SUBJECT_APPEARANCE)
            finally:
                marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE = floor, colour
            print("      unchecked (inliers, colour):", [(f.inliers, f.colour_distance) for f in raw.frames])
            scores[name] = result.score
    print("method:", result.method)
    return scores


def marked_appearances() -> list[tuple[str, np.ndarray, dict, np.ndarray]]:
    """A mark's appearances as the mark task finds them (the robot marked at 2 s of clip 1, followed, then
    found in clip 2 on another set), each with its GrabCut foreground: (label, frame, box, mask)."""
    import tempfile

    R = clips.RobotShot
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        c1, t1 = clips.robot_clip(Path(tmp) / "1.mp4", [R("rocket", 6, start=(0.1, 0.2), end=(0.55, 0.3))])
        c2, _ = clips.robot_clip(
            Path(tmp) / "2.mp4", [R("chelsea", 8, start=(0.7, 0.35), end=(0.15, 0.2), scale_from=0.8, scale_to=1.15)]
        )
        box = min(t1, key=lambda p: abs(p[0] - 2.0))[1]
        followed = marking.follow(c1, 2.0, box, fps=1.0)
        frames = dict(marking.read_frames(c1, [s.frame_index for s in followed.sightings]))
        views = [v for s in followed.sightings if (v := marking.make_view(frames[s.frame_index], s.box))]
        found = marking.find(c2, views, fps=1.0)
        frames_2 = dict(marking.read_frames(c2, [s.frame_index for s in found.sightings]))
        for clip, sightings, decoded in (
            ("clip 1 followed", followed.sightings, frames),
            ("clip 2 found", found.sightings, frames_2),
        ):
            for sighting in sightings:
                frame = decoded[sighting.frame_index]
                started = time.perf_counter()
                mask = images.marked_foreground(frame, sighting.box)
                ms = (time.perf_counter() - started) * 1000
                b = sighting.box
                share = mask.sum() / max(1, b["width"] * b["height"])
                print(f"{clip} {sighting.seconds:.1f} s: GrabCut keeps {share:.2f} of the box, {ms:.0f} ms")
                out.append((f"{clip} {sighting.seconds:.0f}s", frame, sighting.box, mask))
    inputs = [
        images.FrameInput(i, f, [{"source": "mark", "box": b}], 80, "", True) for i, (_, f, b, _) in enumerate(out)
    ]
    regions = images.measure_marked_regions(inputs)
    print("palette of the mark's appearances:", {r: (e["color"], e["share"], e["pixels"]) for r, e in regions.items()})
    return out


def write_sheet(path: Path, rows, regions, appearances) -> None:
    tiles = []
    for frame, box, found in rows:
        framed = frame.copy()
        cv2.rectangle(framed, (box["x"], box["y"]), (box["x"] + box["width"], box["y"] + box["height"]), (0, 255, 0), 3)
        overlay = frame.copy()
        overlay[~found] = (overlay[~found] * 0.25).astype(np.uint8)
        overlay[found] = (0.6 * overlay[found] + 0.4 * np.array([255, 0, 255])).astype(np.uint8)
        cut = np.zeros_like(frame)
        cut[found] = frame[found]
        tile = np.hstack([framed, overlay, cut])
        tiles.append(cv2.resize(tile, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA))
    strip = np.full((90, tiles[0].shape[1], 3), 255, np.uint8)
    for i, (role, entry) in enumerate(regions.items()):
        r, g, b = images.hex_to_rgb(entry["color"])
        cv2.rectangle(strip, (10 + i * 300, 10), (80 + i * 300, 80), (b, g, r), -1)
        text = f"{role} {entry['color']} {entry['share']:.2f}"
        cv2.putText(strip, text, (88 + i * 300, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cells = []
    for label, frame, b, mask in appearances:
        x0, y0 = max(0, b["x"]), max(0, b["y"])
        crop = frame[y0 : b["y"] + b["height"], x0 : b["x"] + b["width"]].copy()
        m = mask[y0 : b["y"] + b["height"], x0 : b["x"] + b["width"]]
        dimmed = crop.copy()
        dimmed[~m] = (dimmed[~m] * 0.2).astype(np.uint8)
        cell = cv2.resize(np.hstack([crop, dimmed]), (240, 180), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        cells.append(cell)
    per_row = tiles[0].shape[1] // 240
    while len(cells) % per_row:
        cells.append(np.zeros_like(cells[0]))
    grid = [np.hstack(cells[i : i + per_row]) for i in range(0, len(cells), per_row)]
    grid = [np.pad(g, ((0, 0), (0, tiles[0].shape[1] - g.shape[1]), (0, 0))) for g in grid]
    cv2.imwrite(str(path), np.vstack([*tiles, strip, *grid]))


if __name__ == "__main__":
    main()
