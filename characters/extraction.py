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
      mesh counts as a face.
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
    the pose landmarks) and source (detector | pose+mesh).

Select
    Near-duplicates (perceptual hash within DUPLICATE_HASH_DISTANCE bits) keep the better frame;
    then the best `top_n`, best first. `dominant` = quality above the EXTRACTION_DOMINANT_QUALITY
    setting (90) and a clear single-subject shot: one face, confident, big enough, wholly inside
    the frame, not occluded.
"""
from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .video import InvalidVideo, open_capture

ANALYSIS_LONG_SIDE = 640
FACE_PATCH = 128
MESH_PATCH = 256
MIN_FACE_CONFIDENCE = 0.5
# Below this the detector's find must be confirmed by face mesh (the halves raise false finds).
CONFIRM_BELOW_CONFIDENCE = 0.75
FALLBACK_CONFIDENCE_SCALE = 0.8  # for faces found by pose + face mesh where the detector saw none
PROFILE_YAW_DEGREES = 30.0
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
OCCLUDED_BELOW_INSIDE = 0.85  # part of the face box inside the frame
OCCLUDED_BELOW_VISIBILITY = 0.5  # mean pose visibility of the facial points that should show
VISIBLE = 0.5  # pose landmark visibility that counts as seen

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


@dataclass
class ExtractionResult:
    frames: list[FrameCandidate]  # best first, at most top_n
    frames_analysed: int
    last_frame: np.ndarray | None
    last_frame_seconds: float | None
    warning: str = ""
    # Every sampled frame with a person, in time order, before duplicates and the top-N cut.
    scored: list[FrameScore] = field(default_factory=list)
    decoded_seconds: float = 0.0


# --- MediaPipe models --------------------------------------------------------------------------

class Detectors:
    """The MediaPipe solution objects, made once and reused for every frame.

    All run in static-image mode: sampled frames are a second apart, too far for tracking, and
    no state may leak from one clip to the next. Not thread-safe; `detectors()` keeps one set
    per thread.
    """

    def __init__(self) -> None:
        import mediapipe as mp  # slow import; only where the pipeline runs

        solutions = mp.solutions
        self.face = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=MIN_FACE_CONFIDENCE
        )
        self.mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.5
        )
        # model_complexity=1 is the only pose model inside the wheel; 0 and 2 would be downloaded.
        self.pose = solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=False, min_detection_confidence=0.5
        )

    def close(self) -> None:
        for solution in (self.face, self.mesh, self.pose):
            solution.close()


_per_thread = threading.local()


def detectors() -> Detectors:
    """This thread's models (a Celery worker process or a command keeps them between clips)."""
    models = getattr(_per_thread, "detectors", None)
    if models is None:
        models = _per_thread.detectors = Detectors()
    return models


# --- Geometry helpers ----------------------------------------------------------------------------

@dataclass
class Box:
    """Relative to the frame (0-1); may extend past the edges when a face is cut."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def inside_fraction(self) -> float:
        """The part of the box's area inside the frame."""
        iw = max(0.0, min(self.x + self.w, 1.0) - max(self.x, 0.0))
        ih = max(0.0, min(self.y + self.h, 1.0) - max(self.y, 0.0))
        return iw * ih / self.area if self.area > 0 else 0.0

    def overlap_of_smaller(self, other: Box) -> float:
        iw = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        ih = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        smaller = min(self.area, other.area)
        return iw * ih / smaller if smaller > 0 else 0.0

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        mx, my = self.w * margin, self.h * margin
        return self.x - mx <= x <= self.x + self.w + mx and self.y - my <= y <= self.y + self.h + my


