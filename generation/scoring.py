"""Scoring a finished job's video: is it a video we can use, and how consistent is it with what was sent.

`services.generation_complete` calls these on the provider's file before storing it. The references are the pins
the job sent (one character at a time), else its character's DNA images; the score itself is
`consistency.score_video`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from characters.models import PinnedCharacter, ReferenceImage
from characters.vision.identity import USUAL_SAME_CHARACTER_DISTANCE
from characters.vision.video import InvalidVideo, probe_video

from .models import MIXED_BASIS, GenerationJob
from .providers import ProviderFailed

if TYPE_CHECKING:
    from .consistency import FrameScore as ConsistencyFrame


@dataclass
class _Subject:
    """One character the job asked for, scored against its own references."""

    name: str
    basis: str  # consistency.SUBJECT_FACE | SUBJECT_APPEARANCE
    image_names: list[str]
    palette: dict | None  # the DNA's; None: measured on the images (pins carry none)


def _scoring_subjects(job: GenerationJob) -> list[_Subject]:
    """The characters to score, in the job's order: one per pinned character (a pin without one counts as
    its own), else the job's character with its DNA images."""
    from .consistency import subject_of

    if job.pinned_character_ids:
        order = {pk: i for i, pk in enumerate(job.pinned_character_ids)}
        pins = sorted(
            PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids)
            .select_related("character")
            .prefetch_related("angles"),
            key=lambda pin: order[pin.pk],
        )
        subjects: dict[object, _Subject] = {}
        for pin in pins:
            key = pin.character_id or f"pin {pin.pk}"
            if key not in subjects:
                name = pin.character.name if pin.character else (pin.label or f"@Element{pin.element_index}")
                subjects[key] = _Subject(name, subject_of(pin.character), [], None)
            subjects[key].image_names += [pin.frontal_image.name, *(a.image.name for a in pin.angles.all())]
        return list(subjects.values())
    if job.character_id:
        character = job.character
        names = [r.image.name for r in ReferenceImage.objects.filter(character_id=job.character_id)]
        return [_Subject(character.name, subject_of(character), names, dict(character.color_palette or {}) or None)]  # type: ignore[union-attr]  # character_id is set
    return []


def _read_images(names: list[str]) -> list[np.ndarray]:
    storage = ReferenceImage._meta.get_field("image").storage
    images = []
    for name in names:
        with storage.open(name, "rb") as fh:
            image = cv2.imdecode(np.frombuffer(fh.read(), dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
    return images


def _frame_dict(frame: ConsistencyFrame) -> dict:
    return {
        "seconds": round(frame.seconds, 2),
        "score": frame.score,
        "identity": round(frame.identity, 3),
        "appearance": None if frame.appearance is None else round(frame.appearance, 3),
        "face_found": frame.face_found,
        "basis": frame.basis,
    }


def _disagreement_note(subject: _Subject, pairs: list[dict], *, named: bool) -> str:
    worst = max(pairs, key=lambda p: p["distance"])
    who = f"{subject.name}'s references" if named else "The references"
    return (
        f"{who} do not all look like one character: reference {worst['a'] + 1} and reference {worst['b'] + 1} are "
        f"{worst['distance']:.2f} apart (the same character is usually under {USUAL_SAME_CHARACTER_DISTANCE}), "
        f"{len(pairs)} disagreeing pair{'s' if len(pairs) != 1 else ''} in all. Each frame counts its best match, "
        "so the score may be too kind: check the references."
    )


def score_clip(job: GenerationJob, video_path: Path) -> tuple[int | None, list[dict], str]:
    """The job's consistency score, its frames and a note for the job.

    Each character asked for is scored on its own references (by face, or by appearance for a marked one), and
    the score is their mean: a clip that shows one of two pinned characters scores about half, not full marks
    for matching whichever reference is nearest. A frame's entry then lists each character's own score
    (`characters`); its `score` is their mean, its `basis` "mixed" when faces and appearances meet. References
    of one character that look like different characters are reported in the note, not averaged away."""
    from .consistency import NoReferenceFace, score_video

    subjects = [(s, images) for s in _scoring_subjects(job) if (images := _read_images(s.image_names))]
    if not subjects:
        return None, [], "No reference images: this clip has no consistency score."
    named = len(subjects) > 1
    results, notes = [], []
    for subject, images in subjects:
        palette = subject.palette
        if palette is None and job.pinned_character_ids:
            from .consistency import palette_from_references

            palette = palette_from_references(images) or None
        try:
            result = score_video(video_path, images, palette=palette, subject=subject.basis)
        except NoReferenceFace as exc:
            notes.append(f"{subject.name}: {exc}" if named else str(exc))
            continue
        results.append((subject, result))
        if result.references_disagree:
            notes.append(_disagreement_note(subject, result.references_disagree, named=named))
    if not results:
        return None, [], " ".join(notes)
    if len(results) == 1:
        result = results[0][1]
        return result.score, [_frame_dict(f) for f in result.frames], " ".join(notes)
    frames = []
    for per_character in zip(*(r.frames for _, r in results), strict=True):  # the same sampled seconds
        entries = [{"name": s.name, **_frame_dict(f)} for (s, _), f in zip(results, per_character, strict=True)]
        bases = {e["basis"] for e in entries}
        frames.append(
            {
                "seconds": entries[0]["seconds"],
                "score": round(sum(e["score"] for e in entries) / len(entries)),
                "identity": min(e["identity"] for e in entries),
                "appearance": None,
                "face_found": all(e["face_found"] for e in entries),
                "basis": bases.pop() if len(bases) == 1 else MIXED_BASIS,
                "characters": entries,
            }
        )
    score = round(sum(r.score for _, r in results) / len(results))
    return score, frames, " ".join(notes)


def check_video(path: Path) -> None:
    """The provider's file must be a video we can play and score, as an upload must; else the job fails."""
    try:
        probe_video(path)
    except InvalidVideo as exc:
        raise ProviderFailed(f"The provider's video is not usable: {exc}") from exc
