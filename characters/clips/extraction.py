"""The frame extraction pipeline: decode -> detect -> score -> select.

Pure image work with no database access, so the Celery task, the `extract_frames` command and
the benchmark all run exactly this code.

Decode
    OpenCV `grab()`s every frame (demux + decode, no colour conversion) and `retrieve()`s (converts
    to BGR) only the frame nearest each sampling instant and the frames at the tail, so the last
    decodable frame is kept too. Nothing is written to disk. Seeking is no faster: a short clip
    usually has a single keyframe, so every seek decodes from the start again. Decoding runs in a
    background thread (OpenCV releases the GIL) while the calling thread analyses the previous
    sample, so the analysis mostly hides behind the decode.

Detect (MediaPipe 0.10.21 `mp.solutions`, models inside the wheel, nothing downloaded)
    Detection runs on a copy scaled to ANALYSIS_LONG_SIDE (the models take 128-256 px inputs, so a
    bigger copy only costs time, and a fixed size makes 720p and 1080p look alike to them).
    - Faces: the full-range face detector on the whole picture and, for wide or tall pictures, on
      two overlapping near-square halves, which finds small faces the whole-picture pass misses.
    - Yaw, hence `pose`: face mesh on a crop around each face.
    - Body: pose landmarks on the picture (one person: the most prominent), for the full-body
      flag and the occlusion flag: a face is occluded when under OCCLUDED_BELOW_INSIDE of its box
      is inside the frame, or when the pose model's visibility of the facial points that its pose
      should show (eyes, nose, mouth) averages under OCCLUDED_BELOW_VISIBILITY. When the detector
      finds no face (it misses some profiles), a head seen by the pose model and confirmed by face
      mesh counts as a face. The pose model runs only where it can tell something: on a frame with
      no face, or whose biggest face is at most POSE_MAX_FACE_HEIGHT of the frame's height. A bigger
      face leaves no room for a whole body, and there the pose model's visibility says nothing (on the
      astronaut with her mouth and chin covered, face 0.36 of the frame: 1.0 on every facial point);
      it is the most expensive model here (about 17 ms a sample of the 35).
    A frame counts as showing a person when it has at least one face; other frames are left out.

Pose convention
    `pose` names the side of the face the camera sees, which is also where the nose points in the
    picture: "right" = the nose points to the right edge of the frame (the subject has turned to
    their own left, showing their right cheek); "left" the mirror case; "frontal" within
    PROFILE_YAW_DEGREES of facing the camera. Yaw is in degrees, positive towards the right edge.

Score (0-100, the seed's weights)
    quality = 100 * (0.30 sharpness + 0.20 lighting + 0.35 face + 0.15 composition), each 0-1:
    - sharpness: variance of the Laplacian on the main face resized to FACE_PATCH px (70 %) and on
      the analysis copy of the frame (30 %), mapped on a log scale; fixed sizes make it resolution
      independent.
    - lighting: the luminance histogram's exposure (mean near mid-grey, few clipped pixels) and
      contrast (spread), on the face (60 %) and the frame (40 %).
    - face: detector confidence rescaled from MIN_FACE_CONFIDENCE..0.9 to 0..1, times the part of
      the face box inside the frame, lowered when the face is occluded.
    - composition: face centre within the middle band/upper half, face size, times the square of
      the part of the face inside the frame (a face cut by the edge scores low).
    The main face is the largest confident one; the seed's average over faces would let a small
    background face drag down a good close-up.

Detections (JSON, stored as they are): one dict per face, the main face first, with
    box {x, y, width, height} in pixels of the original frame (it may extend past the edges: x < 0
    means the face is cut on the left), box_relative (the same, 0-1), confidence, landmarks
    {right_eye, left_eye, nose_tip, mouth_center, right_ear, left_ear} in pixels (the subject's
    own right and left, as MediaPipe names them), coverage (visible face area / frame area),
    inside_frame, occluded, pose, yaw, full_body (this person's whole body is in the frame, from
    the pose landmarks) and source (detector | pose+mesh); with identity also track (the face's track in
    the clip, characters.vision.tracking), low_quality on the faces a low-quality frame is offered for
    (see Select), and once stored appearance_id and group_id (characters.groups).

Select
    Near-duplicates (perceptual hash within DUPLICATE_HASH_DISTANCE bits) keep the better frame;
    then the best `top_n`, best first, of those at or above `min_quality` (the MIN_QUALITY_SCORE
    setting, 70 as in the seed). The floor holds per character, not per clip: with identity, the
    clip's tracks are joined into characters by the story's rule (GroupIndex), and each character
    no frame at the floor shows still gets its best LOW_QUALITY_FALLBACK frames, marked
    `low_quality` (the frame, and that character's faces in its detections), within `top_n` in
    all; so a dim second person is not lost because the first is sharp, and a contributor can
    still pick them and is told the frames are poor. Without identity a clip with people but no
    frame at the floor offers its best LOW_QUALITY_FALLBACK (select_candidates). `dominant` =
    quality above the EXTRACTION_DOMINANT_QUALITY setting (90) and a clear single-subject shot:
    one face, confident, big enough, wholly inside the frame, not occluded.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from characters.groups.joining import GroupIndex
from characters.vision.decode import END_OF_CLIP, SampledDecoder, read_frame_at
from characters.vision.faces import (
    FACE_POINTS_SEEN,
    POSE_NOSE,
    Detectors,
    Face,
    detect_faces,
    detectors,
    face_from_pose_and_mesh,
    full_body_visible,
    mesh_landmarks,
    pose_class,
    square_crop,
    yaw_from_keypoints,
    yaw_from_mesh,
)
from characters.vision.tracking import ShotTracker, Track
from characters.vision.video import InvalidVideo

ANALYSIS_LONG_SIDE = 640
FACE_PATCH = 128
MIN_FACE_CONFIDENCE = 0.5
# Below this the detector's find must be confirmed by face mesh (the halves raise false finds).
CONFIRM_BELOW_CONFIDENCE = 0.75
DUPLICATE_HASH_DISTANCE = 10  # of 64 bits
# Laplacian variance mapped to 0..1 (log scale) on the FACE_PATCH face and the analysis copy. On
# the samples: sharp faces 150-350, Gaussian blur sigma 8 about 10-25, dark and noisy 25-100.
FACE_SHARPNESS_RANGE = (10.0, 250.0)
FRAME_SHARPNESS_RANGE = (10.0, 300.0)
WEIGHTS = {"sharpness": 0.30, "lighting": 0.20, "face": 0.35, "composition": 0.15}
# A clear single-subject shot (for `dominant`). MediaPipe's full-range detector rarely scores a
# face above 0.95 (the seed's threshold), so "confident" is 0.8 here.
CLEAR_SHOT_CONFIDENCE = 0.8
CLEAR_SHOT_MIN_FACE_HEIGHT = 0.12  # of the frame height
CLEAR_SHOT_MIN_FACE_PIXELS = 100  # face box width in the original frame, as in the seed
DEFAULT_DOMINANT_QUALITY = 90
DEFAULT_MIN_QUALITY = 70  # the seed's MIN_QUALITY_SCORE
LOW_QUALITY_FALLBACK = 3  # frames offered, marked low quality, per character no frame at the floor shows
DIM_FRAMES_HELD = 12  # frames held for those characters until the clip ends, besides the pool (4K: 24 MB each)
OCCLUDED_BELOW_INSIDE = 0.85  # part of the face box inside the frame
OCCLUDED_BELOW_VISIBILITY = 0.5  # mean pose visibility of the facial points that should show
POSE_MAX_FACE_HEIGHT = 0.3  # of the frame height: the pose model runs on frames whose biggest face is no taller

ProgressCallback = Callable[[int], None]


@dataclass
class FrameScore:
    """What the pipeline found in one sampled frame with a person (no pixels)."""

    seconds: float
    quality: int  # 0-100
    sharpness_score: float  # each component 0-1
    lighting_score: float
    face_score: float
    composition_score: float
    dominant: bool
    pose: str  # frontal | left | right
    full_body: bool
    occluded: bool
    detections: list[dict] = field(default_factory=list)


@dataclass
class FrameCandidate:
    seconds: float
    image: np.ndarray  # BGR, full resolution
    quality: int  # 0-100
    sharpness_score: float  # each component 0-1
    lighting_score: float
    face_score: float
    composition_score: float
    dominant: bool
    pose: str  # frontal | left | right
    full_body: bool
    occluded: bool
    detections: list[dict] = field(default_factory=list)
    # Under the quality floor, offered only because a character in it (its detections say "low_quality") has
    # no frame at the floor in the clip; without identity, because the clip has none.
    low_quality: bool = False


@dataclass
class ExtractionResult:
    frames: list[FrameCandidate]  # best first, at most top_n (select_candidates)
    frames_analysed: int
    last_frame: np.ndarray | None
    last_frame_seconds: float | None
    warning: str = ""
    # Every sampled frame with a person, in time order, before duplicates and the top-N cut.
    scored: list[FrameScore] = field(default_factory=list)
    decoded_seconds: float = 0.0
    # Who is who (characters.vision.tracking): one track per face per shot; each detection's "track" names one.
    tracks: list[Track] = field(default_factory=list)


# --- Scoring ---------------------------------------------------------------------------------


def _log_scale(value: float, low: float, high: float) -> float:
    """0 at `low`, 1 at `high`, logarithmic between (Laplacian variance spans decades)."""
    if value <= low:
        return 0.0
    return min(1.0, math.log(value / low) / math.log(high / low))


def _sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _lighting(gray: np.ndarray) -> float:
    """Exposure (mean near mid-grey, little clipping) and contrast (spread) of the luminance."""
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    total = hist.sum() or 1.0
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / total)
    std = float(math.sqrt(max(0.0, (hist * (levels - mean) ** 2).sum() / total)))
    clipped = float((hist[:8].sum() + hist[248:].sum()) / total)
    exposure = max(0.0, 1.0 - max(0.0, abs(mean - 125.0) - 25.0) / 85.0) * (1.0 - min(1.0, clipped * 2.5))
    contrast = min(1.0, std / 55.0)
    return 0.5 * exposure + 0.5 * contrast


def _composition(face: Face) -> float:
    """Where the main face sits and how big it is, times how much of it is in the frame."""
    b = face.box
    horizontal = 1.0 - min(1.0, 2.0 * max(0.0, abs(b.cx - 0.5) - 0.17))  # flat across the middle third
    vertical = 1.0 - min(1.0, 2.0 * max(0.0, abs(b.cy - 0.4) - 0.15))  # eyes in the upper half
    height = b.h
    if height < 0.15:
        size = height / 0.15
    elif height > 0.75:
        size = max(0.3, 1.0 - (height - 0.75) * 2)
    else:
        size = 1.0
    inside = b.inside_fraction()
    return (0.3 * horizontal + 0.3 * vertical + 0.4 * size) * inside**2


def _face_visibility(face: Face) -> float:
    confidence = min(1.0, max(0.0, (face.confidence - MIN_FACE_CONFIDENCE) / (0.9 - MIN_FACE_CONFIDENCE)))
    return confidence * face.box.inside_fraction() * (0.7 if face.occluded else 1.0)


def score_marked_region(frame_bgr: np.ndarray, box: dict) -> dict:
    """The scores of a frame for a marked (non-face) character at `box` (pixels): the same weights and
    scales as a face's, with the box's part inside the frame in place of the detector's confidence.

    Returns quality (0-100) and sharpness_score, lighting_score, face_score, composition_score (0-1)."""
    fh, fw = frame_bgr.shape[:2]
    x0, y0 = max(0, box["x"]), max(0, box["y"])
    x1, y1 = min(fw, box["x"] + box["width"]), min(fh, box["y"] + box["height"])
    area = max(1, box["width"] * box["height"])
    inside = max(0, x1 - x0) * max(0, y1 - y0) / area
    scale = min(1.0, ANALYSIS_LONG_SIDE / max(fh, fw))
    gray_small = cv2.cvtColor(
        cv2.resize(frame_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else frame_bgr,
        cv2.COLOR_BGR2GRAY,
    )
    crop = frame_bgr[y0:y1, x0:x1] if x1 - x0 >= 2 and y1 - y0 >= 2 else frame_bgr
    patch = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (FACE_PATCH, FACE_PATCH), interpolation=cv2.INTER_AREA)
    sharpness = 0.7 * _log_scale(_sharpness(patch), *FACE_SHARPNESS_RANGE) + 0.3 * _log_scale(
        _sharpness(gray_small), *FRAME_SHARPNESS_RANGE
    )
    lighting = 0.6 * _lighting(patch) + 0.4 * _lighting(gray_small)
    cx, cy, height = (box["x"] + box["width"] / 2) / fw, (box["y"] + box["height"] / 2) / fh, box["height"] / fh
    horizontal = 1.0 - min(1.0, 2.0 * max(0.0, abs(cx - 0.5) - 0.17))
    vertical = 1.0 - min(1.0, 2.0 * max(0.0, abs(cy - 0.5) - 0.2))  # a whole figure, not eyes: centred
    size = height / 0.25 if height < 0.25 else (1.0 if height <= 0.9 else max(0.3, 1.0 - (height - 0.9) * 2))
    composition = (0.3 * horizontal + 0.3 * vertical + 0.4 * size) * inside**2
    quality = round(
        100
        * (
            WEIGHTS["sharpness"] * sharpness
            + WEIGHTS["lighting"] * lighting
            + WEIGHTS["face"] * inside
            + WEIGHTS["composition"] * composition
        )
    )
    return {
        "quality": max(0, min(100, quality)),
        "sharpness_score": round(sharpness, 4),
        "lighting_score": round(lighting, 4),
        "face_score": round(inside, 4),
        "composition_score": round(composition, 4),
    }


# --- One frame -------------------------------------------------------------------------------


@dataclass
class FrameAnalysis:
    score: FrameScore
    phash: np.ndarray


def analyse_frame(
    models: Detectors, frame_bgr: np.ndarray, seconds: float, *, dominant_quality: int = DEFAULT_DOMINANT_QUALITY
) -> FrameAnalysis | None:
    """Detect, classify and score one frame; None when it shows no person."""
    fh, fw = frame_bgr.shape[:2]
    scale = min(1.0, ANALYSIS_LONG_SIDE / max(fh, fw))
    small = (
        frame_bgr
        if scale >= 1.0
        else cv2.resize(frame_bgr, (round(fw * scale), round(fh * scale)), interpolation=cv2.INTER_AREA)
    )
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    faces = detect_faces(models, rgb)
    body = None
    if not faces or max(f.box.h for f in faces) <= POSE_MAX_FACE_HEIGHT:
        pose_result = models.pose.process(rgb)
        body = pose_result.pose_landmarks.landmark if pose_result.pose_landmarks else None
    if not faces and body is not None:
        fallback = face_from_pose_and_mesh(models, frame_bgr, body)
        if fallback is not None:
            faces = [fallback]
    if not faces:
        return None

    confirmed = []
    for face in faces:
        if face.yaw is None:
            mesh = mesh_landmarks(models, frame_bgr, face.box)
            if mesh is None and face.confidence < CONFIRM_BELOW_CONFIDENCE:
                continue
            face.yaw = yaw_from_mesh(mesh[1]) if mesh is not None else yaw_from_keypoints(face)
        face.pose = pose_class(face.yaw)
        face.occluded = face.box.inside_fraction() < OCCLUDED_BELOW_INSIDE
        confirmed.append(face)
    faces = confirmed
    if not faces:
        return None
    main = max(faces, key=lambda f: f.prominence)
    full_body = False
    if body is not None:
        nose = body[POSE_NOSE]
        by_prominence = sorted(faces, key=lambda f: -f.prominence)
        owner = next((f for f in by_prominence if f.box.contains(nose.x, nose.y, 0.3)), None)
        full_body = full_body_visible(body)
        if owner is not None:
            owner.full_body = full_body
            seen = float(np.mean([body[i].visibility for i in FACE_POINTS_SEEN[owner.pose]]))
            owner.occluded = owner.occluded or seen < OCCLUDED_BELOW_VISIBILITY

    gray_small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    face_crop = square_crop(frame_bgr, main.box, 1.0)
    if face_crop.shape[0] < 2 or face_crop.shape[1] < 2:  # a sliver of a face at the very edge
        face_crop = small
    face_gray = cv2.resize(
        cv2.cvtColor(face_crop, cv2.COLOR_BGR2GRAY), (FACE_PATCH, FACE_PATCH), interpolation=cv2.INTER_AREA
    )
    sharpness = 0.7 * _log_scale(_sharpness(face_gray), *FACE_SHARPNESS_RANGE) + 0.3 * _log_scale(
        _sharpness(gray_small), *FRAME_SHARPNESS_RANGE
    )
    lighting = 0.6 * _lighting(face_gray) + 0.4 * _lighting(gray_small)
    face_score = _face_visibility(main)
    composition = _composition(main)
    quality = round(
        100
        * (
            WEIGHTS["sharpness"] * sharpness
            + WEIGHTS["lighting"] * lighting
            + WEIGHTS["face"] * face_score
            + WEIGHTS["composition"] * composition
        )
    )
    quality = max(0, min(100, quality))
    clear_shot = (
        len(faces) == 1
        and main.confidence >= CLEAR_SHOT_CONFIDENCE
        and not main.occluded
        and main.box.inside_fraction() >= 0.99
        and main.box.h >= CLEAR_SHOT_MIN_FACE_HEIGHT
        and main.box.w * fw >= CLEAR_SHOT_MIN_FACE_PIXELS
    )
    score = FrameScore(
        seconds=round(seconds, 3),
        quality=quality,
        sharpness_score=round(sharpness, 4),
        lighting_score=round(lighting, 4),
        face_score=round(face_score, 4),
        composition_score=round(composition, 4),
        dominant=quality > dominant_quality and clear_shot,
        pose=main.pose,
        full_body=bool(full_body),
        occluded=bool(main.occluded),
        detections=[_detection_dict(f, fw, fh) for f in sorted(faces, key=lambda f: -f.prominence)],
    )
    return FrameAnalysis(score, cv2.img_hash.pHash(gray_small))


def _detection_dict(face: Face, width: int, height: int) -> dict:
    b = face.box
    return {
        "box": {
            "x": round(b.x * width),
            "y": round(b.y * height),
            "width": round(b.w * width),
            "height": round(b.h * height),
        },
        "box_relative": {"x": round(b.x, 4), "y": round(b.y, 4), "width": round(b.w, 4), "height": round(b.h, 4)},
        "confidence": round(face.confidence, 4),
        "landmarks": {name: [round(x * width), round(y * height)] for name, (x, y) in face.keypoints.items()},
        "coverage": round(b.area * b.inside_fraction(), 4),
        "inside_frame": round(b.inside_fraction(), 4),
        "occluded": bool(face.occluded),
        "pose": face.pose,
        "yaw": None if face.yaw is None else round(face.yaw, 1),
        "full_body": bool(face.full_body),
        "source": face.source,
    }


# --- Selection -------------------------------------------------------------------------------


def _hash_distance(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


class _Pool:
    """The best frames so far, no two near-duplicates, at most `size`, holding their pixels.

    Frames arrive in time order; keeping only the running best bounds memory on long 4K clips.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: list[tuple[FrameAnalysis, np.ndarray]] = []

    def offer(self, analysis: FrameAnalysis, image: np.ndarray) -> None:
        if self.size <= 0:
            return
        twins = [e for e in self.entries if _hash_distance(e[0].phash, analysis.phash) <= DUPLICATE_HASH_DISTANCE]
        if any(e[0].score.quality >= analysis.score.quality for e in twins):
            return
        self.entries = [e for e in self.entries if e not in twins]
        self.entries.append((analysis, image))
        if len(self.entries) > self.size:
            self.entries.remove(min(self.entries, key=lambda e: (e[0].score.quality, -e[0].score.seconds)))

    def best_first(self) -> list[FrameCandidate]:
        ordered = sorted(self.entries, key=lambda e: (-e[0].score.quality, e[0].score.seconds))
        return [FrameCandidate(image=image, **vars(analysis.score)) for analysis, image in ordered]