def _square_crop(image: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """A square crop centred on `box`, `scale` times its longer side, clipped to the image."""
    ih, iw = image.shape[:2]
    side = max(box.w * iw, box.h * ih) * scale
    cx, cy = box.cx * iw, box.cy * ih
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1, y1 = min(iw, round(cx + side / 2)), min(ih, round(cy + side / 2))
    return image[y0:y1, x0:x1]


# --- Detection -------------------------------------------------------------------------------

# Landmark names as MediaPipe gives them: the subject's own right and left.
_KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")
# Face mesh indices standing in for the same points when the face came from the mesh.
_MESH_KEYPOINTS = {
    "right_eye": (33, 133), "left_eye": (263, 362), "nose_tip": (1,), "mouth_center": (13, 14),
    "right_ear": (234,), "left_ear": (454,),
}
# Pose landmarks (subject's side) of the face that should be visible for each pose class.
_POSE_NOSE, _POSE_LEFT_EYE, _POSE_RIGHT_EYE, _POSE_LEFT_EAR, _POSE_RIGHT_EAR = 0, 2, 5, 7, 8
_POSE_MOUTH_LEFT, _POSE_MOUTH_RIGHT = 9, 10
_FACE_POINTS_SEEN = {
    "frontal": (_POSE_NOSE, _POSE_LEFT_EYE, _POSE_RIGHT_EYE, _POSE_MOUTH_LEFT, _POSE_MOUTH_RIGHT),
    "right": (_POSE_NOSE, _POSE_RIGHT_EYE, _POSE_MOUTH_RIGHT),  # their right cheek faces us
    "left": (_POSE_NOSE, _POSE_LEFT_EYE, _POSE_MOUTH_LEFT),
}
_HEAD_POINTS = tuple(range(11))
_SHOULDERS, _HIPS, _ANKLES = (11, 12), (23, 24), (27, 28)


@dataclass
class Face:
    box: Box
    confidence: float
    keypoints: dict[str, tuple[float, float]]  # relative
    source: str = "detector"  # detector | pose+mesh
    yaw: float | None = None
    pose: str = "frontal"
    occluded: bool = False
    full_body: bool = False

    @property
    def prominence(self) -> float:
        return self.box.area * self.box.inside_fraction() * self.confidence


def _tiles(width: int, height: int) -> list[tuple[float, float, float, float]]:
    """Two overlapping near-square halves of a wide or tall picture (relative x0, y0, x1, y1)."""
    aspect = width / height
    if aspect >= 1.25:
        part = min(1.0, 1.1 / aspect + 0.05)
        return [(0.0, 0.0, part, 1.0), (1.0 - part, 0.0, 1.0, 1.0)]
    if aspect <= 0.8:
        part = min(1.0, 1.1 * aspect + 0.05)
        return [(0.0, 0.0, 1.0, part), (0.0, 1.0 - part, 1.0, 1.0)]
    return []


def _run_face_detector(models: Detectors, rgb: np.ndarray, region) -> list[Face]:
    x0, y0, x1, y1 = region
    h, w = rgb.shape[:2]
    if (x0, y0, x1, y1) != (0.0, 0.0, 1.0, 1.0):
        rgb = np.ascontiguousarray(rgb[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)])
    tw, th = x1 - x0, y1 - y0
    found = []
    for det in models.face.process(rgb).detections or []:
        rb = det.location_data.relative_bounding_box
        box = Box(x0 + rb.xmin * tw, y0 + rb.ymin * th, rb.width * tw, rb.height * th)
        keypoints = {
            name: (x0 + kp.x * tw, y0 + kp.y * th)
            for name, kp in zip(_KEYPOINT_NAMES, det.location_data.relative_keypoints, strict=False)
        }
        found.append((Face(box, float(det.score[0]), keypoints), (x0, y0, x1, y1)))
    # A box touching an inner edge of a tile is a face cut by the tiling, not by the frame.
    kept = []
    for face, (tx0, ty0, tx1, ty1) in found:
        b, eps = face.box, 0.005
        cut = (
            (tx0 > 0 and b.x <= tx0 + eps) or (tx1 < 1 and b.x + b.w >= tx1 - eps)
            or (ty0 > 0 and b.y <= ty0 + eps) or (ty1 < 1 and b.y + b.h >= ty1 - eps)
        )
        if not cut:
            kept.append(face)
    return kept


def detect_faces(models: Detectors, rgb: np.ndarray) -> list[Face]:
    """Faces in the picture, from the whole picture and its halves, overlapping finds merged."""
    h, w = rgb.shape[:2]
    candidates: list[Face] = []
    for region in [(0.0, 0.0, 1.0, 1.0), *_tiles(w, h)]:
        candidates.extend(_run_face_detector(models, rgb, region))
    candidates.sort(key=lambda f: f.confidence, reverse=True)
    merged: list[Face] = []
    for face in candidates:
        if all(face.box.overlap_of_smaller(other.box) < 0.5 for other in merged):
            merged.append(face)
    return merged


