"""The consistency score: how much a video's character looks like the character's reference images.

Measured, never guessed; the same code scores generated jobs and the `score_consistency` command.

Frames
    `samples` frames (at least 3) spread evenly over the video, at (i + 0.5) / samples of its length,
    so neither the first nor the last frame (fades, provider title cards) stands for a whole
    stretch. One decode pass: OpenCV `grab()`s every frame (a short clip often has a single keyframe,
    so each seek would decode from the start again) and `retrieve()`s only the
    sampled ones; each is scored as soon as it is decoded, so memory stays at one frame. A file
    that stops before its header says is planned again over the frames that do decode.

Faces
    MediaPipe's full-range face detector, through the extraction pipeline's `detect_faces` (the
    whole picture plus two overlapping halves of a wide or tall one), on a copy at most 640 px
    long. Chosen by measurement on the test and sample clips (8 frames each) against dlib's HOG
    detector: MediaPipe found a face in every frame that shows a recognisable one (1080p zoom,
    9:16, Gaussian blur, low light, the profile cameraman, both people of the two-people clip);
    HOG missed the cameraman's profile in half the frames (of both profile clips and the
    two-people clip), the motion-blurred frames of the vertical clip and the close-ups cut by the
    frame edge, and found two faces that are not there. dlib's CNN detector found about what
    MediaPipe found, at 1.5-5 s a frame against 15-50 ms. None of them found a face where there
    is no person. An extreme close-up whose eyes touch the top edge can go unfound (one frame of
    the test clip); MediaPipe's short-range model found that one but also "faces" on the coffee
    cup, so it is not used.

Identity (0-1)
    dlib's ResNet face encoder (the CC0 model in `face_recognition_models`) turns a face, aligned
    by dlib's 5-point landmark model on the MediaPipe box, into a 128-d descriptor; identity
    compares descriptors by Euclidean distance. The 5-point model is the one dlib made for this
    alignment and a tenth of the 68-point model's size (each worker thread holds its own copy).
    Measured side by side: within 0.03 of the 68-point model on most frames, better on the dark
    ones (0.41-0.43 against 0.49-0.50), other people as far away (0.79-0.87 against 0.82-0.91).
    MediaPipe's box gives the same descriptor as dlib's own detector's box (0.02-0.04 apart).
    - Distance to the references: the smallest over the references. They are different views of
      one character (full body, close-up, side profile, extra angles), so a frame is the character
      when it matches any view; a mean would mark a frontal frame down for not looking like the
      profile reference.
    - Which face in the frame: the one closest to the references (at most MAX_FACES_PER_FRAME,
      largest first). A frame where the character stands beside someone else is still the
      character; the other person neither helps nor hurts.
    - Distance to identity: 1 at <= 0.35, 0 at >= 0.75, linear between. dlib's encoder puts the
      same person at about 0.1-0.4 and different people at 0.6 and beyond; its usual "same person"
      threshold, 0.6, lands at 0.375 here, so a frame on the fence cannot pass for consistent.
      Measured against a crop of the astronaut's photo: her sharp frames 0.04-0.14; blurred,
      dark, blown up or cut by the frame edge 0.2-0.6; the cameraman 0.75-0.87.
    - No face found: identity 0 and `face_found` False; the frame scores 0 (a character that does
      not show cannot be judged consistent).

Appearance (0-1, only when a palette is given)
    The frame's palette, measured exactly as the Character DNA's was (`characters.dna.measure_palette`:
    selfie segmentation, regions placed from the chosen face's landmarks, k-means in Lab), against
    the DNA palette. Per role shared by both: max(0, 1 - ΔE/40) with ΔE the CIEDE2000 difference
    (about 2 is just noticeable; 40 is a different colour family). Skin and hair compare role to
    role; clothing compares the frame's main clothing colour with the nearer of the DNA's two, since
    framing decides which of them fills the torso region (a close-up shows the collar, a wider shot
    the jacket). Appearance is the mean over the shared roles; None when none could be measured.
    Measured: the astronaut's skin 0.3-1.6 ΔE from her photo, the cameraman's (greyscale) 15-18.

Score
    Per frame: 0.75 identity + 0.25 appearance when appearance was measured, identity alone
    otherwise; identity carries the weight because colour also matches a different person in the
    same costume. Overall: the mean of the frame scores, as an int 0-100; per frame too.

A character that is not a face (`subject="appearance"`: a marked character, see `subject_of`)
    Per sampled frame the character is looked for by appearance, with the marks' own matcher
    (characters.vision.marking.match_frame): ORB keypoints of each reference picture matched into the
    frame (Lowe's ratio test), one RANSAC homography with at least marking.MIN_INLIERS inliers, a
    plausible projected box, and the Lab (a, b) histogram of the found box within
    marking.MAX_COLOUR_DISTANCE (Bhattacharyya) of the reference's. A frame where no reference passes
    is a miss: it scores 0 and lowers the score. A found frame scores
    KEYPOINT_WEIGHT * min(1, inliers / STRONG_INLIERS) + COLOUR_WEIGHT * (1 - colour distance);
    `identity` then holds the keypoint part, `appearance` the colour part, `face_found` "found", and
    `basis` says "appearance". Reference pictures are the DNA's crops of the marked box, so the whole
    picture is the view, and GrabCut (characters.dna.images.marked_subject_view) keeps the set
    around the subject out of its keypoints and colours. STRONG_INLIERS = 90: the robot found in
    another clip of the marks' tests gives 95-186 inliers at 640 px; a robot of the same shape
    painted otherwise, 25 at most and refused by colour (characters.vision.marking).
    Measured (`bench/marks_appearance.py`, 6 samples, the reference: the DNA's crop of the robot on
    another set): the robot throughout 82 (114-152 inliers, colour distance 0.34-0.39); switching to a
    robot painted otherwise halfway 41 (its half: at most 11 inliers, colour 0.86, so misses); none 0.

Cost
    CPU time on this machine class: detection about 15 ms a sampled frame, the descriptor about
    80 ms a face, the palette about 25 ms; decoding about 5 ms a 1080p frame, and every frame is
    decoded. A 5 s clip with 5 samples: about 0.7 s (720p) to 1.3 s (1080p). Models load once per
    thread (MediaPipe through `characters.vision.faces.detectors()`, dlib through `face_models()`,
    0.2 s), and the reference descriptors once per call.

Measured (5 samples, references: a crop of the astronaut's photo; identity only / with her palette)
    test clips: astronaut 69 / 66, cameraman 0 / 12, coffee cup 0 / 0; samples: Ken Burns 100 / 98,
    vertical 88 / 90 (its motion-blurred seconds at 0.59), two people 100 / 99 (her face is found
    beside his in every frame), cameraman 0 / 12, mixed defects 60 / 56 (no one in the last 4 s).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from characters.vision.faces import Face, detect_faces, detectors
from characters.vision.identity import disagreeing_pairs, face_models
from characters.vision.video import InvalidVideo, open_capture

MIN_SAMPLES = 3
MAX_SAMPLES = 60
DEFAULT_SAMPLES = 5
ANALYSIS_LONG_SIDE = 640  # detection and palette; MediaPipe's models see 128-256 px anyway
MAX_FACES_PER_FRAME = 4  # the largest ones; each costs a descriptor
# Descriptor distance -> identity: 1 at or below SAME, 0 at or above DIFFERENT, linear between.
SAME_PERSON_DISTANCE = 0.35
DIFFERENT_PERSON_DISTANCE = 0.75
DELTA_E_SCALE = 40.0  # appearance of a role = max(0, 1 - ΔE / DELTA_E_SCALE)
IDENTITY_WEIGHT = 0.75
APPEARANCE_WEIGHT = 0.25
REFERENCE_PAD = 0.25  # a tight close-up is padded by this much when no face is found in it as is
CLOTHING_ROLES = ("clothing_primary", "clothing_secondary")
METHOD_VERSION = "consistency/v1"
SUBJECT_FACE, SUBJECT_APPEARANCE = "face", "appearance"  # what a frame is scored on
STRONG_INLIERS = 90  # keypoint inliers at which an appearance match counts in full
KEYPOINT_WEIGHT = 0.5
COLOUR_WEIGHT = 0.5
_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


class NoReferenceFace(ValueError):
    """None of the reference images shows a face to compare with."""


class NoReferenceAppearance(NoReferenceFace):
    """None of the reference images has enough texture (keypoints) to find a marked character by."""


class UnreadableReference(ValueError):
    """A reference image could not be decoded."""


@dataclass
class FrameScore:
    seconds: float
    score: int  # 0-100
    identity: float  # 0-1
    appearance: float | None  # 0-1; None without a palette or when no role could be measured
    face_found: bool
    distance: float | None = None  # descriptor distance of the chosen face to the nearest reference
    faces: int = 0  # faces found in the frame
    basis: str = SUBJECT_FACE  # "appearance": found by keypoints and colour, not by a face
    inliers: int | None = None  # appearance: keypoint inliers of the best reference's homography
    colour_distance: float | None = None  # appearance: Bhattacharyya distance of the found box's colours


@dataclass
class ConsistencyResult:
    score: int  # 0-100
    frames: list[FrameScore]
    method: str
    references_used: int = 0
    references_ignored: list[int] = field(default_factory=list)  # indices of references without a face
    # Pairs of references (indices into the references given) that look like different characters:
    # {"a", "b", "distance"}. Reported, not averaged away: the score is only as good as its references.
    references_disagree: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "score": self.score,
            "frames": [asdict(f) for f in self.frames],
            "method": self.method,
            "references_disagree": self.references_disagree,
        }


# --- Images ------------------------------------------------------------------------------------


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"Expected a BGR image, got an array of shape {image.shape}.")


def load_references(paths_or_files: Iterable[str | Path | IO[bytes] | bytes]) -> list[np.ndarray]:
    """Decode reference images (paths, open binary files such as storage files, or bytes) to BGR arrays.

    Raises UnreadableReference naming the one that is not an image.
    """
    images = []
    for item in paths_or_files:
        if isinstance(item, bytes):
            data, name = item, "image bytes"
        elif isinstance(item, (str, Path)):
            try:
                data = Path(item).read_bytes()
            except OSError as exc:
                raise UnreadableReference(f"{item}: {exc.strerror or exc}") from exc
            name = str(item)
        else:
            data, name = item.read(), str(getattr(item, "name", None) or "reference file")
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise UnreadableReference(f"{name}: not an image we can read (use JPEG, PNG or WebP).")
        images.append(image)
    return images


def _analysis_copy(image: np.ndarray) -> np.ndarray:
    """`image` at most ANALYSIS_LONG_SIDE px long (area-averaged, so colours keep their mean)."""
    h, w = image.shape[:2]
    scale = min(1.0, ANALYSIS_LONG_SIDE / max(h, w))
    if scale >= 1.0:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _find_faces(small_bgr: np.ndarray) -> list[Face]:
    """Faces (relative boxes), largest and surest first."""
    faces = detect_faces(detectors(), cv2.cvtColor(small_bgr, cv2.COLOR_BGR2RGB))
    return sorted(faces, key=lambda f: -f.prominence)


def _face_dict(face: Face, width: int, height: int) -> dict:
    """The parts of the extraction pipeline's detection dict that `measure_palette` reads (pixels)."""
    b = face.box
    return {
        "box": {
            "x": round(b.x * width),
            "y": round(b.y * height),
            "width": round(b.w * width),
            "height": round(b.h * height),
        },
        "landmarks": {name: [round(x * width), round(y * height)] for name, (x, y) in face.keypoints.items()},
    }