@dataclass
class DimCharacter:
    """A character of the clip (its tracks joined by descriptor) that no frame at the quality floor shows."""

    tracks: set[int]
    frames: list[FrameCandidate]  # its best few, best first, all under the floor


class _DimTracks:
    """For each track no frame at the floor has shown yet, its best LOW_QUALITY_FALLBACK frames (with pixels).

    At most `held` distinct frames in all (4K frames are 24 MB each): past that, the worst frame of a track
    that keeps another goes first, then the track whose best frame is the worst.
    """

    def __init__(self, min_quality: int, held: int = DIM_FRAMES_HELD) -> None:
        self.min_quality = min_quality
        self.held = held
        self.covered: set[int] = set()
        self.frames: dict[int, list[tuple[FrameAnalysis, np.ndarray]]] = {}

    def offer(self, analysis: FrameAnalysis, image: np.ndarray) -> None:
        tracks = {d["track"] for d in analysis.score.detections if "track" in d}
        if analysis.score.quality >= self.min_quality:
            self.covered |= tracks
            for track in tracks:
                self.frames.pop(track, None)
            return
        for track in tracks - self.covered:
            entries = self.frames.setdefault(track, [])
            entries.append((analysis, image))
            entries.sort(key=lambda e: (-e[0].score.quality, e[0].score.seconds))
            del entries[LOW_QUALITY_FALLBACK:]
        while len({id(image) for entries in self.frames.values() for _, image in entries}) > self.held:
            spare = [(entries[-1][0].score.quality, t) for t, entries in self.frames.items() if len(entries) > 1]
            if spare:
                self.frames[min(spare)[1]].pop()
            else:
                del self.frames[min(self.frames, key=lambda t: self.frames[t][0][0].score.quality)]

    def characters(self, tracks: list[Track]) -> list[DimCharacter]:
        """The clip's characters (tracks joined by the story's rule, GroupIndex) that no frame at the floor
        shows, each with its best few frames (near-duplicates left out), the best character first."""
        index = GroupIndex()
        members: dict[int, set[int]] = {}  # character key -> its tracks
        for track in sorted(tracks, key=lambda t: -t.best_quality):
            descriptor = track.descriptor
            if descriptor is None:  # not a character the story will know either
                continue
            span = (0, track.shot_index, track.start_seconds, track.end_seconds)
            key = index.match(descriptor, span)
            key = len(members) if key is None else key
            index.add(key, descriptor, span)
            members.setdefault(key, set()).add(track.index)
        characters = []
        for ids in members.values():
            if ids & self.covered:
                continue
            entries = {id(image): (analysis, image) for t in ids for analysis, image in self.frames.get(t, [])}
            kept: list[tuple[FrameAnalysis, np.ndarray]] = []
            for analysis, image in sorted(entries.values(), key=lambda e: (-e[0].score.quality, e[0].score.seconds)):
                if all(_hash_distance(k.phash, analysis.phash) > DUPLICATE_HASH_DISTANCE for k, _ in kept):
                    kept.append((analysis, image))
            frames = [FrameCandidate(image=image, **vars(a.score)) for a, image in kept[:LOW_QUALITY_FALLBACK]]
            if frames:
                characters.append(DimCharacter(ids, frames))
        return sorted(characters, key=lambda c: (-c.frames[0].quality, c.frames[0].seconds))


