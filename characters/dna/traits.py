"""Traits of the character's face measured on its pictures: glasses, facial hair, hair length class.

Each reading is taken on one SubjectView (the face mesh's points in that view) and gives a class
with the figures behind it, or nothing when the view cannot show the trait (a turned or small face,
a cut frame, no hair colour); between a clear yes and a clear no the reading is "not measured"
rather than a guess. `measure_traits` takes the most common class over the frames that measured
it. Pure functions, like images.py; the thresholds were set on the suite's fixtures
(tests/characters/dna/test_dna_traits.py).
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from characters.dna.images import SubjectView, _dominant_lab, _lab

TRAITS = ("glasses", "facial_hair", "hair_length")
# Face mesh points (MediaPipe's 468-point topology).
_EYE_OUTER, _EYE_INNER = (33, 263), (133, 362)
_EYE_TOPS = (159, 386)
_CHEEKS = (50, 280)
_MOUTH_CORNERS = (61, 291)
_LOWER_LIP, _CHIN, _SUBNASALE, _UPPER_LIP, _FOREHEAD_TOP = 17, 152, 2, 0, 10

MAX_YAW = 25.0  # degrees; beyond this one side of the face is foreshortened
MIN_EYE_DISTANCE = 30.0  # pixels between the outer eye corners; smaller faces have no readable bridge

# Glasses: horizontal-edge energy on the nose bridge and under the eyes (where a frame's bridge and
# lower rims cross), over the cheeks' (+ a floor, so flat drawn faces do not divide by ~0).
EDGE_FLOOR = 2.0
GLASSES_AT = 2.0
NO_GLASSES_BELOW = 1.2
# Facial hair: how much darker (8-bit Lab L) and more textured than the cheeks the chin and upper lip are.
HAIR_DARKER = 30.0
LIGHT_FLOOR = 10.0
HAIR_TEXTURE = 1.5
SHAVEN_DARKER_BELOW = 12.0
SHAVEN_TEXTURE_BELOW = 1.8
# Hair length: how far the hair reaches below the chin, in face heights (forehead top to chin).
HAIR_TOLERANCE = 20.0  # Lab distance to the measured hair colour that still counts as hair
MEDIUM_FROM, LONG_FROM = 0.15, 0.9
CLOTHES_LIKE_HAIR = 25.0  # Lab distance between the hair colour and a main clothing colour under which they are alike


def _box(values: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = values.shape[:2]
    xa, xb = int(max(0, round(x0))), int(min(w, round(x1)))
    ya, yb = int(max(0, round(y0))), int(min(h, round(y1)))
    return values[ya:yb, xa:xb]


def _frontal(view: SubjectView) -> bool:
    pts = view.landmarks
    if pts is None or view.yaw is None or abs(view.yaw) > MAX_YAW:
        return False
    return float(np.linalg.norm(pts[_EYE_OUTER[1]] - pts[_EYE_OUTER[0]])) >= MIN_EYE_DISTANCE


def _cheek_boxes(pts: np.ndarray, eye_distance: float) -> list[tuple[float, float, float, float]]:
    # Just above the cheek points: below a glasses rim, above where a beard starts.
    return [
        (
            pts[i, 0] - 0.08 * eye_distance,
            pts[i, 1] - 0.04 * eye_distance,
            pts[i, 0] + 0.08 * eye_distance,
            pts[i, 1] + 0.08 * eye_distance,
        )
        for i in _CHEEKS
    ]


def glasses_reading(view: SubjectView) -> dict | None:
    """{value: glasses | no_glasses | None, edge_ratio, bridge, rims, cheeks} or None when not readable."""
    if not _frontal(view):
        return None
    pts = view.landmarks
    assert pts is not None
    gray = cv2.cvtColor(view.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)) / 8.0  # grey levels per pixel
    ed = float(np.linalg.norm(pts[_EYE_OUTER[1]] - pts[_EYE_OUTER[0]]))
    eye_y = float(pts[[*_EYE_OUTER, *_EYE_INNER], 1].mean())
    a, b = float(pts[_EYE_INNER[0], 0]), float(pts[_EYE_INNER[1], 0])
    gap = b - a
    bridge = _box(gy, a + 0.2 * gap, eye_y - 0.22 * ed, b - 0.2 * gap, eye_y + 0.08 * ed)
    rims = [
        _box(gy, pts[i, 0] - 0.12 * ed, eye_y + 0.1 * ed, pts[i, 0] + 0.12 * ed, eye_y + 0.3 * ed) for i in _EYE_TOPS
    ]
    cheeks = [_box(gy, *c) for c in _cheek_boxes(pts, ed)]
    if min(p.size for p in (bridge, *rims, *cheeks)) < 4:
        return None
    bridge_e = float(bridge.mean())
    rims_e = float(np.mean([r.mean() for r in rims]))
    cheeks_e = float(np.mean([c.mean() for c in cheeks]))
    ratio = (bridge_e + rims_e) / 2 / (cheeks_e + EDGE_FLOOR)
    value = "glasses" if ratio >= GLASSES_AT else "no_glasses" if ratio < NO_GLASSES_BELOW else None
    return {
        "value": value,
        "edge_ratio": round(ratio, 2),
        "bridge": round(bridge_e, 2),
        "rims": round(rims_e, 2),
        "cheeks": round(cheeks_e, 2),
    }


def facial_hair_reading(view: SubjectView) -> dict | None:
    """{value: beard | moustache | clean_shaven | None, chin_darker, chin_texture, lip_darker, lip_texture}."""
    if not _frontal(view):
        return None
    pts = view.landmarks
    assert pts is not None
    lightness = _lab(view.image)[..., 0]
    gray = cv2.cvtColor(view.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    texture = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 1.5))
    ed = float(np.linalg.norm(pts[_EYE_OUTER[1]] - pts[_EYE_OUTER[0]]))
    mx0, mx1 = float(pts[_MOUTH_CORNERS[0], 0]), float(pts[_MOUTH_CORNERS[1], 0])
    mw = mx1 - mx0
    lip, chin = float(pts[_LOWER_LIP, 1]), float(pts[_CHIN, 1])
    nose, upper = float(pts[_SUBNASALE, 1]), float(pts[_UPPER_LIP, 1])
    zones = {
        "chin": (mx0 + 0.15 * mw, lip + 0.25 * (chin - lip), mx1 - 0.15 * mw, chin - 0.15 * (chin - lip)),
        "lip": (mx0 + 0.25 * mw, nose + 0.2 * (upper - nose), mx1 - 0.25 * mw, upper - 0.1 * (upper - nose)),
    }
    cheeks = _cheek_boxes(pts, ed)
    cheek_l = float(np.median(np.concatenate([_box(lightness, *c).ravel() for c in cheeks])))
    cheek_t = float(np.mean(np.concatenate([_box(texture, *c).ravel() for c in cheeks])))
    figures: dict[str, float] = {}
    for name, zone in zones.items():
        light, tex = _box(lightness, *zone), _box(texture, *zone)
        if light.size < 4:
            return None
        zone_l = float(np.median(light))
        figures[f"{name}_darker"] = round(cheek_l - zone_l, 1)
        # Texture relative to lightness (a shadow darkens skin and its grain alike; hair adds grain).
        figures[f"{name}_texture"] = round(
            (float(tex.mean()) / (zone_l + LIGHT_FLOOR)) / ((cheek_t + 0.5) / (cheek_l + LIGHT_FLOOR)), 2
        )

    def hairy(name: str) -> bool:
        return figures[f"{name}_darker"] >= HAIR_DARKER and figures[f"{name}_texture"] >= HAIR_TEXTURE

    def bare(name: str) -> bool:
        return figures[f"{name}_darker"] < SHAVEN_DARKER_BELOW and figures[f"{name}_texture"] < SHAVEN_TEXTURE_BELOW

    # The upper lip's edge is textured on any face, so only its darkness says "bare" there.
    lip_bare = figures["lip_darker"] < SHAVEN_DARKER_BELOW
    value = None
    if hairy("chin"):
        value = "beard"
    elif hairy("lip") and bare("chin"):
        value = "moustache"
    elif bare("chin") and lip_bare:
        value = "clean_shaven"
    return {"value": value, **figures}


def hair_length_reading(view: SubjectView) -> dict | None:
    """{value: short | medium | long, reach}: how far hair-coloured pixels joined to the hair above the
    face reach below the chin, in face heights, beside the face (not under it, where neck and collar are)."""
    pts = view.landmarks
    hair = view.masks["hair"]
    if pts is None or hair.sum() < 150:
        return None
    h, w = view.image.shape[:2]
    top, chin = float(pts[_FOREHEAD_TOP, 1]), float(pts[_CHIN, 1])
    face_h = chin - top
    x0, x1 = float(pts[:, 0].min()), float(pts[:, 0].max())
    fw = x1 - x0
    if face_h <= 10:
        return None
    lab = _lab(view.image)
    centre = _dominant_lab(view.image, hair, 2)[0][0]
    like = view.person & (np.linalg.norm(lab - centre, axis=2) < HAIR_TOLERANCE)
    ys, xs = np.mgrid[0:h, 0:w]
    beside = (xs >= x0 - 0.8 * fw) & (xs <= x1 + 0.8 * fw)
    under_face = (xs > x0 + 0.2 * fw) & (xs < x1 - 0.2 * fw) & (ys > chin)
    # Not the face itself: a shaded cheek can be hair-coloured.
    oval = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(oval, cv2.convexHull(np.round(pts).astype(np.int32)), (1,))
    candidate = (like & beside & ~under_face & ~oval.astype(bool)) | hair
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    _, labels = cv2.connectedComponents(candidate)
    joined = np.isin(labels, np.unique(labels[hair & (labels > 0)]))
    rows = np.nonzero(joined.sum(axis=1) >= max(3, 0.06 * fw))[0]
    if not len(rows):
        return None
    lowest = int(rows.max())
    reach = (lowest - chin) / face_h
    at_bottom = lowest >= h - 3
    # Below the chin, hair the colour of the clothes (black hair, black coat) cannot be told from them.
    like_clothes = min(_lab_distance(centre, view, view.masks[role] & ~joined) for role in _CLOTHING)
    if reach >= MEDIUM_FROM and like_clothes < CLOTHES_LIKE_HAIR:
        return None
    if reach >= LONG_FROM:
        value = "long"
    elif at_bottom:  # the picture ends before the hair does
        return None
    else:
        value = "medium" if reach >= MEDIUM_FROM else "short"
    return {"value": value, "reach": round(reach, 2), "hair_to_clothes": round(float(min(like_clothes, 999)), 1)}


_CLOTHING = ("clothing_primary", "clothing_secondary")


def _lab_distance(centre: np.ndarray, view: SubjectView, mask: np.ndarray) -> float:
    """Lab distance from `centre` to the nearest main colour under `mask` (inf when it is too small)."""
    if mask.sum() < 150:
        return float("inf")
    return min(float(np.linalg.norm(c - centre)) for c, share in _dominant_lab(view.image, mask, 3) if share >= 0.15)


_READERS = {"glasses": glasses_reading, "facial_hair": facial_hair_reading, "hair_length": hair_length_reading}


def measure_traits(views: list[SubjectView]) -> dict[str, dict]:
    """Per trait the most common class over the frames that measured one: {value, frames, readings}
    (readings: each frame's figures). A trait no frame measured is absent."""
    traits: dict[str, dict] = {}
    for trait, read in _READERS.items():
        readings = []
        for view in views:
            reading = read(view)
            if reading is not None:
                readings.append({"frame": view.key, **reading})
        classes = [r["value"] for r in readings if r["value"]]
        if not classes:
            continue
        value, _ = Counter(classes).most_common(1)[0]
        traits[trait] = {
            "value": value,
            "frames": [r["frame"] for r in readings if r["value"] == value],
            "readings": readings,
        }
    return traits


TRAIT_WORDS = {
    "glasses": {"glasses": "wears glasses", "no_glasses": "no glasses"},
    "facial_hair": {"beard": "beard", "moustache": "moustache", "clean_shaven": "clean-shaven"},
    "hair_length": {"short": "short hair", "medium": "medium-length hair", "long": "long hair"},
}


# Classes that say something is not there: locked (a generation must not add glasses) but kept out
# of the style description, where the word "glasses" would invite them.
ABSENCES = {("glasses", "no_glasses")}


def trait_features(traits: dict[str, dict]) -> list[dict]:
    """Locked-feature records of the measured traits, keyed by trait (like the palette's); an absence
    is marked `absent`."""
    records = []
    for trait in TRAITS:
        value = traits.get(trait, {}).get("value")
        if value in TRAIT_WORDS[trait]:
            record: dict[str, str | bool] = {"feature": TRAIT_WORDS[trait][value], "key": trait, "source": "measured"}
            if (trait, value) in ABSENCES:
                record["absent"] = True
            records.append(record)
    return records


def trait_evidence(trait: str, entry: dict) -> str:
    """What a measured trait rests on, in words for the character page: the median figure over the
    frames that agreed, and how many frames those were."""
    agreed = [r for r in entry.get("readings", []) if r.get("value") == entry.get("value")]
    if not agreed:
        return ""

    def median(key: str) -> float:
        return float(np.median([r[key] for r in agreed]))

    if trait == "glasses":
        figure = f"edge ratio {median('edge_ratio'):.1f} on the nose bridge and under the eyes"
    elif trait == "facial_hair":
        figure = f"chin {median('chin_darker'):.0f} darker and {median('chin_texture'):.1f}x as textured as the cheeks"
    else:
        figure = f"hair ends {median('reach'):+.2f} face heights from the chin"
    return f"{figure}; {len(agreed)} of {len(entry['readings'])} frame(s)"