def _reference_face(image: np.ndarray) -> tuple[np.ndarray, Face] | None:
    """The main face of a reference picture, padding a tight close-up when it is not found as is."""
    small = _analysis_copy(image)
    faces = _find_faces(small)
    if not faces:
        pad = round(max(image.shape[:2]) * REFERENCE_PAD)
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        small = _analysis_copy(image)
        faces = _find_faces(small)
    return (image, faces[0]) if faces else None


def _prepare_references(references: list[np.ndarray]) -> tuple[list[np.ndarray], list[int], list[dict]]:
    """The descriptor of each reference's main face, the indices of the references without one, and the
    pairs of references further apart than the same-character threshold."""
    models = face_models()
    prepared, ignored, used = [], [], []
    for index, reference in enumerate(references):
        found = _reference_face(_as_bgr(reference))
        descriptor = models.descriptor(found[0], found[1]) if found else None
        if descriptor is None:
            ignored.append(index)
        else:
            prepared.append(descriptor)
            used.append(index)
    if not prepared:
        raise NoReferenceFace(
            "None of the reference images shows a face we can find, so there is nothing to compare the "
            "video with. Use references where the character's face is visible."
            if references
            else "There are no reference images to compare the video with."
        )
    disagree = [{**pair, "a": used[pair["a"]], "b": used[pair["b"]]} for pair in disagreeing_pairs(prepared)]
    return prepared, ignored, disagree


