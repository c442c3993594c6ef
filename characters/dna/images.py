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


# --- Frames in, categories out ------------------------------------------------------------------

@dataclass
class FrameInput:
    """One chosen frame: its pixels and what extraction found in it."""

    key: int  # the candidate frame's id
    image: np.ndarray  # BGR
    detections: list[dict]
    quality: int
    pose: str
    full_body: bool

    @property
    def face(self) -> dict | None:
        return self.detections[0] if self.detections else None


@dataclass
class ReferenceShot:
    kind: str  # full_body | face_closeup | side_profile
    frame_key: int
    image: np.ndarray


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


def categorise(frames: list[FrameInput]) -> list[ReferenceShot]:
    """Pick the full body, face close-up and side profile shots among the winning frames.

    Full body: a frame whose pose landmarks show the whole body, else the widest shot (smallest
    face coverage) — always present, as the DNA schema requires. Face close-up: a crop around the
    face of the best frontal, confident frame, else of the best frame. Side profile: a crop of the
    best left/right frame; left out when no frame shows one.
    """
    with_face = [f for f in frames if f.face]
    if not frames:
        raise ValueError("No frames to build references from.")
    by_quality = sorted(frames, key=lambda f: -f.quality)
    full = [f for f in by_quality if f.full_body] or sorted(
        with_face or frames, key=lambda f: (f.face["coverage"] if f.face else 1.0, -f.quality)
    )
    shots = [ReferenceShot("full_body", full[0].key, full[0].image)]
    frontal = [f for f in by_quality if f.face and f.pose == "frontal" and f.face["confidence"] >= 0.9]
    close_source = (frontal or [f for f in by_quality if f.face])[:1]
    if close_source:
        f = close_source[0]
        shots.append(ReferenceShot("face_closeup", f.key, _crop_around_face(f.image, f.face, 2.0)))  # type: ignore[arg-type]  # picked with a face
    profile = [f for f in by_quality if f.face and f.pose in ("left", "right")]
    if profile:
        f = profile[0]
        shots.append(ReferenceShot("side_profile", f.key, _crop_around_face(f.image, f.face, 2.6)))  # type: ignore[arg-type]  # picked with a face
    return shots


# --- Colour palette -----------------------------------------------------------------------------

_segmenter_local = threading.local()