def _mesh_landmarks(models: Detectors, frame_bgr: np.ndarray, box: Box):
    """Face mesh landmarks on a crop around `box`, as (points in frame-relative x/y, crop z), or None."""
    crop = _square_crop(frame_bgr, box, 1.6)
    if crop.shape[0] < 16 or crop.shape[1] < 16:
        return None
    patch = cv2.resize(crop, (MESH_PATCH, MESH_PATCH), interpolation=cv2.INTER_AREA)
    result = models.mesh.process(cv2.cvtColor(patch, cv2.COLOR_BGR2RGB))
    if not result.multi_face_landmarks:
        return None
    ih, iw = frame_bgr.shape[:2]
    # Map crop-relative points back to the frame.
    side = max(box.w * iw, box.h * ih) * 1.6
    cx, cy = box.cx * iw, box.cy * ih
    ox, oy = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    ch, cw = crop.shape[:2]
    pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
    frame_xy = np.column_stack(((ox + pts[:, 0] * cw) / iw, (oy + pts[:, 1] * ch) / ih))
    crop_xyz = pts * np.array([cw, ch, cw])  # z shares x's scale
    return frame_xy, crop_xyz


def _yaw_from_mesh(crop_xyz: np.ndarray) -> float:
    """Degrees, positive when the nose points to the right edge of the picture.

    The line between the outer eye corners turns with the head: its depth difference over its
    width gives the yaw. (Landmark 33 is the subject's right eye, on the left of a frontal face.)
    """
    dx, dz = crop_xyz[263, 0] - crop_xyz[33, 0], crop_xyz[263, 2] - crop_xyz[33, 2]
    return math.degrees(math.atan2(dz, dx))


def _yaw_from_keypoints(face: Face) -> float | None:
    """A rougher yaw from the detector's six points: where the nose sits between the ears."""
    kp = face.keypoints
    if not all(k in kp for k in ("nose_tip", "right_ear", "left_ear")):
        return None
    ear_a, ear_b, nose = kp["right_ear"][0], kp["left_ear"][0], kp["nose_tip"][0]
    span = ear_b - ear_a
    if abs(span) < 1e-6:
        return None
    offset = (nose - (ear_a + ear_b) / 2) / abs(span)  # about +-0.5 at full profile
    return math.degrees(math.asin(max(-1.0, min(1.0, 2 * offset))))


def pose_class(yaw: float | None) -> str:
    if yaw is None or abs(yaw) < PROFILE_YAW_DEGREES:
        return "frontal"
    return "right" if yaw > 0 else "left"


def _visible_in_frame(lm, margin: float = 0.0) -> bool:
    return lm.visibility >= VISIBLE and -margin <= lm.x <= 1 + margin and -margin <= lm.y <= 1 + margin


def _face_from_pose_and_mesh(models: Detectors, frame_bgr: np.ndarray, landmarks) -> Face | None:
    """A face the detector missed, where the pose model sees a head and face mesh confirms it."""
    head = [landmarks[i] for i in _HEAD_POINTS if _visible_in_frame(landmarks[i])]
    if landmarks[_POSE_NOSE].visibility < VISIBLE or len(head) < 4:
        return None
    xs, ys = [p.x for p in head], [p.y for p in head]
    size = max(max(xs) - min(xs), max(ys) - min(ys)) * 1.6
    if size <= 0.01:
        return None
    guess = Box(landmarks[_POSE_NOSE].x - size / 2, landmarks[_POSE_NOSE].y - size / 2, size, size)
    mesh = _mesh_landmarks(models, frame_bgr, guess)
    if mesh is None:
        return None
    frame_xy, crop_xyz = mesh
    x0, y0 = (float(v) for v in frame_xy.min(axis=0))
    x1, y1 = (float(v) for v in frame_xy.max(axis=0))
    keypoints = {
        name: (float(frame_xy[list(idx), 0].mean()), float(frame_xy[list(idx), 1].mean()))
        for name, idx in _MESH_KEYPOINTS.items()
    }
    # Two models agree, but the detector did not: never as confident as a detector's find.
    confidence = FALLBACK_CONFIDENCE_SCALE * float(np.mean([p.visibility for p in head]))
    face = Face(Box(x0, y0, x1 - x0, y1 - y0), confidence, keypoints, source="pose+mesh")
    face.yaw = _yaw_from_mesh(crop_xyz)
    return face