def palette_from_references(references: list[np.ndarray]) -> dict[str, str]:
    """The palette of the references, measured as a Character DNA's is (per role, the median colour).

    For references that are not a locked character (the command's --references, pinned images).
    Empty when no reference shows a face.
    """
    from characters.dna.images import combine_palettes, measure_palette

    palettes = []
    for reference in references:
        found = _reference_face(_as_bgr(reference))
        if found:
            image, face = found
            palettes.append(measure_palette(image, _face_dict(face, image.shape[1], image.shape[0])))
    return combine_palettes([p for p in palettes if p])


# --- Scores ------------------------------------------------------------------------------------


def identity_from_distance(distance: float) -> float:
    span = DIFFERENT_PERSON_DISTANCE - SAME_PERSON_DISTANCE
    return float(min(1.0, max(0.0, (DIFFERENT_PERSON_DISTANCE - distance) / span)))


def appearance_similarity(measured: dict[str, str], palette: dict[str, str]) -> float | None:
    """Mean over the shared roles of max(0, 1 - ΔE/40); clothing matches the nearer DNA clothing colour."""
    from characters.dna.images import delta_e

    terms = []
    for role in ("skin", "hair"):
        if role in measured and role in palette:
            terms.append(delta_e(measured[role], palette[role]))
    dna_clothing = [palette[r] for r in CLOTHING_ROLES if r in palette]
    if "clothing_primary" in measured and dna_clothing:
        terms.append(min(delta_e(measured["clothing_primary"], colour) for colour in dna_clothing))
    if not terms:
        return None
    return float(np.mean([max(0.0, 1.0 - d / DELTA_E_SCALE) for d in terms]))


