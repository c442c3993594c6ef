"""Pictures with known flat colours for the Character DNA tests: a cartoon-like figure made of the
astronaut's head (posterised, its hair and skin repainted in known colours) on a drawn body.

MediaPipe's face detector, face mesh, pose model and selfie segmenter all find this figure, head
to ankles, so it serves as the whole-body fixture the public photos do not have.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

# Known flat colours (RGB hex) of the figure.
HAIR = "#7A2E1E"
SKIN = "#E8B894"
SUIT = "#1F8F7F"
TROUSERS = "#2A2F5A"
SHOES = "#141414"
BACKDROP = "#FFFFFF"  # on a mid-grey backdrop MediaPipe pose loses the ankles of this figure


def _bgr(hex_code: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_code[i : i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def flat_head() -> np.ndarray:
    """The astronaut's head in flat colours: posterised to 8 colours; then, by hand-set geometry, the hair
    (brownish pixels outside her face ellipse, above her chin) painted HAIR, the face ellipse's skin SKIN,
    and the light studio backdrop BACKDROP."""
    photo = astronaut_bgr()
    x0, y0, x1, y1 = 140, 10, 310, 200
    head = photo[y0:y1, x0:x1]
    smooth = cv2.pyrMeanShiftFiltering(head, 12, 30)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, 8, None, (3, 20, 1.0), 2, cv2.KMEANS_PP_CENTERS)
    flat = centres.astype(np.uint8)[labels.ravel()].reshape(head.shape)
    hsv = cv2.cvtColor(smooth, cv2.COLOR_BGR2HSV).astype(np.int32)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    face = ((xs - 224) / 44.0) ** 2 + ((ys - 128) / 58.0) ** 2 <= 1.0
    backdrop = (hsv[..., 1] < 40) & (hsv[..., 2] > 150) & ~face
    brownish = (hsv[..., 0] >= 8) & (hsv[..., 0] <= 30) & (hsv[..., 1] >= 60)
    hair = brownish & ~face & (ys < 150)
    skin = face & brownish & (hsv[..., 2] > 150)
    flat[backdrop] = _bgr(BACKDROP)
    flat[hair] = _bgr(HAIR)
    flat[skin] = _bgr(SKIN)
    return flat


def cartoon_figure(size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    """The whole figure, head to shoes, centred in a portrait frame (BGR)."""
    width, height = size
    sx, sy = width / 720, height / 1280
    canvas = np.full((1280, 720, 3), _bgr(BACKDROP), np.uint8)
    head = flat_head()
    hh, hw = head.shape[:2]
    cx = 360
    cv2.rectangle(canvas, (cx - 30, 240), (cx + 30, 270), _bgr(SKIN), -1)  # neck
    canvas[60 : 60 + hh, cx - hw // 2 : cx - hw // 2 + hw] = head
    cv2.rectangle(canvas, (cx - 120, 262), (cx + 120, 640), _bgr(SUIT), -1)  # torso
    cv2.line(canvas, (cx - 110, 280), (cx - 170, 600), _bgr(SUIT), 50)  # arms
    cv2.line(canvas, (cx + 110, 280), (cx + 170, 600), _bgr(SUIT), 50)
    cv2.circle(canvas, (cx - 172, 615), 26, _bgr(SKIN), -1)  # hands
    cv2.circle(canvas, (cx + 172, 615), 26, _bgr(SKIN), -1)
    cv2.line(canvas, (cx - 60, 640), (cx - 70, 1120), _bgr(TROUSERS), 70)  # legs
    cv2.line(canvas, (cx + 60, 640), (cx + 70, 1120), _bgr(TROUSERS), 70)
    cv2.ellipse(canvas, (cx - 90, 1150), (60, 25), 0, 0, 360, _bgr(SHOES), -1)
    cv2.ellipse(canvas, (cx + 90, 1150), (60, 25), 0, 0, 360, _bgr(SHOES), -1)
    if (sx, sy) != (1, 1):
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    return canvas


def waist_up(figure: np.ndarray) -> np.ndarray:
    """The same figure cut above the knees (hips in, ankles out), padded back to the frame's aspect."""
    h = figure.shape[0]
    return np.ascontiguousarray(figure[: int(h * 0.55)])


