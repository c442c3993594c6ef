"""Marked characters by appearance: how well GrabCut finds the subject inside its box, the palette it gives,
and a contact sheet to look at.

    .venv/bin/python bench/marks_appearance.py [--sheet out.png]

Renders the robot of the suite's mark clips (demo/clips.py robot_sprite) on several sets, moved and scaled,
with the box a contributor would draw (the sprite's box, grown a little as a hand-drawn box is). Prints, per
frame, GrabCut's foreground against the sprite's true mask (IoU, and the share of the foreground that is the
set), then the palette measured over all frames (characters.dna.images.measure_marked_regions) against the
sprite's own paint. The sheet shows each frame with its box, the GrabCut mask, and the palette.
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
SIZE = (960, 540)
HAND_SLACK = 0.06  # a drawn box is a little larger than the subject


def robot_frame(background: str, x: float, y: float, scale: float, colour=(40, 140, 230), seed=7):
    """A frame with the robot, the box a person would draw, and the robot's true mask."""
    frame = clips.pan_zoom_window(clips.photo(background), SIZE, 1.05, (0.5, 0.5))
    sprite, mask = clips.robot_sprite(colour=colour, seed=seed, side=round(SIZE[1] * 0.3))
    truth = np.zeros_like(frame)
    box = clips._paste(frame, sprite, mask, round(x * SIZE[0]), round(y * SIZE[1]), scale)
    clips._paste(truth, np.full_like(sprite, 255), mask, round(x * SIZE[0]), round(y * SIZE[1]), scale)
    dx, dy = round(box["width"] * HAND_SLACK), round(box["height"] * HAND_SLACK)
    drawn = {"x": box["x"] - dx, "y": box["y"] - dy, "width": box["width"] + 2 * dx, "height": box["height"] + 2 * dy}
    return frame, drawn, truth[..., 0] > 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sheet", type=Path, help="write a contact sheet PNG here")
    args = parser.parse_args()
    rows, inputs = [], []
    for key, (background, x, y, scale) in enumerate(SETS):
        frame, box, truth = robot_frame(background, x, y, scale)
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
    paint = {"body paint (sprite)": "#E68C28", "eye slots (sprite)": "#FAE614"}
    for role, entry in regions.items():
        nearest = min(paint, key=lambda name: images.delta_e(entry["color"], paint[name]))
        print(
            f"{role}: {entry['color']} share {entry['share']:.3f} of {entry['region_pixels']} px in "
            f"{len(entry['frames'])} frames; nearest sprite paint {nearest} dE {images.delta_e(entry['color'], paint[nearest]):.1f}"
        )
    print("features:", [f["feature"] for f in images.marked_features(images.palette_from(regions))])
    reference = images.marked_references(inputs)[0].image
    scores = consistency_scores(reference)
    if args.sheet:
        write_sheet(args.sheet, rows, regions)
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


def write_sheet(path: Path, rows, regions) -> None:
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
    cv2.imwrite(str(path), np.vstack([*tiles, strip]))


if __name__ == "__main__":
    main()