def _full_body(landmarks) -> bool:
    """Head, a shoulder, a hip and an ankle all seen inside the frame."""
    return _visible_in_frame(landmarks[_POSE_NOSE], 0.02) and all(
        any(_visible_in_frame(landmarks[i], 0.02) for i in group) for group in (_SHOULDERS, _HIPS, _ANKLES)
    )


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
    small = frame_bgr if scale >= 1.0 else cv2.resize(
        frame_bgr, (round(fw * scale), round(fh * scale)), interpolation=cv2.INTER_AREA
    )
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    faces = detect_faces(models, rgb)
    pose_result = models.pose.process(rgb)
    body = pose_result.pose_landmarks.landmark if pose_result.pose_landmarks else None
    if not faces and body is not None:
        fallback = _face_from_pose_and_mesh(models, frame_bgr, body)
        if fallback is not None:
            faces = [fallback]
    if not faces:
        return None

    confirmed = []
    for face in faces:
        if face.yaw is None:
            mesh = _mesh_landmarks(models, frame_bgr, face.box)
            if mesh is None and face.confidence < CONFIRM_BELOW_CONFIDENCE:
                continue
            face.yaw = _yaw_from_mesh(mesh[1]) if mesh is not None else _yaw_from_keypoints(face)
        face.pose = pose_class(face.yaw)
        face.occluded = face.box.inside_fraction() < OCCLUDED_BELOW_INSIDE
        confirmed.append(face)
    faces = confirmed
    if not faces:
        return None
    main = max(faces, key=lambda f: f.prominence)
    full_body = False
    if body is not None:
        nose = body[_POSE_NOSE]
        by_prominence = sorted(faces, key=lambda f: -f.prominence)
        owner = next((f for f in by_prominence if f.box.contains(nose.x, nose.y, 0.3)), None)
        full_body = _full_body(body)
        if owner is not None:
            owner.full_body = full_body
            seen = float(np.mean([body[i].visibility for i in _FACE_POINTS_SEEN[owner.pose]]))
            owner.occluded = owner.occluded or seen < OCCLUDED_BELOW_VISIBILITY

    gray_small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    face_crop = _square_crop(frame_bgr, main.box, 1.0)
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
    quality = round(100 * (
        WEIGHTS["sharpness"] * sharpness + WEIGHTS["lighting"] * lighting
        + WEIGHTS["face"] * face_score + WEIGHTS["composition"] * composition
    ))
    quality = max(0, min(100, quality))
    clear_shot = (
        len(faces) == 1 and main.confidence >= CLEAR_SHOT_CONFIDENCE and not main.occluded
        and main.box.inside_fraction() >= 0.99 and main.box.h >= CLEAR_SHOT_MIN_FACE_HEIGHT
        and main.box.w * fw >= CLEAR_SHOT_MIN_FACE_PIXELS
    )
    score = FrameScore(
        seconds=round(seconds, 3), quality=quality,
        sharpness_score=round(sharpness, 4), lighting_score=round(lighting, 4),
        face_score=round(face_score, 4), composition_score=round(composition, 4),
        dominant=quality > dominant_quality and clear_shot,
        pose=main.pose, full_body=bool(full_body), occluded=bool(main.occluded),
        detections=[_detection_dict(f, fw, fh) for f in sorted(faces, key=lambda f: -f.prominence)],
    )
    return FrameAnalysis(score, cv2.img_hash.pHash(gray_small))