def _combine(identity: float, appearance: float | None) -> float:
    if appearance is None:
        return identity
    return IDENTITY_WEIGHT * identity + APPEARANCE_WEIGHT * appearance


def _frame_value(frame: FrameScore) -> float:
    """0-1, unrounded (the overall score averages these, not the rounded per-frame ints)."""
    if not frame.face_found:
        return 0.0
    if frame.basis == SUBJECT_APPEARANCE:
        return KEYPOINT_WEIGHT * frame.identity + COLOUR_WEIGHT * (frame.appearance or 0.0)
    return _combine(frame.identity, frame.appearance)


# --- A character that is not a face: found by appearance ---------------------------------------


def subject_of(character) -> str:
    """What a character's frames are scored on: "appearance" for a marked (non-face) character
    (`Character.is_marked`), else "face". None (pins, no character): "face"."""
    return SUBJECT_APPEARANCE if character is not None and character.is_marked else SUBJECT_FACE


def _appearance_views(references: list[np.ndarray]) -> tuple[list, list[int]]:
    """One matcher view per reference picture (the subject: GrabCut's foreground of the picture); indices of
    those without enough keypoints."""
    from characters.dna.images import marked_reference_box, marked_subject_view

    views, ignored = [], []
    for index, reference in enumerate(references):
        image = _as_bgr(reference)
        h, w = image.shape[:2]
        whole = {"x": 0, "y": 0, "width": w, "height": h}
        view = marked_subject_view(image, whole, seeded_by=marked_reference_box(image))
        if view is None:
            ignored.append(index)
        else:
            views.append(view)
    if not views:
        raise NoReferenceAppearance(
            "None of the reference images has enough detail to find the character by (keypoints), so there is "
            "nothing to compare the video with."
            if references
            else "There are no reference images to compare the video with."
        )
    return views, ignored