def _offered_low_quality(frame: FrameCandidate, tracks: set[int]) -> FrameCandidate:
    """The frame marked low quality, and in its detections the faces of the characters it is offered for."""
    detections = [{**d, "low_quality": True} if d.get("track") in tracks else d for d in frame.detections]
    return replace(frame, low_quality=True, detections=detections)


def select_candidates(
    best_first: list[FrameCandidate],
    *,
    top_n: int,
    min_quality: int,
    dim_characters: list[DimCharacter] | tuple[()] = (),
) -> list[FrameCandidate]:
    """The frames offered as candidates: the best `top_n` at or above `min_quality`, and the best few of each
    character that no frame at the floor shows (`dim_characters`), marked low_quality (so a dim second
    person is not lost because the first one is sharp); at most `top_n` in all, the dim characters' frames
    taken in turn so a small `top_n` still shows as many characters as it can, and at least one frame at the
    floor kept when there is one. Without characters (no identity), a clip with no frame at the floor
    offers its best LOW_QUALITY_FALLBACK, marked low_quality, rather than nothing."""
    passing = [frame for frame in best_first if frame.quality >= min_quality][:top_n]
    if not dim_characters:
        if passing:
            return passing
        return [replace(frame, low_quality=True) for frame in best_first[: min(top_n, LOW_QUALITY_FALLBACK)]]
    offered: dict[float, tuple[FrameCandidate, set[int]]] = {}  # by seconds: one frame may show two of them
    for turn in range(LOW_QUALITY_FALLBACK):
        for character in dim_characters:
            if turn < len(character.frames):
                frame = character.frames[turn]
                offered.setdefault(frame.seconds, (frame, set()))[1].update(character.tracks)
    keep = min(len(passing), max(1, top_n - len(offered)))
    dim = list(offered.values())[: top_n - keep]
    dim.sort(key=lambda e: (-e[0].quality, e[0].seconds))
    return passing[:keep] + [_offered_low_quality(frame, tracks) for frame, tracks in dim]