def shaded(figure: np.ndarray) -> np.ndarray:
    """The figure with smooth, grain-free shading, as a CG render has (the 3D fixture)."""
    h, w = figure.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.7 + 0.3 * np.sin(xs / 40.0) * np.cos(ys / 50.0)  # shading across each part, as a renderer's
    return np.clip(figure.astype(np.float32) * light[..., None], 0, 255).astype(np.uint8)


def jpeg_round_trip(image: np.ndarray, quality: int = 85) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


# --- The astronaut with glasses, a beard or long hair drawn on (the DNA trait fixtures) ----------
# Positions set by hand on the 512x512 photo: her eyes' centres, jaw and chin, the sides of her head.
_EYES = ((204, 103), (247, 105))
_JAW = [(186, 128), (190, 150), (200, 167), (212, 176), (222, 180), (233, 176), (245, 167), (255, 150), (259, 130)]
_UNDER_MOUTH = [(246, 146), (235, 150), (223, 152), (210, 150), (200, 146)]
_MOUSTACHE = [(203, 139), (212, 134), (223, 135), (235, 134), (244, 139), (236, 140), (223, 139), (210, 140)]
ASTRONAUT_HAIR = "#7A6038"  # a little darker than her crown, as hair falling at the sides is


def with_glasses(image: np.ndarray, colour: str = "#1E1A18", thickness: int = 3) -> np.ndarray:
    """Oval frames round her eyes, a bridge over the nose and the temples towards the ears."""
    out = image.copy()
    c = _bgr(colour)
    for centre in _EYES:
        cv2.ellipse(out, centre, (16, 11), 0, 0, 360, c, thickness, cv2.LINE_AA)
    cv2.line(out, (220, 102), (231, 103), c, thickness, cv2.LINE_AA)
    cv2.line(out, (188, 101), (180, 104), c, thickness, cv2.LINE_AA)
    cv2.line(out, (263, 103), (271, 107), c, thickness, cv2.LINE_AA)
    return out


def _textured_fill(image: np.ndarray, mask: np.ndarray, colour: str, seed: int, strokes: int, length: tuple[int, int]):
    """Fill `mask` with `colour` plus noise and short darker/lighter strokes (hair is never flat)."""
    rng = np.random.default_rng(seed)
    base = np.array(_bgr(colour), float)
    out = image.copy()
    ys, xs = np.nonzero(mask)
    out[mask] = np.clip(base + rng.normal(0, 10, (len(ys), 3)), 0, 255)
    for _ in range(strokes):
        i = rng.integers(len(ys))
        shade = tuple(int(v) for v in np.clip(base * rng.uniform(0.55, 1.45), 0, 255))
        end = (int(xs[i] + rng.integers(-3, 4)), int(ys[i] + rng.integers(*length)))
        cv2.line(out, (int(xs[i]), int(ys[i])), end, shade, 1, cv2.LINE_AA)
    out[~mask] = image[~mask]
    return out


def with_beard(image: np.ndarray, colour: str = "#3B2A20", seed: int = 0) -> np.ndarray:
    """A full beard along the jaw and round the chin, with a moustache."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.array(_JAW + _UNDER_MOUTH)], 1)
    cv2.fillPoly(mask, [np.array(_MOUSTACHE)], 1)
    return _textured_fill(image, mask.astype(bool), colour, seed, int(mask.sum()) // 6, (2, 5))


def with_long_hair(image: np.ndarray, colour: str = ASTRONAUT_HAIR, bottom: int = 340, seed: int = 0) -> np.ndarray:
    """Hair falling from the sides of her head down to `bottom` (340: over the chest; 225: to the shoulders)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    mid = (150 + bottom) // 2
    left = [(150, 80), (185, 95), (182, 150), (186, mid), (180, bottom), (128, bottom + 5), (132, mid), (140, 150)]
    right = [(300, 80), (265, 95), (268, 150), (264, mid), (272, bottom), (325, bottom + 5), (318, mid), (310, 150)]
    cv2.fillPoly(mask, [np.array(left), np.array(right)], 1)
    return _textured_fill(image, mask.astype(bool), colour, seed, 400, (10, 30))
