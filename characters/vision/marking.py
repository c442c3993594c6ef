"""Characters that are not faces: follow a box a contributor drew, and find the same subject in other clips.

Follow (within the marked clip)
    OpenCV's CSRT tracker (opencv-contrib, no model file) on copies scaled to TRACK_LONG_SIDE, at
    TRACK_FPS, forward and backward from the marked frame, each way until a cut (the colour histogram
    jump of `characters.vision.tracking`, its `is_cut`), a tracker failure, a box that has left
    the frame, or MAX_FOLLOW_SECONDS. The box is recorded at the sampling instants (EXTRACTION_FPS,
    the same instants extraction samples) and at the marked frame itself.

Find (in other clips)
    Each reference view (the marked frame and the best followed frames) is a crop of the box at
    SEARCH_LONG_SIDE scale: ORB keypoints and a Lab colour histogram (a, b channels). A sampled frame of
    another clip shows the subject when, for one view, ORB matches that pass Lowe's ratio test
    (MATCH_RATIO) fit one homography (RANSAC, 5 px) with at least MIN_INLIERS inliers, the projected box
    is a plausible quadrilateral (convex, 1/16-16x the view's area), and the colour histogram of the
    found box is within MAX_COLOUR_DISTANCE (Bhattacharyya) of the view's. Keypoints carry the shape and
    texture, the colour check throws out a same-shaped subject painted otherwise.

    With the subject's own pixels (`make_view(..., foreground=)`, e.g. GrabCut's; the consistency score of
    a marked character gives them), keypoints and colours of the view are taken on the subject only, and
    the frame's colours under the view's mask as the homography carries it over: the set behind the
    subject then counts in neither.

    MIN_INLIERS = 30: measured on the suite's robot clips (tests/test_marks.py; `bench/marks.py` prints
    the figures) the subject in another clip, on another set, moved and scaled 0.8-1.15x, gives 95-186
    inliers; frames without it gave up to 25 without the colour check (a robot of the same shape painted
    otherwise: its ears and eye slots; 8-13 from the marked clip's set behind the box), none with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from characters.vision.decode import END_OF_CLIP, SampledDecoder
from characters.vision.tracking import frame_histogram, histogram_distance, is_cut
from characters.vision.video import open_capture

TRACK_FPS = 10.0
TRACK_LONG_SIDE = 480
MAX_FOLLOW_SECONDS = 20.0  # each way; bounds the frames kept in memory (about 400 small copies)
MIN_INSIDE = 0.5  # a followed box with less of it inside the frame has left it
SEARCH_LONG_SIDE = 640
ORB_FEATURES_VIEW = 500
ORB_FEATURES_FRAME = 2000
MATCH_RATIO = 0.75
MIN_INLIERS = 30
MAX_COLOUR_DISTANCE = 0.5
MAX_SEARCH_SAMPLES = 600  # per clip: ten minutes at one sample a second


Box = dict  # {"x", "y", "width", "height"} in pixels of the original frame


def inside_fraction(box: Box, width: int, height: int) -> float:
    """The part of the box's area inside a width x height frame."""
    area = box["width"] * box["height"]
    if area <= 0:
        return 0.0
    iw = max(0, min(width, box["x"] + box["width"]) - max(0, box["x"]))
    ih = max(0, min(height, box["y"] + box["height"]) - max(0, box["y"]))
    return iw * ih / area


def _scaled(box: Box, scale: float) -> Box:
    return {k: round(box[k] * scale) for k in ("x", "y", "width", "height")}


def _clipped(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box["x"]), max(0, box["y"])
    x1, y1 = min(width, box["x"] + box["width"]), min(height, box["y"] + box["height"])
    return {"x": x0, "y": y0, "width": max(0, x1 - x0), "height": max(0, y1 - y0)}


@dataclass
class Sighting:
    """Where the subject is in one sampled frame (box in pixels of the original frame)."""

    seconds: float
    frame_index: int
    box: Box
    inside: float = 1.0
    inliers: int = 0  # found by matching (0 when followed)
    marked: bool = False  # the frame the contributor marked
    quality: int = 0  # 0-100, as a candidate frame would score (set by the caller)


@dataclass
class FollowResult:
    sightings: list[Sighting]  # in time order
    width: int
    height: int
    start_seconds: float
    end_seconds: float


def _small(frame: np.ndarray, scale: float) -> np.ndarray:
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else frame.copy()


def _csrt():
    # opencv-contrib 4.11 has both; the legacy name is the one older wheels carry.
    factory = getattr(cv2, "TrackerCSRT_create", None) or cv2.legacy.TrackerCSRT_create
    return factory()


