"""Scoring a finished job's video: is it a video we can use, and how consistent is it with what was sent.

`services.generation_complete` calls these on the provider's file before storing it. The references are the pins
the job sent, else its character's DNA images; the score itself is `consistency.score_video`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from characters.models import PinnedCharacter, ReferenceImage
from characters.vision.video import InvalidVideo, probe_video

from .models import GenerationJob
from .providers import ProviderFailed


def _scoring_inputs(job: GenerationJob) -> tuple[list[np.ndarray], dict | None]:
    """Reference images and palette to score against: the pins used, else the character's DNA."""
    names: list[str] = []
    if job.pinned_character_ids:
        for pin in PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids).prefetch_related("angles"):
            names += [pin.frontal_image.name, *(a.image.name for a in pin.angles.all())]
    elif job.character_id:
        names = [r.image.name for r in ReferenceImage.objects.filter(character_id=job.character_id)]
    storage = ReferenceImage._meta.get_field("image").storage
    images = []
    for name in names:
        with storage.open(name, "rb") as fh:
            image = cv2.imdecode(np.frombuffer(fh.read(), dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
    if job.pinned_character_ids:
        # Pins carry no DNA palette: measure one on the pinned images themselves.
        from .consistency import palette_from_references

        return images, (palette_from_references(images) or None) if images else None
    # With a character_id the character is there.
    return images, dict(job.character.color_palette) if job.character_id else None  # type: ignore[union-attr]


def _scored_subject(job: GenerationJob) -> str:
    """ "appearance" when the character asked for is a marked (non-face) one: the job's character, or every
    character of the pins it sent; else "face"."""
    from .consistency import SUBJECT_APPEARANCE, SUBJECT_FACE, subject_of

    if job.pinned_character_ids:
        pins = PinnedCharacter.objects.filter(pk__in=job.pinned_character_ids).select_related("character")
        subjects = {subject_of(pin.character) for pin in pins if pin.character_id}
        return SUBJECT_APPEARANCE if subjects == {SUBJECT_APPEARANCE} else SUBJECT_FACE
    return subject_of(job.character)


def score_clip(job: GenerationJob, video_path: Path) -> tuple[int | None, list[dict], str]:
    from .consistency import NoReferenceFace, score_video

    references, palette = _scoring_inputs(job)
    if not references:
        return None, [], "No reference images: this clip has no consistency score."
    try:
        result = score_video(video_path, references, palette=palette, subject=_scored_subject(job))
    except NoReferenceFace as exc:
        return None, [], str(exc)
    frames = [
        {
            "seconds": round(f.seconds, 2),
            "score": f.score,
            "identity": round(f.identity, 3),
            "appearance": None if f.appearance is None else round(f.appearance, 3),
            "face_found": f.face_found,
            "basis": f.basis,
        }
        for f in result.frames
    ]
    return result.score, frames, ""


def check_video(path: Path) -> None:
    """The provider's file must be a video we can play and score, as an upload must; else the job fails."""
    try:
        probe_video(path)
    except InvalidVideo as exc:
        raise ProviderFailed(f"The provider's video is not usable: {exc}") from exc