def person_mask(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the person (MediaPipe selfie segmentation, general model)."""
    segmenter = getattr(_segmenter_local, "segmenter", None)
    if segmenter is None:
        import mediapipe as mp

        segmenter = _segmenter_local.segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(
            model_selection=0
        )
    result = segmenter.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return result.segmentation_mask > 0.5


def _region(shape, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    xa, xb = int(max(0, x0)), int(min(w, x1))
    ya, yb = int(max(0, y0)), int(min(h, y1))
    if xa < xb and ya < yb:
        mask[ya:yb, xa:xb] = True
    return mask


def face_regions(image: np.ndarray, face: dict, person: np.ndarray) -> dict[str, np.ndarray]:
    """Masks for each palette role, placed from the face's landmarks (eyes, mouth, ears).

    With d the eye-to-mouth distance: skin is the cheeks and nose (between the eyes, d/3 to 2d/3
    below them); hair is the crown above the forehead (1.8d to 0.95d above the eyes, between the
    ears) plus the temples beside the face; clothing is the torso, from 1.2d below the mouth down.
    Each is intersected with the person mask so background never counts. Faces without landmarks
    fall back to proportions of the face box.
    """
    lm = face.get("landmarks") or {}
    if all(k in lm for k in ("right_eye", "left_eye", "mouth_center", "right_ear", "left_ear")):
        (rex, rey), (lex, ley) = lm["right_eye"], lm["left_eye"]
        mouth_y = lm["mouth_center"][1]
        eye_y = (rey + ley) / 2
        d = max(mouth_y - eye_y, 1.0)
        ear_l, ear_r = sorted((lm["right_ear"][0], lm["left_ear"][0]))
        eye_l, eye_r = sorted((rex, lex))
        span = max(ear_r - ear_l, 1.0)
        skin = _region(image.shape, eye_l, eye_y + d / 3, eye_r, eye_y + 2 * d / 3)
        hair = _region(image.shape, ear_l, eye_y - 1.8 * d, ear_r, eye_y - 0.95 * d)
        hair |= _region(image.shape, ear_l - 0.15 * span, eye_y - 0.9 * d, ear_l + 0.05 * span, eye_y)
        hair |= _region(image.shape, ear_r - 0.05 * span, eye_y - 0.9 * d, ear_r + 0.15 * span, eye_y)
        torso = _region(image.shape, ear_l - 0.6 * span, mouth_y + 1.2 * d, ear_r + 0.6 * span, mouth_y + 4 * d)
    else:
        b = face["box"]
        x, y, w, h = b["x"], b["y"], b["width"], b["height"]
        skin = _region(image.shape, x + 0.2 * w, y + 0.35 * h, x + 0.8 * w, y + 0.55 * h)
        hair = _region(image.shape, x - 0.15 * w, y - 0.45 * h, x + 1.15 * w, y + 0.05 * h)
        torso = _region(image.shape, x - 0.7 * w, y + 1.35 * h, x + 1.7 * w, y + 3.0 * h)
    return {"skin": skin & person, "hair": hair & person & ~skin, "clothing": torso & person}


MIN_REGION_PIXELS = 150


def _dominant_lab(image: np.ndarray, mask: np.ndarray, k: int) -> list[tuple[np.ndarray, float]]:
    """k-means in Lab over the masked pixels: [(centre Lab, share)], biggest first."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    pixels = lab[mask]
    if len(pixels) > 20000:  # a fixed-seed sample keeps it fast and repeatable
        pixels = pixels[np.random.default_rng(0).choice(len(pixels), 20000, replace=False)]
    k = min(k, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    cv2.setRNGSeed(0)
    # bestLabels=None is allowed; the stubs want an array.
    _, labels, centres = cv2.kmeans(pixels, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    shares = np.bincount(labels.ravel(), minlength=k) / len(labels)
    order = np.argsort(-shares)
    return [(centres[i], float(shares[i])) for i in order]


def _lab8_to_hex(lab8: np.ndarray) -> str:
    pixel = np.clip(np.round(lab8), 0, 255).astype(np.uint8).reshape(1, 1, 3)
    b, g, r = cv2.cvtColor(pixel, cv2.COLOR_LAB2BGR)[0, 0]
    return f"#{r:02X}{g:02X}{b:02X}"


def measure_palette(image: np.ndarray, face: dict) -> dict[str, str]:
    """Palette roles measured in one frame; a role whose region is too small is left out."""
    person = person_mask(image)
    regions = face_regions(image, face, person)
    palette: dict[str, str] = {}
    for role, k in (("skin", 2), ("hair", 2)):
        if regions[role].sum() >= MIN_REGION_PIXELS:
            palette[role] = _lab8_to_hex(_dominant_lab(image, regions[role], k)[0][0])
    if regions["clothing"].sum() >= MIN_REGION_PIXELS:
        clusters = _dominant_lab(image, regions["clothing"], 3)
        palette["clothing_primary"] = _lab8_to_hex(clusters[0][0])
        for centre, share in clusters[1:]:
            if share >= 0.2 and delta_e(_lab8_to_hex(centre), palette["clothing_primary"]) > 15:
                palette["clothing_secondary"] = _lab8_to_hex(centre)
                break
    return palette


def combine_palettes(palettes: list[dict[str, str]]) -> dict[str, str]:
    """Per role, the median colour (in Lab) over the frames that measured it."""
    combined: dict[str, str] = {}
    roles = dict.fromkeys(role for p in palettes for role in p)
    for role in roles:
        labs = np.array([hex_to_lab(p[role]) for p in palettes if role in p])
        combined[role] = lab_to_hex(np.median(labs, axis=0))
    return combined


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
    "black": "#1C1A1A", "dark brown": "#3B2A20", "brown": "#6A4E3A", "light brown": "#9C7A5A",
    "auburn": "#7E3A24", "red": "#A5462A", "strawberry blonde": "#C58F5E", "blonde": "#D8B87A",
    "platinum blonde": "#E8DEC8", "grey": "#8E8C8A", "white": "#EDEBE8",
}
COLOUR_NAMES = {
    "black": "#151515", "charcoal": "#3A3A3A", "grey": "#8A8A8A", "white": "#F2F2F2", "navy blue": "#1F2A5A",
    "blue": "#2F5FBF", "light blue": "#8DB8E8", "teal": "#1F7F7F", "green": "#2F8F3F", "olive": "#6B6B2F",
    "yellow": "#E8D040", "gold": "#C9A23A", "orange": "#E06A20", "red": "#C0282A", "burgundy": "#6A1A2A",
    "pink": "#E890B0", "purple": "#6A3A9A", "brown": "#6A4A2A", "tan": "#C8A47A", "beige": "#E0D0B0",
}


def nearest_name(value: str, names: dict[str, str]) -> str:
    return min(names, key=lambda name: delta_e(value, names[name]))


# --- Words ------------------------------------------------------------------------------------

def character_id_for(name: str, suffix: str) -> str:
    """A slug of `^[a-z0-9_]+$`: accents folded, anything else dropped, never empty."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    base = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:80] or "character"
    return f"{base}_{suffix}"


def _measured_words(palette: dict[str, str]) -> list[str]:
    words = []
    if "hair" in palette:
        words.append(f"{nearest_name(palette['hair'], HAIR_NAMES)} hair")
    if "clothing_primary" in palette:
        outfit = nearest_name(palette["clothing_primary"], COLOUR_NAMES)
        if "clothing_secondary" in palette:
            second = nearest_name(palette["clothing_secondary"], COLOUR_NAMES)
            if second != outfit:
                outfit = f"{outfit} and {second}"
        words.append(f"{outfit} outfit")
    return words


def compose_style(description: str, palette: dict[str, str], shots: list[ReferenceShot]) -> str:
    """The submitter's words first, then measured colours and framing; at most 500 characters."""
    framing = "full-body" if any(s.kind == "full_body" for s in shots) else "portrait"
    extras = ", ".join(_measured_words(palette))
    tail = f". {extras[:1].upper() + extras[1:]}" if extras else ""
    tail += f". Photorealistic, consistent {framing} character design."
    room = MAX_STYLE_CHARS - len(tail)
    text = " ".join((description or "").split()).rstrip(". ")
    if len(text) > room:
        text = text[: max(0, room - 1)].rsplit(" ", 1)[0] + "…"
    return (text + tail).lstrip(". ")[:MAX_STYLE_CHARS]


_SPLIT_FEATURES = re.compile(r"[,;.\n]|\band\b|\bwith\b", re.IGNORECASE)


def locked_features_for(description: str, palette: dict[str, str]) -> list[str]:
    """Phrases from the description plus measured ones; deduplicated, 1 to 10."""
    phrases = [p.strip(" -–—:").strip() for p in _SPLIT_FEATURES.split(description or "")]
    candidates = [p for p in phrases if 3 <= len(p) <= 80 and len(p.split()) >= 2]
    candidates += _measured_words(palette)
    seen: set[str] = set()
    features: list[str] = []
    for phrase in candidates:
        key = phrase.lower()
        if key not in seen:
            seen.add(key)
            features.append(phrase[0].lower() + phrase[1:] if phrase[:2].istitle() else phrase)
    if not features:
        features = ["same face and build as the reference images"]
    return features[:MAX_LOCKED_FEATURES]


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
    *, name: str, character_id: str, shots: list[tuple[str, Image.Image]], palette: dict[str, str],
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