def follow(
    path: Path | str, seconds: float, box: Box, *, fps: float, progress: Callable[[float], None] | None = None
) -> FollowResult:
    """Follow `box` (marked at `seconds`) through its shot; one sighting per sampling instant it was seen at."""
    cap = open_capture(path)
    try:
        video_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = max(1, round(video_fps / TRACK_FPS))
        interval, half = 1.0 / fps, 0.5 / video_fps
        mark_index = round(seconds * video_fps)
        reach = round(MAX_FOLLOW_SECONDS * video_fps)
        first, last = mark_index - reach, mark_index + reach
        kept: list[tuple[int, float, np.ndarray, bool]] = []  # (index, seconds, small copy, a sampling instant)
        scale, size, index, next_sample = 1.0, (0, 0), -1, 0.0
        while index < last and cap.grab():
            index += 1
            t = index / video_fps
            sample = t >= next_sample - half
            if sample:
                while next_sample <= t + half:
                    next_sample += interval
            if index < first or not (sample or index == mark_index or (index - mark_index) % step == 0):
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                break
            if not kept:
                size = (frame.shape[1], frame.shape[0])
                scale = min(1.0, TRACK_LONG_SIDE / max(size))
            kept.append((index, t, _small(frame, scale), sample))
            if progress and total:
                progress(0.5 * min(1.0, index / max(1, min(total, last))))
    finally:
        cap.release()
    if not kept:
        return FollowResult([], 0, 0, seconds, seconds)
    width, height = size
    at = min(range(len(kept)), key=lambda i: abs(kept[i][0] - mark_index))
    sightings = [Sighting(kept[at][1], kept[at][0], dict(box), inside_fraction(box, width, height), marked=True)]
    ends = [kept[at][1], kept[at][1]]
    for direction in (1, -1):
        tracker = _csrt()
        small_box = _scaled(box, scale)
        tracker.init(kept[at][2], (small_box["x"], small_box["y"], small_box["width"], small_box["height"]))
        previous = frame_histogram(kept[at][2])
        i = at + direction
        while 0 <= i < len(kept):
            index, t, small, sample = kept[i]
            hist = frame_histogram(small)
            if is_cut(histogram_distance(previous, hist)):  # no encoder hint here: the histogram's rule
                break
            previous = hist
            ok, found = tracker.update(small)
            if not ok:
                break
            full = _scaled({"x": found[0], "y": found[1], "width": found[2], "height": found[3]}, 1 / scale)
            inside = inside_fraction(full, width, height)
            if inside < MIN_INSIDE:
                break
            ends[0 if direction < 0 else 1] = t
            if sample and abs(t - kept[at][1]) > 0.5 * interval:
                sightings.append(Sighting(t, index, full, inside))
            i += direction
        if progress:
            progress(0.75 if direction > 0 else 1.0)
    sightings.sort(key=lambda s: s.seconds)
    return FollowResult(sightings, width, height, ends[0], ends[1])


def read_frames(path: Path | str, indexes: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """The original frames at these indexes, in order (one sequential decode, converting only those)."""
    wanted = sorted(set(indexes))
    if not wanted:
        return
    cap = open_capture(path)
    try:
        index, position = -1, 0
        while position < len(wanted) and cap.grab():
            index += 1
            if index == wanted[position]:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yield index, frame
                position += 1
    finally:
        cap.release()


# --- Finding the subject in other clips --------------------------------------------------------


def _colour_histogram(image_bgr: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB)
    hist = cv2.calcHist([lab], [1, 2], mask, [16, 16], [0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()


MIN_MASK_PIXELS = 64  # a warped subject mask smaller than this says nothing: the found box's colours count


def _orb(features: int):
    return cv2.ORB_create(nfeatures=features, fastThreshold=10)  # type: ignore[attr-defined]  # missing from the stubs


@dataclass
class View:
    """One reference look of the subject: a crop at search scale, its keypoints and colours."""

    points: np.ndarray  # keypoint coordinates in the search-scale frame, N x 2
    descriptors: np.ndarray
    box: Box  # in the search-scale frame
    colours: np.ndarray
    # The subject's own pixels in the box (uint8 0/255, box-sized), when known: keypoints and colours are
    # taken there, and a match compares the colours under this mask carried over by the homography.
    mask: np.ndarray | None = None


def make_view(frame_bgr: np.ndarray, box: Box, foreground: np.ndarray | None = None) -> View | None:
    """The view of `box` (original pixels) of a frame; None when it has too few keypoints to match.

    `foreground`: the subject's pixels (a boolean mask of the frame, e.g. GrabCut's), to leave the set
    behind the subject out of its keypoints and colours.
    """
    scale = min(1.0, SEARCH_LONG_SIDE / max(frame_bgr.shape[:2]))
    small = _small(frame_bgr, scale)
    b = _clipped(_scaled(box, scale), small.shape[1], small.shape[0])
    if b["width"] < 8 or b["height"] < 8:
        return None
    mask = np.zeros(small.shape[:2], np.uint8)
    mask[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]] = 255
    subject = None
    if foreground is not None:
        scaled = cv2.resize(foreground.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=0) > 0
        if int(scaled[mask > 0].sum()) >= MIN_MASK_PIXELS:
            mask[~scaled] = 0
            subject = mask[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]].copy()
    keypoints, descriptors = _orb(ORB_FEATURES_VIEW).detectAndCompute(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), mask)
    if descriptors is None or len(keypoints) < MIN_INLIERS:
        return None
    crop = small[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]]
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return View(points, descriptors, b, _colour_histogram(crop, subject), subject)


