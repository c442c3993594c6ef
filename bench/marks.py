"""Marks: how well a marked (non-face) character is followed and found again, and where MIN_INLIERS sits.

    .venv/bin/python bench/marks.py

Renders the suite's robot clips (demo/clips.py robot_clip, the same as tests/test_marks.py) in a temp dir,
marks the robot at 2 s of clip 1, follows it (characters.vision.marking.follow) and searches clip 2 (the
robot on another set, other way, 0.8-1.15x) and clip 3 (same-shaped robots painted otherwise, clip 1's set
empty). Prints, per sampled frame, the inliers of the best view with no inlier floor and no colour check, so
the gap MIN_INLIERS has to fall in shows; then recall and false appearances with the real thresholds. Twice:
with views on the whole box, and on the subject's own pixels (GrabCut, characters.dna.images.marked_subject_view,
what a mark's run uses), so what the foreground changes shows in one run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from characters.dna.images import marked_subject_view  # noqa: E402
from characters.vision import marking  # noqa: E402
from characters.vision.tracking import iou  # noqa: E402
from demo import clips  # noqa: E402


def main() -> None:
    R = clips.RobotShot
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        c1, t1 = clips.robot_clip(
            out / "1.mp4", [R("rocket", 6, start=(0.1, 0.2), end=(0.55, 0.3)), R("coffee", 2, robot=False)]
        )
        c2, t2 = clips.robot_clip(
            out / "2.mp4", [R("chelsea", 8, start=(0.7, 0.35), end=(0.15, 0.2), scale_from=0.8, scale_to=1.15)]
        )
        c3, _ = clips.robot_clip(
            out / "3.mp4",
            [
                R("coffee", 3, colour=(60, 200, 60), seed=99),
                R("rocket", 3, robot=False),
                R("chelsea", 3, colour=(200, 60, 160), seed=3),
            ],
        )
        box = min(t1, key=lambda p: abs(p[0] - 2.0))[1]
        started = time.perf_counter()
        followed = marking.follow(c1, 2.0, box, fps=1.0)
        follow_time = time.perf_counter() - started
        ious = [iou(s.box, min(t1, key=lambda p: abs(p[0] - s.seconds))[1]) for s in followed.sightings]
        print(
            f"follow: {len(followed.sightings)} samples {[s.seconds for s in followed.sightings]}, "
            f"IoU with the truth {min(ious):.2f}-{max(ious):.2f}, {follow_time:.2f} s"
        )
        frames = dict(marking.read_frames(c1, [s.frame_index for s in followed.sightings]))
        box_views = [v for s in followed.sightings if (v := marking.make_view(frames[s.frame_index], s.box))]
        subject_views = [v for s in followed.sightings if (v := marked_subject_view(frames[s.frame_index], s.box))]
        floor, colour = marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE
        for label, views in (("views on the whole box", box_views), ("views on the subject (GrabCut)", subject_views)):
            print(f"{label}: {len(views)} views")
            for name, path in (("with the robot", c2), ("without it", c3)):
                marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE = 4, 2.0
                raw = marking.find(path, views, fps=1.0)
                marking.MIN_INLIERS, marking.MAX_COLOUR_DISTANCE = floor, colour
                started = time.perf_counter()
                real = marking.find(path, views, fps=1.0)
                elapsed = time.perf_counter() - started
                print(
                    f"  {name}: raw inliers per found sample {[s.inliers for s in raw.sightings]} "
                    f"(of {raw.samples} samples; no floor, no colour check)"
                )
                print(
                    f"    with MIN_INLIERS={floor}, colour <= {colour}: found in {len(real.sightings)} of "
                    f"{real.samples} samples, {elapsed:.2f} s"
                )
        views = subject_views
        truth_2 = [
            iou(s.box, min(t2, key=lambda p: abs(p[0] - s.seconds))[1])
            for s in marking.find(c2, views, fps=1.0).sightings
        ]
        print(f"found boxes in clip 2: IoU with the truth {min(truth_2):.2f}-{max(truth_2):.2f}")


if __name__ == "__main__":
    main()