def _score_frame_by_appearance(frame: np.ndarray, seconds: float, views: list) -> FrameScore:
    from characters.vision import marking

    match = marking.match_frame(frame, views)
    if match is None:
        return FrameScore(round(seconds, 3), 0, 0.0, None, face_found=False, basis=SUBJECT_APPEARANCE)
    keypoints = min(1.0, match.inliers / STRONG_INLIERS)
    colour = max(0.0, 1.0 - match.colour_distance)
    return FrameScore(
        seconds=round(seconds, 3),
        score=round(100 * (KEYPOINT_WEIGHT * keypoints + COLOUR_WEIGHT * colour)),
        identity=round(keypoints, 4),
        appearance=round(colour, 4),
        face_found=True,
        basis=SUBJECT_APPEARANCE,
        inliers=match.inliers,
        colour_distance=match.colour_distance,
    )


def _score_frame(
    frame: np.ndarray, seconds: float, references: list[np.ndarray], palette: dict[str, str] | None
) -> FrameScore:
    small = _analysis_copy(frame)
    faces = _find_faces(small)[:MAX_FACES_PER_FRAME]
    models = face_models()
    best: tuple[float, Face] | None = None
    for face in faces:
        descriptor = models.descriptor(frame, face)
        if descriptor is None:
            continue
        distance = min(float(np.linalg.norm(descriptor - ref)) for ref in references)
        if best is None or distance < best[0]:
            best = (distance, face)
    if best is None:
        return FrameScore(round(seconds, 3), 0, 0.0, None, face_found=False, faces=len(faces))
    distance, face = best
    identity = identity_from_distance(distance)
    appearance = None
    if palette:
        from characters.dna.images import measure_palette

        measured = measure_palette(small, _face_dict(face, small.shape[1], small.shape[0]))
        appearance = appearance_similarity(measured, palette)
    return FrameScore(
        seconds=round(seconds, 3),
        score=round(100 * _combine(identity, appearance)),
        identity=round(identity, 4),
        appearance=None if appearance is None else round(appearance, 4),
        face_found=True,
        distance=round(distance, 4),
        faces=len(faces),
    )


# --- Decoding ----------------------------------------------------------------------------------


def _undecodable() -> InvalidVideo:
    return InvalidVideo(
        "No picture could be decoded from this video. The file may be damaged or use a codec we "
        "cannot read; export it again as MP4 (H.264) and retry."
    )


class _EndedEarly(Exception):
    def __init__(self, decoded: int) -> None:
        super().__init__(decoded)
        self.decoded = decoded


def _count_frames(path: Path | str) -> int:
    """Frames that decode (only for files whose header does not say)."""
    cap = open_capture(path)
    try:
        count = 0
        while cap.grab():
            count += 1
        return count
    finally:
        cap.release()