def _warped_colours(small: np.ndarray, view: View, homography: np.ndarray) -> np.ndarray | None:
    """The colours of the frame under the view's subject mask carried over by the homography (None: no mask,
    or too little of it lands in the frame)."""
    if view.mask is None:
        return None
    b = view.box
    to_view_frame = np.array([[1, 0, b["x"]], [0, 1, b["y"]], [0, 0, 1]], np.float64)
    warped = cv2.warpPerspective(
        view.mask, homography @ to_view_frame, (small.shape[1], small.shape[0]), flags=cv2.INTER_NEAREST
    )
    if int((warped > 0).sum()) < MIN_MASK_PIXELS:
        return None
    return _colour_histogram(small, warped)


@dataclass
class Match:
    inliers: int
    box: Box  # in original pixels
    colour_distance: float


def match_frame(frame_bgr: np.ndarray, views: Sequence[View]) -> Match | None:
    """The best view's match in a frame, or None when no view passes every check."""
    scale = min(1.0, SEARCH_LONG_SIDE / max(frame_bgr.shape[:2]))
    small = _small(frame_bgr, scale)
    keypoints, descriptors = _orb(ORB_FEATURES_FRAME).detectAndCompute(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), None)
    if descriptors is None or len(keypoints) < MIN_INLIERS:
        return None
    frame_points = np.array([k.pt for k in keypoints], dtype=np.float32)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    best: Match | None = None
    for view in views:
        pairs = matcher.knnMatch(view.descriptors, descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < MATCH_RATIO * p[1].distance]
        if len(good) < MIN_INLIERS:
            continue
        src = view.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
        dst = frame_points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
        homography, inlier_mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
        if homography is None:
            continue
        inliers = int(inlier_mask.sum())
        if inliers < MIN_INLIERS or (best is not None and inliers <= best.inliers):
            continue
        b = view.box
        corners = np.array(
            [
                [b["x"], b["y"]],
                [b["x"] + b["width"], b["y"]],
                [b["x"] + b["width"], b["y"] + b["height"]],
                [b["x"], b["y"] + b["height"]],
            ],
            np.float32,
        )
        projected = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), homography).reshape(-1, 2)
        area = cv2.contourArea(projected)
        if not cv2.isContourConvex(projected.reshape(-1, 1, 2)) or not (
            b["width"] * b["height"] / 16 <= area <= b["width"] * b["height"] * 16
        ):
            continue
        x, y, w, h = cv2.boundingRect(projected)
        found = _clipped({"x": x, "y": y, "width": w, "height": h}, small.shape[1], small.shape[0])
        if found["width"] < 4 or found["height"] < 4:
            continue
        crop = small[found["y"] : found["y"] + found["height"], found["x"] : found["x"] + found["width"]]
        colours = _warped_colours(small, view, homography)
        colour = histogram_distance(view.colours, _colour_histogram(crop) if colours is None else colours)
        if colour > MAX_COLOUR_DISTANCE:
            continue
        best = Match(inliers, _scaled({"x": x, "y": y, "width": w, "height": h}, 1 / scale), round(colour, 3))
    return best


@dataclass
class FindResult:
    sightings: list[Sighting] = field(default_factory=list)
    samples: int = 0
    width: int = 0
    height: int = 0
    best_frame: np.ndarray | None = None  # the original frame of the sighting with the most inliers
    best_index: int = -1  # of `sightings`


def find(
    path: Path | str,
    views: Sequence[View],
    *,
    fps: float,
    max_samples: int = MAX_SEARCH_SAMPLES,
    progress: Callable[[float], None] | None = None,
) -> FindResult:
    """The sampled frames of a clip that show the subject of `views`."""
    result = FindResult()
    if not views:
        return result
    decoder = SampledDecoder(path, fps)
    expected = max(1, min(max_samples, round(decoder.announced / decoder.video_fps * fps) if decoder.announced else 1))
    decoder.start()
    try:
        while result.samples < max_samples:
            item = decoder.samples.get()
            if item is END_OF_CLIP:
                break
            seconds, frame = item
            result.samples += 1
            result.height, result.width = frame.shape[:2]
            found = match_frame(frame, views)
            if found is not None:
                result.sightings.append(
                    Sighting(
                        seconds,
                        round(seconds * decoder.video_fps),
                        found.box,
                        inside_fraction(found.box, result.width, result.height),
                        inliers=found.inliers,
                    )
                )
                if result.best_frame is None or found.inliers > result.sightings[result.best_index].inliers:
                    result.best_frame, result.best_index = frame, len(result.sightings) - 1
            if progress:
                progress(min(1.0, result.samples / expected))
    finally:
        decoder.stop()
    if decoder.error is not None:
        raise decoder.error
    return result
