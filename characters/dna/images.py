"""Image work behind a Character DNA: reference shots, colour palette, words, and the model sheet.

Pure functions over decoded images and the extraction pipeline's detections, so the lock
service, the admin and the tests share them. Nothing here touches the database.
"""

from __future__ import annotations

import io
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import jsonschema
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCHEMA_PATH = Path(__file__).with_name("schemas") / "character_dna.schema.json"
MAX_STYLE_CHARS = 500
MAX_LOCKED_FEATURES = 10
REFERENCE_MIN_SIDE = 512


# --- Frames in ----------------------------------------------------------------------------------


@dataclass
class FrameInput:
    """One chosen frame: its pixels and what extraction found in it."""

    key: int  # the candidate frame's id
    image: np.ndarray  # BGR
    detections: list[dict]
    quality: int
    pose: str
    full_body: bool
    group_id: int | None = None  # the design's character (its character group), when the design names one

    @property
    def face(self) -> dict | None:
        """The face the design is about: the one of the design's character group; without a group, or
        in a frame not yet grouped, the frame's main face (extraction puts it first). None when the
        frame is grouped but the character is not in it, or when the character is marked (a box,
        not a face)."""
        if not self.detections or marked_box(self):
            return None
        if self.group_id is not None and any(d.get("group_id") is not None for d in self.detections):
            return next((d for d in self.detections if d.get("group_id") == self.group_id), None)
        return self.detections[0]

    @property
    def face_pose(self) -> str:
        """The pose of that face (the frame's `pose` is its main face's)."""
        face = self.face
        return (face.get("pose") if face else None) or self.pose


@dataclass
class ReferenceShot:
    kind: str  # full_body | face_closeup | side_profile
    frame_key: int
    image: np.ndarray
    coverage: str  # what the picture really shows: full_body | upper_body | head_and_shoulders | face


# --- The subject in one frame: masks per region -------------------------------------------------

COVERAGES = ("full_body", "upper_body", "head_and_shoulders", "face")
REGIONS = ("skin", "hair", "clothing_primary", "clothing_secondary")
# Face mesh points of the face oval, in order around the face (MediaPipe's FACEMESH_FACE_OVAL).
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
_EYE_CORNERS = (33, 263)
_NOSE_TIP = 1
_POSE_NOSE, _SHOULDERS, _HIPS, _ANKLES = 0, (11, 12), (23, 24), (27, 28)
POSE_VISIBLE = 0.5
# A pixel within this distance (OpenCV 8-bit Lab) of the frame's skin colour counts as skin, so bare
# shoulders or hands never become "clothing".
SKIN_TOLERANCE = 22.0
# A region is measured in a frame only when it has at least this many pixels, as a share of the
# face oval's area (and never under MIN_REGION_PIXELS): a sliver of hair is not a hair colour.
MIN_REGION_SHARE = {"skin": 0.25, "hair": 0.12, "clothing_primary": 0.5, "clothing_secondary": 0.3}
MIN_REGION_PIXELS = 150
SECONDARY_MIN_DELTA_E = 15.0


@dataclass
class SubjectView:
    """The character in one frame: region masks, what the pose model says is in the frame."""

    key: int
    image: np.ndarray  # BGR: the frame, or a window around the main face when the frame has several
    masks: dict[str, np.ndarray]
    face_area: float
    coverage: str
    person: np.ndarray
    # Face mesh points in the window's pixels, and the yaw they give (None when the mesh found no face).
    landmarks: np.ndarray | None = None
    yaw: float | None = None


_segmenter_local = threading.local()