def _detection_dict(face: Face, width: int, height: int) -> dict:
    b = face.box
    return {
        "box": {"x": round(b.x * width), "y": round(b.y * height), "width": round(b.w * width),
                "height": round(b.h * height)},
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


# --- The clip --------------------------------------------------------------------------------

def _dominant_quality_setting() -> int:
    from django.conf import settings

    if settings.configured:
        return int(getattr(settings, "EXTRACTION_DOMINANT_QUALITY", DEFAULT_DOMINANT_QUALITY))
    return DEFAULT_DOMINANT_QUALITY


_DONE = object()
TAIL_FRAMES = 2


class SampledDecoder(threading.Thread):
    """Decodes a clip in a background thread and hands over the sampled frames.

    OpenCV releases the GIL while it decodes, so the caller analyses one frame while the next
    ones decode. The queue holds at most two frames (4K frames are 24 MB each). Besides the
    samples it keeps the last frame it could convert, and how far the file decoded.
    """

    def __init__(self, path: Path | str, fps: float) -> None:
        super().__init__(name="clip-decoder", daemon=True)
        self.path = path
        self.interval = 1.0 / fps
        self.cap = open_capture(path)  # raises InvalidVideo in the caller's thread
        self.video_fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0
        self.announced = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frames_decoded = 0
        self.last_frame: np.ndarray | None = None
        self.last_seconds: float | None = None
        self.last_index = -1
        self.error: BaseException | None = None
        self.samples: queue.Queue = queue.Queue(maxsize=2)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            self._decode()
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self.cap.release()
            self._hand_over(_DONE)

    def _hand_over(self, item) -> bool:
        while not self.stopping.is_set():
            try:
                self.samples.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        cap, half_frame, next_sample, index = self.cap, 0.5 / self.video_fps, 0.0, -1
        while not self.stopping.is_set() and cap.grab():
            index += 1
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            seconds = index / self.video_fps if index > 0 and msec <= 0 else msec / 1000.0
            take_sample = seconds >= next_sample - half_frame
            # Convert the frames at the announced end too (headers may be a frame or two off), so the
            # last one is at hand without decoding again.
            at_tail = self.announced <= 0 or index >= self.announced - 1 - TAIL_FRAMES
            if take_sample or at_tail:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                self.last_frame, self.last_seconds, self.last_index = frame, seconds, index
                if take_sample:
                    while next_sample <= seconds + half_frame:
                        next_sample += self.interval
                    if not self._hand_over((seconds, frame)):
                        return
            self.frames_decoded = index + 1

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def _read_frame_at(path: Path | str, index: int) -> np.ndarray | None:
    """Decode up to frame `index` again (only for files that end early) and return it."""
    cap = open_capture(path)
    try:
        for _ in range(index):
            if not cap.grab():
                return None
        ok, frame = cap.read()
        return frame if ok else None
    finally:
        cap.release()


def extract_candidates(
    path: Path | str,
    *,
    fps: float = 1.0,
    top_n: int = 10,
    progress: ProgressCallback | None = None,
    models: Detectors | None = None,
) -> ExtractionResult:
    """Decode `path` at `fps` samples a second, find and score the frames with people, pick the best.

    Raises InvalidVideo when not one frame decodes. A file that ends before its header says is
    processed as far as it decodes, with `warning` saying so. `progress` gets 0-100 as decoding
    goes, always from the calling thread (it may write to the database).
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    models = models or detectors()
    dominant_quality = _dominant_quality_setting()
    decoder = SampledDecoder(path, fps)
    pool = _Pool(top_n)
    scored: list[FrameScore] = []
    analysed, reported = 0, -1

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
            if item is _DONE:
                break
            seconds, frame = item
            analysed += 1
            analysis = analyse_frame(models, frame, seconds, dominant_quality=dominant_quality)
            if analysis is not None:
                scored.append(analysis.score)
                pool.offer(analysis, frame)
    finally:
        decoder.stop()
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
        frame = _read_frame_at(path, decoded - 1)
        if frame is not None:
            last_frame, last_seconds = frame, (decoded - 1) / video_fps
    if progress is not None:
        progress(100)
    return ExtractionResult(
        frames=pool.best_first(),
        frames_analysed=analysed,
        last_frame=last_frame,
        last_frame_seconds=None if last_seconds is None else round(last_seconds, 3),
        warning=warning,
        scored=scored,
        decoded_seconds=round(decoded_seconds, 3),
    )