# --- The clip --------------------------------------------------------------------------------


def _dominant_quality_setting() -> int:
    from django.conf import settings

    if settings.configured:
        return int(getattr(settings, "EXTRACTION_DOMINANT_QUALITY", DEFAULT_DOMINANT_QUALITY))
    return DEFAULT_DOMINANT_QUALITY


def extract_candidates(
    path: Path | str,
    *,
    fps: float = 1.0,
    top_n: int = 10,
    min_quality: int = DEFAULT_MIN_QUALITY,
    progress: ProgressCallback | None = None,
    models: Detectors | None = None,
    identity: bool = True,
) -> ExtractionResult:
    """Decode `path` at `fps` samples a second, find and score the frames with people, pick the best.

    Raises InvalidVideo when not one frame decodes. A file that ends before its header says is
    processed as far as it decodes, with `warning` saying so. `progress` gets 0-100 as decoding
    goes, always from the calling thread (it may write to the database). With `identity` every sample
    also feeds the shot and face tracker (each detection gains `track`, the result `tracks`).
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    models = models or detectors()
    dominant_quality = _dominant_quality_setting()
    decoder = SampledDecoder(path, fps)
    pool = _Pool(top_n)
    scored: list[FrameScore] = []
    tracker = ShotTracker() if identity else None
    dim_tracks = _DimTracks(min_quality) if identity else None
    analysed, reported = 0, -1
    previous_seconds: float | None = None

    def report() -> None:
        nonlocal reported
        if progress is not None and decoder.announced > 0:
            percent = min(99, decoder.frames_decoded * 100 // decoder.announced)
            if percent != reported:
                reported = percent
                progress(percent)

    decoder.start()
    report()
    try:
        while True:
            try:
                item = decoder.samples.get(timeout=0.1)
            except queue.Empty:
                report()
                continue
            report()
            if item is END_OF_CLIP:
                break
            seconds, frame = item
            analysed += 1
            analysis = analyse_frame(models, frame, seconds, dominant_quality=dominant_quality)
            if tracker is not None:
                detections = analysis.score.detections if analysis is not None else []
                keyframe = previous_seconds is not None and decoder.keyframe_between(previous_seconds, seconds)
                track_ids = tracker.observe(seconds, frame, detections, keyframe=keyframe)
                for detection, track in zip(detections, track_ids, strict=True):
                    detection["track"] = track
            previous_seconds = seconds
            if analysis is not None:
                scored.append(analysis.score)
                pool.offer(analysis, frame)
                if dim_tracks is not None:
                    dim_tracks.offer(analysis, frame)
        tracks = tracker.finish() if tracker is not None else []  # waits for the last descriptors
    finally:
        decoder.stop()
        if tracker is not None:
            tracker.close()  # a clip given up half-way leaves no descriptor thread behind
    if decoder.error is not None:
        raise decoder.error

    decoded = decoder.frames_decoded
    if decoded == 0:
        raise InvalidVideo(
            "No picture could be decoded from this video. The file may be damaged or use a codec we "
            "cannot read; export it again as MP4 (H.264) and retry."
        )
    video_fps, announced = decoder.video_fps, decoder.announced
    decoded_seconds = decoded / video_fps
    warning = ""
    if announced > 0 and announced - decoded > max(2, 0.25 * video_fps):
        warning = (
            f"The file ends early: decoded {decoded_seconds:.1f} s of the {announced / video_fps:.1f} s "
            "its header announces."
        )
    last_frame, last_seconds = decoder.last_frame, decoder.last_seconds
    if decoder.last_index != decoded - 1:
        # Only for files that end early: their tail was never converted, so decode to it again.
        frame = read_frame_at(path, decoded - 1)
        if frame is not None:
            last_frame, last_seconds = frame, (decoded - 1) / video_fps
    if progress is not None:
        progress(100)
    return ExtractionResult(
        frames=select_candidates(
            pool.best_first(),
            top_n=top_n,
            min_quality=min_quality,
            dim_characters=dim_tracks.characters(tracks) if dim_tracks is not None else (),
        ),
        frames_analysed=analysed,
        last_frame=last_frame,
        last_frame_seconds=None if last_seconds is None else round(last_seconds, 3),
        warning=warning,
        scored=scored,
        decoded_seconds=round(decoded_seconds, 3),
        tracks=tracks,
    )