def _sampled_frames(
    path: Path | str, samples: int, frame_count: int | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, BGR frame) at (i + 0.5) / samples of the video, in one pass; at most one per frame.

    Raises _EndedEarly when the file stops before the planned frames (its header over-promises).
    """
    cap = open_capture(path)  # InvalidVideo when the container cannot be read
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0
        count = frame_count or int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:
            cap.release()
            count = _count_frames(path)
            cap = open_capture(path)
        if count <= 0:
            raise _undecodable()
        targets = sorted({min(count - 1, int((i + 0.5) * count / samples)) for i in range(samples)})
        index = -1
        for target in targets:
            while index < target:
                if not cap.grab():
                    raise _EndedEarly(index + 1)
                index += 1
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                raise _EndedEarly(index)
            yield index / fps, frame
    finally:
        cap.release()


# --- Entry points ------------------------------------------------------------------------------


def appearance_method_description(*, references: int) -> str:
    return (
        f"{METHOD_VERSION}: appearance (a character that is not a face): {KEYPOINT_WEIGHT:g} keypoints (ORB, "
        f"RANSAC homography, full at {STRONG_INLIERS} inliers) + {COLOUR_WEIGHT:g} colour (Lab histogram), best of "
        f"{references} reference(s); a frame where it is not found scores 0"
    )


def method_description(*, palette: bool, references: int) -> str:
    appearance = f" + {APPEARANCE_WEIGHT:g} appearance (palette, CIEDE2000/{DELTA_E_SCALE:g})" if palette else ""
    identity_weight = f"{IDENTITY_WEIGHT:g} " if palette else ""
    return (
        f"{METHOD_VERSION}: {identity_weight}identity (dlib 128-d face descriptor, nearest of {references} "
        f"reference(s), 1 at <={SAME_PERSON_DISTANCE:g} to 0 at >={DIFFERENT_PERSON_DISTANCE:g}){appearance}"
    )


def score_video(
    video_path: Path | str,
    references: list[np.ndarray],
    palette: dict[str, str] | None = None,
    samples: int = DEFAULT_SAMPLES,
    subject: str = SUBJECT_FACE,
) -> ConsistencyResult:
    """Score how consistently the video shows the character of `references` (BGR images).

    `palette` is the Character DNA's {role: "#RRGGBB"}; without it only identity counts. References
    without a detectable face are ignored (listed in `references_ignored`); NoReferenceFace when none
    has one. InvalidVideo when the video cannot be decoded.
    `subject="appearance"` (a marked character, `subject_of`): frames are scored by keypoints and colour
    against the references instead of faces; `palette` is not used; NoReferenceAppearance (a
    NoReferenceFace) when no reference has enough keypoints.
    """
    if not MIN_SAMPLES <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be between {MIN_SAMPLES} and {MAX_SAMPLES}, not {samples}.")
    if subject not in (SUBJECT_FACE, SUBJECT_APPEARANCE):
        raise ValueError(f"subject must be {SUBJECT_FACE!r} or {SUBJECT_APPEARANCE!r}, not {subject!r}.")
    open_capture(video_path).release()  # a file that is no video fails before any face work
    by_appearance = subject == SUBJECT_APPEARANCE
    if by_appearance:
        views, ignored = _appearance_views(list(references))
        prepared: list[np.ndarray] = []
        disagree: list[dict] = []
        palette = None
    else:
        prepared, ignored, disagree = _prepare_references(list(references))
        palette = {r: c for r, c in (palette or {}).items() if _HEX_COLOUR.fullmatch(str(c))} or None

    def score_all(frame_count: int | None) -> list[FrameScore]:
        return [
            _score_frame_by_appearance(frame, seconds, views)
            if by_appearance
            else _score_frame(frame, seconds, prepared, palette)
            for seconds, frame in _sampled_frames(video_path, samples, frame_count)
        ]

    try:
        frames = score_all(None)
    except _EndedEarly as early:  # plan again over the frames that do decode
        if early.decoded <= 0:
            raise _undecodable() from None
        try:
            frames = score_all(early.decoded)
        except _EndedEarly:
            raise _undecodable() from None
    overall = round(100 * float(np.mean([_frame_value(f) for f in frames]))) if frames else 0
    return ConsistencyResult(
        score=overall,
        frames=frames,
        method=appearance_method_description(references=len(views))
        if by_appearance
        else method_description(palette=palette is not None, references=len(prepared)),
        references_used=len(views) if by_appearance else len(prepared),
        references_ignored=ignored,
        references_disagree=disagree,
    )


def character_references(character) -> list[np.ndarray]:
    """A Character's reference images, read through its storage (local, S3, any)."""
    images = []
    for reference in character.reference_images.all():
        try:
            with reference.image.open("rb") as fh:
                images += load_references([fh])
        except OSError as exc:
            raise UnreadableReference(f"{reference.image.name}: {exc}") from exc
    return images


def score_video_against_character(
    video_path: Path | str, character, samples: int = DEFAULT_SAMPLES
) -> ConsistencyResult:
    """`score_video` against a characters.models.Character: its reference images and DNA palette, by face or,
    for a marked character, by appearance."""
    return score_video(
        video_path,
        character_references(character),
        palette=dict(character.color_palette or {}) or None,
        samples=samples,
        subject=subject_of(character),
    )