def person_mask(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the person (MediaPipe selfie segmentation, general model)."""
    segmenter = getattr(_segmenter_local, "segmenter", None)
    if segmenter is None:
        import mediapipe as mp

        segmenter = _segmenter_local.segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    result = segmenter.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return result.segmentation_mask > 0.5


def _subject_window(image: np.ndarray, face: dict, several: bool) -> tuple[np.ndarray, int, int]:
    """With several faces, a window around the main face (3 face widths each side, down to the bottom),
    so the segmenter and pose model look at that person; else the whole frame."""
    if not several:
        return image, 0, 0
    h, w = image.shape[:2]
    b = face["box"]
    x0 = int(max(0, b["x"] + b["width"] / 2 - 3 * b["width"]))
    x1 = int(min(w, b["x"] + b["width"] / 2 + 3 * b["width"]))
    y0 = int(max(0, b["y"] - b["height"]))
    return np.ascontiguousarray(image[y0:h, x0:x1]), x0, y0


def cut_by_bottom_edge(person: np.ndarray) -> bool:
    """The person runs off the bottom of the picture (legs cut), whatever the pose model guessed."""
    h = person.shape[0]
    return bool(person[h - max(2, h // 100) :].mean() > 0.01)


def coverage_from_pose(landmarks, person: np.ndarray | None = None) -> str:
    """What the picture shows of the body: head to ankles, down to the hips, or less.

    The pose model places ankles even below a cut frame, and on drawn figures it can squeeze them
    into the picture; so a full body also needs the person mask to end above the bottom edge.
    """
    if landmarks is None:
        return "head_and_shoulders"

    def seen(i: int) -> bool:
        p = landmarks[i]
        return p.visibility >= POSE_VISIBLE and 0.0 <= p.x <= 1.0 and 0.0 <= p.y <= 1.0

    if seen(_POSE_NOSE) and any(seen(i) for i in _ANKLES) and (person is None or not cut_by_bottom_edge(person)):
        return "full_body"
    if any(seen(i) for i in _HIPS):
        return "upper_body"
    return "head_and_shoulders"


def _polygon_mask(shape, points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)  # type: ignore[call-overload]  # a scalar colour is fine
    return mask.astype(bool)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)


def view_subject(key: int, image: np.ndarray, face: dict, several_faces: bool = False) -> SubjectView:
    """Region masks of the character whose face is `face`.

    skin: the face mesh's face oval below the brows (an ellipse in the detector's box when the
    mesh finds no face); hair: the person mask above and beside the face, minus the face and
    skin-coloured pixels; clothing_primary: the torso between the pose model's shoulders and hips,
    minus skin-coloured pixels; clothing_secondary: the rest of the person (arms, accessories).
    A region the models cannot place (no shoulders seen, say) stays empty.
    """
    from characters.vision import faces as vision

    window, ox, oy = _subject_window(image, face, several_faces)
    h, w = window.shape[:2]
    models = vision.detectors()
    b = face["box"]
    box = vision.Box((b["x"] - ox) / w, (b["y"] - oy) / h, b["width"] / w, b["height"] / h)
    mesh = vision.mesh_landmarks(models, window, box)
    pts, yaw = None, None
    if mesh is not None:
        pts = mesh[0] * np.array([w, h])
        yaw = vision.yaw_from_mesh(mesh[1])
        oval_pts = pts[list(FACE_OVAL)]
        brow_y = float(pts[list(_EYE_CORNERS), 1].mean()) - 0.08 * (oval_pts[:, 1].max() - oval_pts[:, 1].min())
        nose_y = float(pts[_NOSE_TIP, 1])
    else:
        cx, cy = (b["x"] - ox) + b["width"] / 2, (b["y"] - oy) + b["height"] / 2
        angles = np.linspace(0, 2 * np.pi, 36, endpoint=False)
        oval_pts = np.column_stack((cx + 0.45 * b["width"] * np.cos(angles), cy + 0.55 * b["height"] * np.sin(angles)))
        brow_y, nose_y = cy - 0.1 * b["height"], cy + 0.1 * b["height"]
    oval = _polygon_mask(window.shape, oval_pts)
    fx0, fy0 = oval_pts.min(axis=0)
    fx1, fy1 = oval_pts.max(axis=0)
    fw, fh = fx1 - fx0, fy1 - fy0
    person = person_mask(window)
    ys, xs = np.mgrid[0:h, 0:w]

    lab = _lab(window)
    skin = oval & person & (ys >= brow_y)
    skin_like = np.zeros_like(skin)
    if skin.sum() >= MIN_REGION_PIXELS:
        centre = _dominant_lab(window, skin, 2)[0][0]
        skin_like = np.linalg.norm(lab - centre, axis=2) < SKIN_TOLERANCE
    pad = max(3, int(0.04 * fw)) | 1
    face_zone = cv2.dilate(oval.astype(np.uint8), np.ones((pad, pad), np.uint8)).astype(bool)

    head_band = (xs >= fx0 - 0.45 * fw) & (xs <= fx1 + 0.45 * fw) & (ys >= fy0 - 0.9 * fh) & (ys <= nose_y)
    hair = person & head_band & ~face_zone & ~skin_like

    body = models.pose.process(cv2.cvtColor(window, cv2.COLOR_BGR2RGB)).pose_landmarks
    landmarks = body.landmark if body is not None else None
    coverage = coverage_from_pose(landmarks, person)
    torso = np.zeros_like(skin)
    if landmarks is not None and all(landmarks[i].visibility >= POSE_VISIBLE for i in _SHOULDERS):
        quad = np.array([(landmarks[i].x * w, landmarks[i].y * h) for i in (11, 12, 24, 23)])
        torso = _polygon_mask(window.shape, quad) & person & ~skin_like & ~face_zone
    rest = person & ~torso & ~head_band & ~face_zone & ~skin_like & (ys > fy1)
    masks = {"skin": skin, "hair": hair, "clothing_primary": torso, "clothing_secondary": rest}
    return SubjectView(key, window, masks, float(oval.sum()), coverage, person, pts, yaw)


def _dominant_lab(image: np.ndarray, mask: np.ndarray, k: int) -> list[tuple[np.ndarray, float]]:
    """k-means in Lab over the masked pixels: [(centre Lab, share)], biggest first."""
    return _dominant_of(_lab(image)[mask], k)


def _dominant_of(pixels: np.ndarray, k: int) -> list[tuple[np.ndarray, float]]:
    if len(pixels) > 20000:  # a fixed-seed sample keeps it fast and repeatable
        pixels = pixels[np.random.default_rng(0).choice(len(pixels), 20000, replace=False)]
    k = min(k, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(
        np.ascontiguousarray(pixels, dtype=np.float32), k, None, criteria, 3, cv2.KMEANS_PP_CENTERS
    )  # type: ignore[call-overload]  # bestLabels=None is allowed; the stubs want an array
    shares = np.bincount(labels.ravel(), minlength=k) / len(labels)
    order = np.argsort(-shares)
    return [(centres[i], float(shares[i])) for i in order]


def _lab8_to_hex(lab8: np.ndarray) -> str:
    pixel = np.clip(np.round(lab8), 0, 255).astype(np.uint8).reshape(1, 1, 3)
    b, g, r = cv2.cvtColor(pixel, cv2.COLOR_LAB2BGR)[0, 0]
    return f"#{r:02X}{g:02X}{b:02X}"


_CLUSTERS = {"skin": 2, "hair": 2, "clothing_primary": 3, "clothing_secondary": 3}
PIXELS_PER_FRAME = 6000  # each frame weighs the same in the pooled k-means


def measure_regions(views: list[SubjectView]) -> dict[str, dict]:
    """Per region, the robust dominant colour over all frames: k-means in Lab over the region's pixels
    pooled from every frame where it was seen well enough, the largest cluster's centre.

    Each entry: color, pixels (pixels in the winning cluster), region_pixels, share, frames (candidate
    frame ids used). A region no frame saw well enough is absent: no colour rather than a guess.
    A secondary clothing colour that is the primary's again is dropped.
    """
    measured: dict[str, dict] = {}
    rng = np.random.default_rng(0)
    for role in REGIONS:
        pools, frames, total = [], [], 0
        for view in views:
            mask = view.masks[role]
            n = int(mask.sum())
            if n < max(MIN_REGION_PIXELS, MIN_REGION_SHARE[role] * view.face_area):
                continue
            pixels = _lab(view.image)[mask]
            if len(pixels) > PIXELS_PER_FRAME:
                pixels = pixels[rng.choice(len(pixels), PIXELS_PER_FRAME, replace=False)]
            pools.append(pixels)
            frames.append(view.key)
            total += n
        if not pools:
            continue
        centre, share = _dominant_of(np.concatenate(pools), _CLUSTERS[role])[0]
        measured[role] = {
            "color": _lab8_to_hex(centre),
            "pixels": round(share * total),
            "region_pixels": total,
            "share": round(share, 3),
            "frames": frames,
        }
    primary, secondary = measured.get("clothing_primary"), measured.get("clothing_secondary")
    if secondary and (not primary or delta_e(primary["color"], secondary["color"]) < SECONDARY_MIN_DELTA_E):
        del measured["clothing_secondary"]
    return measured


def palette_from(measured: dict[str, dict]) -> dict[str, str]:
    return {role: entry["color"] for role, entry in measured.items()}


def measure_palette(image: np.ndarray, face: dict) -> dict[str, str]:
    """Palette roles measured in one frame (the consistency score uses this); unseen roles left out."""
    return palette_from(measure_regions([view_subject(0, image, face)]))


def combine_palettes(palettes: list[dict[str, str]]) -> dict[str, str]:
    """Per role, the median colour (in Lab) over pictures that measured it (the consistency score's references)."""
    combined: dict[str, str] = {}
    for role in dict.fromkeys(role for p in palettes for role in p):
        labs = np.array([hex_to_lab(p[role]) for p in palettes if role in p])
        combined[role] = lab_to_hex(np.median(labs, axis=0))
    return combined


# --- A marked character (not a face): its look measured inside the contributor's box --------------
#
# The box says where the subject is, not which of its pixels are the subject: GrabCut, seeded with the box
# (outside it is background, inside it is "probably the subject"), separates the subject from the set behind
# it. Its foreground pixels, pooled over the design's frames as the face regions are, go through k-means in
# Lab; the largest clusters, far enough apart to be different colours, are the body's colours. They say they
# were measured from the marked box (MARKED_SUBJECT), and the DNA carries that as `measured.subject`.

MARKED_SOURCE = "mark"  # `source` of a marked subject's detection (characters.groups.services.MARK_SOURCE)
MARKED_REGIONS = ("body_primary", "body_secondary", "body_accent")
MARKED_CLUSTERS = 5  # k-means clusters over the foreground; at most len(MARKED_REGIONS) of them are kept
# Of the foreground. Measured on the robot of the mark tests: its chest panel of many small random colours
# splits into clusters of 4-11 % each, none a colour of the subject; a real second colour covers more.
MARKED_MIN_SHARE = {"body_primary": 0.0, "body_secondary": 0.15, "body_accent": 0.1}
MARKED_MIN_DELTA_E = SECONDARY_MIN_DELTA_E  # a kept colour differs this much from every colour kept before it
GRABCUT_LONG_SIDE = 320  # px of the window GrabCut runs on (its cost grows with the pixels)
GRABCUT_MARGIN = 0.25  # of the box's size on each side: the background GrabCut learns from
GRABCUT_ITERATIONS = 5
GRABCUT_MIN_FOREGROUND = 0.1  # of the box: less, and GrabCut lost the subject (the frame is left out)
MARKED_REFERENCE_PAD = 0.08  # of the box's size on each side of the reference crop
MARKED_SUBJECT = {
    "kind": "marked",  # CharacterGroup.Kind.MARKED (this module imports no model): Character.is_marked reads it
    "palette": "measured from the marked box: its foreground (GrabCut seeded by the box), k-means in Lab",
}


def marked_box(frame: FrameInput) -> dict | None:
    """The box of the marked subject a frame was kept for (its first detection is a mark's), else None."""
    first = frame.detections[0] if frame.detections else None
    return first["box"] if first and first.get("source") == MARKED_SOURCE and first.get("box") else None


def _clip_box(box: dict, width: int, height: int, pad: float = 0.0) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the box grown by `pad` of its size on each side, inside a width x height frame."""
    dx, dy = round(box["width"] * pad), round(box["height"] * pad)
    x0, y0 = max(0, int(box["x"]) - dx), max(0, int(box["y"]) - dy)
    x1 = min(width, int(box["x"]) + int(box["width"]) + dx)
    y1 = min(height, int(box["y"]) + int(box["height"]) + dy)
    return x0, y0, x1, y1


def marked_foreground(image: np.ndarray, box: dict) -> np.ndarray:
    """The subject's pixels inside `box` (pixels of `image`), as a boolean mask of the whole image.

    GrabCut on a window around the box at most GRABCUT_LONG_SIDE px long; all False when it keeps less
    than GRABCUT_MIN_FOREGROUND of the box (no colour rather than the set's).
    """
    h, w = image.shape[:2]
    full = np.zeros((h, w), bool)
    bx0, by0, bx1, by1 = _clip_box(box, w, h)
    if bx1 - bx0 < 4 or by1 - by0 < 4:
        return full
    x0, y0, x1, y1 = _clip_box(box, w, h, GRABCUT_MARGIN)
    window = image[y0:y1, x0:x1]
    scale = min(1.0, GRABCUT_LONG_SIDE / max(window.shape[:2]))
    small = cv2.resize(window, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else window
    sh, sw = small.shape[:2]
    rx0, ry0 = round((bx0 - x0) * scale), round((by0 - y0) * scale)
    rw, rh = max(2, min(sw - rx0, round((bx1 - bx0) * scale))), max(2, min(sh - ry0, round((by1 - by0) * scale)))
    rect = (rx0, ry0, rw, rh)
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(small, mask, rect, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # a box covering the whole window leaves GrabCut no background to learn from
        return full
    subject = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    subject = cv2.resize(subject, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST).astype(bool)
    full[y0:y1, x0:x1] = subject
    full[:by0], full[by1:], full[:, :bx0], full[:, bx1:] = False, False, False, False
    if full.sum() < GRABCUT_MIN_FOREGROUND * (bx1 - bx0) * (by1 - by0):
        full[:] = False
    return full


def measure_marked_regions(frames: list[FrameInput]) -> dict[str, dict]:
    """The body colours of a marked subject over its frames: each frame's GrabCut foreground, pooled (each
    frame weighing the same), k-means in Lab; the largest clusters, each far enough from those kept before.

    Entries as the face regions' (color, pixels in the cluster, region_pixels, share, frames), named
    body_primary, body_secondary, body_accent; a colour with too small a share is absent.
    """
    rng = np.random.default_rng(0)
    pools, keys, total = [], [], 0
    for frame in frames:
        box = marked_box(frame)
        if box is None:
            continue
        mask = marked_foreground(frame.image, box)
        n = int(mask.sum())
        if n < MIN_REGION_PIXELS:
            continue
        pixels = _lab(frame.image)[mask]
        if len(pixels) > PIXELS_PER_FRAME:
            pixels = pixels[rng.choice(len(pixels), PIXELS_PER_FRAME, replace=False)]
        pools.append(pixels)
        keys.append(frame.key)
        total += n
    if not pools:
        return {}
    measured: dict[str, dict] = {}
    kept: list[str] = []
    for centre, share in _dominant_of(np.concatenate(pools), MARKED_CLUSTERS):
        if len(kept) == len(MARKED_REGIONS):
            break
        role = MARKED_REGIONS[len(kept)]
        colour = _lab8_to_hex(centre)
        if share < MARKED_MIN_SHARE[role] or any(delta_e(colour, other) < MARKED_MIN_DELTA_E for other in kept):
            continue
        kept.append(colour)
        measured[role] = {
            "color": colour,
            "pixels": round(share * total),
            "region_pixels": total,
            "share": round(share, 3),
            "frames": keys,
        }
    return measured


def marked_references(frames: list[FrameInput]) -> list[ReferenceShot]:
    """The reference of a marked subject: its box (a little padded) from the best frame that shows it."""
    marked = [f for f in frames if marked_box(f)]
    if not marked:
        raise ValueError("No marked frames to build references from.")
    best = max(marked, key=lambda f: f.quality)
    h, w = best.image.shape[:2]
    x0, y0, x1, y1 = _clip_box(marked_box(best) or {}, w, h, MARKED_REFERENCE_PAD)
    return [ReferenceShot("full_body", best.key, best.image[y0:y1, x0:x1].copy(), "full_body")]


def marked_subject_view(image: np.ndarray, box: dict, *, seeded_by: dict | None = None):
    """The matcher view (characters.vision.marking.View) of the subject in `box`, on its own pixels: GrabCut's
    foreground, seeded by `seeded_by` (default: the box), so the set behind it counts neither in keypoints nor
    colours; on the whole box when GrabCut keeps too little. None when the box has too few keypoints. Marks
    (their views of the followed frames) and the consistency score (its references) use it."""
    from characters.vision import marking

    foreground = marked_foreground(image, seeded_by or box)
    return marking.make_view(image, box, foreground if foreground.any() else None)


def marked_reference_box(reference: np.ndarray) -> dict:
    """The subject's box in a marked reference (a crop of `marked_references`): the box it was padded around."""
    h, w = reference.shape[:2]
    inner_w, inner_h = round(w / (1 + 2 * MARKED_REFERENCE_PAD)), round(h / (1 + 2 * MARKED_REFERENCE_PAD))
    return {"x": (w - inner_w) // 2, "y": (h - inner_h) // 2, "width": inner_w, "height": inner_h}


def marked_features(palette: dict[str, str]) -> list[dict]:
    """The body colours of a marked subject in words ("orange and blue body"), as measured features."""
    names = list(dict.fromkeys(nearest_name(palette[r], COLOUR_NAMES) for r in MARKED_REGIONS[:2] if r in palette))
    if not names:
        return []
    return [{"feature": f"{' and '.join(names)} body", "key": "body", "source": "measured"}]


# --- Render style: photographic, 3D or 2D animation, from pixel statistics -----------------------

RENDER_STYLES = ("photographic", "3d_animation", "2d_animation")
RENDER_STYLE_WORDS = {
    "photographic": "photographic, live-action look",
    "3d_animation": "3D-animated (CG) look",
    "2d_animation": "2D-animated, flat-coloured look",
}


def render_statistics(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """flat_share: pixels whose 7x7 neighbourhood hardly changes (flat fills); colours: how many
    4-bit-per-channel colours cover 90 % of the pixels; fine_texture: median high-frequency energy
    (grain and texture a camera records, a renderer does not)."""
    if mask is None or mask.sum() < 1000:
        mask = np.ones(image.shape[:2], dtype=bool)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    local_range = cv2.dilate(gray, np.ones((7, 7))) - cv2.erode(gray, np.ones((7, 7)))
    flat_share = float((local_range[mask] <= FLAT_RANGE).mean())
    quant = (image[mask] // 16).astype(np.int32)
    codes = quant[:, 0] * 256 + quant[:, 1] * 16 + quant[:, 2]
    counts = np.sort(np.bincount(codes))[::-1]
    colours = int(np.searchsorted(np.cumsum(counts), 0.9 * counts.sum()) + 1)
    residual = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 1.0))
    return {
        "flat_share": round(flat_share, 3),
        "colours": colours,
        "fine_texture": round(float(np.median(residual[mask])), 3),
    }


FLAT_RANGE = 3  # grey levels; video and JPEG coding leave flat fills within this
# Thresholds set on the fixtures (tests/characters/dna/test_dna_measured.py): photos have flat_share 0.1-0.4 and
# fine texture > 0.5; flat cartoons (after video and JPEG coding) flat_share > 0.7.
FLAT_2D_SHARE = 0.6
SMOOTH_3D_TEXTURE = 0.35


def suggest_render_style(stats: dict[str, float]) -> str:
    if stats["flat_share"] >= FLAT_2D_SHARE:
        return "2d_animation"
    if stats["fine_texture"] < SMOOTH_3D_TEXTURE:
        return "3d_animation"
    return "photographic"


def measure_render_style(views: list[SubjectView]) -> dict:
    """The suggestion over the frames (the most common), with the median statistics behind it."""
    if not views:
        return {}
    per_frame = [render_statistics(v.image, v.person) for v in views]
    votes = [suggest_render_style(s) for s in per_frame]
    stats = {k: float(np.median([s[k] for s in per_frame])) for k in per_frame[0]}
    return {"suggestion": max(RENDER_STYLES, key=votes.count), **stats, "frames": [v.key for v in views]}


# --- Reference shots ----------------------------------------------------------------------------


def _crop_around_face(image: np.ndarray, face: dict, scale: float, drop: float = 0.15) -> np.ndarray:
    """A square crop centred a little below the face centre (to keep the chin and shoulders)."""
    h, w = image.shape[:2]
    box = face["box"]
    side = int(min(max(box["width"], box["height"]) * scale, w, h))
    cx = box["x"] + box["width"] / 2
    cy = box["y"] + box["height"] / 2 + drop * box["height"]
    x0 = int(min(max(cx - side / 2, 0), w - side))
    y0 = int(min(max(cy - side / 2, 0), h - side))
    crop = image[y0 : y0 + side, x0 : x0 + side]
    if side < REFERENCE_MIN_SIDE:
        crop = cv2.resize(crop, (REFERENCE_MIN_SIDE, REFERENCE_MIN_SIDE), interpolation=cv2.INTER_CUBIC)
    return crop


_WIDER = {"full_body": 0, "upper_body": 1, "head_and_shoulders": 2, "face": 3}


def categorise(frames: list[FrameInput], coverage: dict[int, str]) -> list[ReferenceShot]:
    """Pick the full body, face close-up and side profile shots among the winning frames.

    `coverage`: frame key -> what the pose model saw in it. The `full_body` slot (the DNA schema
    requires it) holds the widest shot, labelled with what it really shows: a full body only when
    head to ankles are in the frame. `face` is the character's face in each frame (FrameInput.face).
    Face close-up: a crop around the character's face of the best
    frontal, confident frame, else of the best frame. Side profile: a crop of the best left/right
    frame; left out when no frame shows one.
    """
    if not frames:
        raise ValueError("No frames to build references from.")
    with_face = [f for f in frames if f.face]
    by_quality = sorted(frames, key=lambda f: -f.quality)
    widest = sorted(
        by_quality,
        key=lambda f: (
            _WIDER[coverage.get(f.key, "face" if f.face else "head_and_shoulders")],
            f.face["coverage"] if f.face else 1.0,
        ),
    )[0]
    # With several people in the frame, the window around the character (as measured), not everyone.
    wide_image = (
        _subject_window(widest.image, widest.face, len(widest.detections) > 1)[0] if widest.face else widest.image
    )
    shots = [ReferenceShot("full_body", widest.key, wide_image, coverage.get(widest.key, "head_and_shoulders"))]
    frontal = [f for f in by_quality if f.face and f.face_pose == "frontal" and f.face["confidence"] >= 0.9]
    close_source = (frontal or with_face)[:1]
    if close_source:
        f = close_source[0]
        shots.append(ReferenceShot("face_closeup", f.key, _crop_around_face(f.image, f.face, 2.0), "face"))  # type: ignore[arg-type]  # picked with a face
    profile = [f for f in by_quality if f.face and f.face_pose in ("left", "right")]
    if profile:
        f = profile[0]
        shots.append(ReferenceShot("side_profile", f.key, _crop_around_face(f.image, f.face, 2.6), "face"))  # type: ignore[arg-type]  # picked with a face
    return shots


# --- Colour maths and names ---------------------------------------------------------------------


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    value = value.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def hex_to_lab(value: str) -> np.ndarray:
    """CIE L*a*b* (L 0-100) of a hex colour."""
    from skimage.color import rgb2lab

    return rgb2lab(np.array([[hex_to_rgb(value)]], dtype=np.float64) / 255.0)[0, 0]


def lab_to_hex(lab: np.ndarray) -> str:
    from skimage.color import lab2rgb

    r, g, b = (np.clip(lab2rgb(np.asarray(lab, dtype=np.float64).reshape(1, 1, 3))[0, 0], 0, 1) * 255).round()
    return f"#{int(r):02X}{int(g):02X}{int(b):02X}"


def delta_e(a: str, b: str) -> float:
    """CIEDE2000 colour difference between two hex colours (about 2 is just noticeable)."""
    from skimage.color import deltaE_ciede2000

    return float(deltaE_ciede2000(hex_to_lab(a), hex_to_lab(b)))


HAIR_NAMES = {
    "black": "#1C1A1A",
    "dark brown": "#3B2A20",
    "brown": "#6A4E3A",
    "light brown": "#9C7A5A",
    "auburn": "#7E3A24",
    "red": "#A5462A",
    "strawberry blonde": "#C58F5E",
    "blonde": "#D8B87A",
    "platinum blonde": "#E8DEC8",
    "grey": "#8E8C8A",
    "white": "#EDEBE8",
}
COLOUR_NAMES = {
    "black": "#151515",
    "charcoal": "#3A3A3A",
    "grey": "#8A8A8A",
    "white": "#F2F2F2",
    "navy blue": "#1F2A5A",
    "blue": "#2F5FBF",
    "light blue": "#8DB8E8",
    "teal": "#1F7F7F",
    "green": "#2F8F3F",
    "olive": "#6B6B2F",
    "yellow": "#E8D040",
    "gold": "#C9A23A",
    "orange": "#E06A20",
    "red": "#C0282A",
    "burgundy": "#6A1A2A",
    "pink": "#E890B0",
    "purple": "#6A3A9A",
    "brown": "#6A4A2A",
    "tan": "#C8A47A",
    "beige": "#E0D0B0",
}


def nearest_name(value: str, names: dict[str, str]) -> str:
    return min(names, key=lambda name: delta_e(value, names[name]))


# --- Words ------------------------------------------------------------------------------------


def character_id_for(name: str, suffix: str) -> str:
    """A slug of `^[a-z0-9_]+$`: accents folded, anything else dropped, never empty."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    base = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:80] or "character"
    return f"{base}_{suffix}"


SKIN_TONES = {
    "very fair": "#F3DCCB",
    "fair": "#E8C4A8",
    "light": "#D9AE8C",
    "medium": "#C18E6C",
    "tan": "#A8734E",
    "brown": "#7F5238",
    "dark brown": "#5A3726",
    "deep": "#3D261B",
}
MAX_FEATURE_CHARS = 100


def measured_features(palette: dict[str, str], traits: dict[str, dict] | None = None) -> list[dict]:
    """Features read from the palette, then the measured face traits (characters.dna.traits), each
    {feature, source: measured, key}; `key` says which palette role or trait it follows, so a palette
    correction rewrites exactly these."""
    from characters.dna.traits import trait_features

    features = []
    if "hair" in palette:
        features.append({"feature": f"{nearest_name(palette['hair'], HAIR_NAMES)} hair", "key": "hair"})
    if "skin" in palette:
        features.append({"feature": f"{nearest_name(palette['skin'], SKIN_TONES)} skin", "key": "skin"})
    if "clothing_primary" in palette:
        outfit = nearest_name(palette["clothing_primary"], COLOUR_NAMES)
        if "clothing_secondary" in palette:
            second = nearest_name(palette["clothing_secondary"], COLOUR_NAMES)
            if second != outfit:
                outfit = f"{outfit} and {second}"
        features.append({"feature": f"{outfit} clothing", "key": "clothing"})
    return [{**f, "source": "measured"} for f in features] + trait_features(traits or {}) + marked_features(palette)


def clean_stated_features(items) -> list[str]:
    """A person's "features to keep": trimmed, one space between words, duplicates dropped."""
    cleaned = [" ".join(str(item).split()) for item in items or []]
    return list(dict.fromkeys(item for item in cleaned if item))


def stated_feature_problems(items: list[str], *, required: bool = False) -> list[str]:
    problems = []
    if len(items) > MAX_LOCKED_FEATURES or (required and not items):
        problems.append(f"List 1 to {MAX_LOCKED_FEATURES} features to keep (you listed {len(items)}).")
    long = [item for item in items if len(item) > MAX_FEATURE_CHARS]
    if long:
        problems.append(f"Each feature to keep may be at most {MAX_FEATURE_CHARS} characters: {long[0][:40]}…")
    return problems


FALLBACK_FEATURE = {"feature": "same face and build as the reference images", "source": "default", "key": ""}
# A marked (non-face) character has no face to keep: its shape and colours are what the references show.
MARKED_FALLBACK_FEATURE = {"feature": "same shape and colours as the reference images", "source": "default", "key": ""}


def merge_features(measured: list[dict], current: list[dict], *, marked: bool = False) -> list[dict]:
    """The locked features: measured ones (rewritten from today's palette) in the place they had, then
    everything people stated; at most 10, never empty (the schema needs one). A measured fact a person
    removed stays removed (a `dropped` record, kept at the end)."""
    by_key = {f["key"]: f for f in measured}
    merged, used = [], set()
    for record in current:
        if record.get("source") == "measured":
            fresh = by_key.get(record.get("key"))
            if fresh is not None and fresh["key"] not in used:
                merged.append(fresh)
                used.add(fresh["key"])
        elif record.get("source") == "stated":
            merged.append(record)
    known = {r.get("key") for r in current if r.get("source") == "measured"}
    dropped = {r["key"] for r in current if r.get("source") == "dropped"}
    for fresh in measured:  # measured facts not yet listed (a first lock, a new palette role)
        if fresh["key"] not in used and fresh["key"] not in known and fresh["key"] not in dropped:
            merged.insert(sum(1 for r in merged if r["source"] == "measured"), fresh)
            used.add(fresh["key"])
    seen, out = set(), []
    for record in merged:
        if record["feature"].lower() not in seen:
            seen.add(record["feature"].lower())
            out.append(record)
    out = out[:MAX_LOCKED_FEATURES] or [MARKED_FALLBACK_FEATURE if marked else FALLBACK_FEATURE]
    return out + [r for r in current if r.get("source") == "dropped"]


def locked_texts(records: list[dict]) -> list[str]:
    """The `locked_features` strings of feature records (a dropped measured fact is remembered, not locked)."""
    return [r["feature"] for r in records if r.get("source") != "dropped"]


def compose_style(description: str, features: list[dict], render_style: str) -> str:
    """The submitter's words as written, then the locked features they do not already say, then the
    render style when someone stated it or it was measured; at most 500 characters. Nothing else is
    added: no framing, no "photorealistic"; a measured absence ("no glasses") stays a locked feature only."""
    text = " ".join((description or "").split()).rstrip(". ")
    said = text.lower()
    extra = [
        f["feature"]
        for f in features
        if f.get("source") != "default" and not f.get("absent") and f["feature"].lower() not in said
    ]
    tail = ""
    if extra:
        joined = ", ".join(extra)
        tail += f". {joined[:1].upper() + joined[1:]}"
    if render_style in RENDER_STYLE_WORDS:
        words = RENDER_STYLE_WORDS[render_style]
        tail += f". {words[:1].upper() + words[1:]}"
    tail += "." if (text or tail) else ""
    room = MAX_STYLE_CHARS - len(tail)
    if len(text) > room:
        text = text[: max(0, room - 1)].rsplit(" ", 1)[0] + "…"
    return (text + tail).lstrip(". ")[:MAX_STYLE_CHARS]


# --- dna.json -----------------------------------------------------------------------------------


@cache
def dna_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate_dna(document: dict) -> list[str]:
    """Every way `document` breaks the Character DNA schema, as readable lines (empty when valid)."""
    validator = jsonschema.Draft7Validator(dna_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}" for e in errors]


# --- Model sheet --------------------------------------------------------------------------------


def _font(size: int):
    return ImageFont.load_default(size=size)


def render_model_sheet(
    *,
    name: str,
    character_id: str,
    shots: list[tuple[str, Image.Image]],
    palette: dict[str, str],
    features: list[str],
) -> bytes:
    """One PNG an artist can pin up: references side by side, palette swatches, locked features."""
    tile, pad = 420, 32
    width = max(3, len(shots)) * (tile + pad) + pad
    height = 140 + tile + 60 + 170 + 60 + 34 * max(1, len(features)) + pad
    sheet = Image.new("RGB", (width, height), "#FAFAF7")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 28), name, fill="#1B1B1F", font=_font(48))
    draw.text((pad, 88), f"{character_id} · character model sheet", fill="#6B6B75", font=_font(22))
    y = 140
    for i, (label, img) in enumerate(shots):
        x = pad + i * (tile + pad)
        framed = img.copy()
        framed.thumbnail((tile, tile))
        draw.rectangle((x - 1, y - 1, x + tile, y + tile), outline="#D0D0D6", fill="#EEEEF2")
        sheet.paste(framed, (x + (tile - framed.width) // 2, y + (tile - framed.height) // 2))
        draw.text((x, y + tile + 12), label.replace("_", " ").title(), fill="#1B1B1F", font=_font(24))
    y += tile + 60
    draw.text((pad, y), "Palette", fill="#1B1B1F", font=_font(26))
    for i, (role, hex_code) in enumerate(palette.items()):
        x = pad + i * 210
        draw.rounded_rectangle((x, y + 40, x + 180, y + 90), radius=8, fill=hex_code, outline="#C8C8D0")
        draw.text((x, y + 96), role.replace("_", " "), fill="#3A3A44", font=_font(18))
        draw.text((x, y + 120), hex_code, fill="#6B6B75", font=_font(18))
    y += 170
    draw.text((pad, y), "Locked features", fill="#1B1B1F", font=_font(26))
    for i, feature in enumerate(features):
        draw.text((pad + 8, y + 40 + i * 34), f"- {feature}", fill="#3A3A44", font=_font(22))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


def to_pil(image_bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
