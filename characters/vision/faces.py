"""Faces and bodies in a picture, with MediaPipe 0.10.21's `mp.solutions` (models inside the wheel,
nothing downloaded): the face detector (whole picture plus overlapping halves for small faces), face
mesh for yaw and hence pose (frontal / left / right), and pose landmarks for the full-body and
occlusion flags. Used by extraction, the DNA and the consistency score.

Pose convention: `pose` names the side of the face the camera sees, which is also where the nose
points in the picture: "right" = the nose points to the right edge of the frame; "left" the mirror
case; "frontal" within PROFILE_YAW_DEGREES of facing the camera.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

MESH_PATCH = 256
MIN_FACE_CONFIDENCE = 0.5
FALLBACK_CONFIDENCE_SCALE = 0.8  # for faces found by pose + face mesh where the detector saw none
PROFILE_YAW_DEGREES = 30.0
VISIBLE = 0.5  # pose landmark visibility that counts as seen


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


def square_crop(image: np.ndarray, box: Box, scale: float) -> np.ndarray:
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
    "right_eye": (33, 133),
    "left_eye": (263, 362),
    "nose_tip": (1,),
    "mouth_center": (13, 14),
    "right_ear": (234,),
    "left_ear": (454,),
}
# Pose landmarks (subject's side) of the face that should be visible for each pose class.
POSE_NOSE, _POSE_LEFT_EYE, _POSE_RIGHT_EYE, _POSE_LEFT_EAR, _POSE_RIGHT_EAR = 0, 2, 5, 7, 8
_POSE_MOUTH_LEFT, _POSE_MOUTH_RIGHT = 9, 10
FACE_POINTS_SEEN = {
    "frontal": (POSE_NOSE, _POSE_LEFT_EYE, _POSE_RIGHT_EYE, _POSE_MOUTH_LEFT, _POSE_MOUTH_RIGHT),
    "right": (POSE_NOSE, _POSE_RIGHT_EYE, _POSE_MOUTH_RIGHT),  # their right cheek faces us
    "left": (POSE_NOSE, _POSE_LEFT_EYE, _POSE_MOUTH_LEFT),
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
        rgb = np.ascontiguousarray(rgb[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)])
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
            (tx0 > 0 and b.x <= tx0 + eps)
            or (tx1 < 1 and b.x + b.w >= tx1 - eps)
            or (ty0 > 0 and b.y <= ty0 + eps)
            or (ty1 < 1 and b.y + b.h >= ty1 - eps)
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


def mesh_landmarks(models: Detectors, frame_bgr: np.ndarray, box: Box):
    """Face mesh landmarks on a crop around `box`, as (points in frame-relative x/y, crop z), or None."""
    crop = square_crop(frame_bgr, box, 1.6)
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


def yaw_from_mesh(crop_xyz: np.ndarray) -> float:
    """Degrees, positive when the nose points to the right edge of the picture.

    The line between the outer eye corners turns with the head: its depth difference over its
    width gives the yaw. (Landmark 33 is the subject's right eye, on the left of a frontal face.)
    """
    dx, dz = crop_xyz[263, 0] - crop_xyz[33, 0], crop_xyz[263, 2] - crop_xyz[33, 2]
    return math.degrees(math.atan2(dz, dx))


def yaw_from_keypoints(face: Face) -> float | None:
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


def face_from_pose_and_mesh(models: Detectors, frame_bgr: np.ndarray, landmarks) -> Face | None:
    """A face the detector missed, where the pose model sees a head and face mesh confirms it."""
    head = [landmarks[i] for i in _HEAD_POINTS if _visible_in_frame(landmarks[i])]
    if landmarks[POSE_NOSE].visibility < VISIBLE or len(head) < 4:
        return None
    xs, ys = [p.x for p in head], [p.y for p in head]
    size = max(max(xs) - min(xs), max(ys) - min(ys)) * 1.6
    if size <= 0.01:
        return None
    guess = Box(landmarks[POSE_NOSE].x - size / 2, landmarks[POSE_NOSE].y - size / 2, size, size)
    mesh = mesh_landmarks(models, frame_bgr, guess)
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
    face.yaw = yaw_from_mesh(crop_xyz)
    return face


def full_body_visible(landmarks) -> bool:
    """Head, a shoulder, a hip and an ankle all seen inside the frame."""
    return _visible_in_frame(landmarks[POSE_NOSE], 0.02) and all(
        any(_visible_in_frame(landmarks[i], 0.02) for i in group) for group in (_SHOULDERS, _HIPS, _ANKLES)
    )
