"""Writes for canonical characters: locking a design into a Character DNA, and correcting it.

The voting app calls `character_lock` when a vote declares a winner (through a Celery task), and
the admin lock endpoint calls the same function; it is idempotent on the winning submission.
"""
from __future__ import annotations

import json
import logging
import secrets

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from characters.dna import images
from characters.models import CandidateFrame, Character, ReferenceImage, Story
from characters.vision.jpeg import encode_jpeg
from common.exceptions import ServiceError

logger = logging.getLogger(__name__)

REFERENCE_JPEG_QUALITY = 92
HEX_PATTERN = r"^#[0-9A-Fa-f]{6}$"


class InvalidDNA(ServiceError):
    status_code = 422
    code = "invalid_dna"


def _unique_character_id(name: str) -> str:
    for _ in range(20):
        candidate = images.character_id_for(name, secrets.token_hex(2)[:3])
        if not Character.objects.filter(character_id=candidate).exists():
            return candidate
    raise ServiceError("Could not find a free character id; try again.", status_code=503)


def _decode(frame: CandidateFrame) -> np.ndarray:
    with frame.image.open("rb") as fh:
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ServiceError(f"The stored image of frame {frame.pk} could not be read.", status_code=500)
    return image


def _overwrite(name: str, content: bytes) -> str:
    """Store `content` at exactly `name`, replacing what was there (storages would rename)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def reference_path(character: Character, kind: str) -> str:
    """The stable site path of a reference image; it redirects to the current storage URL."""
    return reverse("character-reference", args=[character.character_id, kind])


def reference_url(character: Character, kind: str) -> str:
    """The same on the public SITE_URL, for what is stored or given to others (dna.json, providers); API bodies
    make the path absolute on the request's host instead (common.absolute_urls)."""
    return settings.SITE_URL.rstrip("/") + reference_path(character, kind)


def dna_document(character: Character) -> dict:
    refs = {ref.kind: reference_url(character, ref.kind) for ref in character.reference_images.all()
            if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE}
    document = {
        "character_id": character.character_id,
        "name": character.name,
        "story_id": character.story_id,
        "status": Character.Status.CANONICAL,
        "reference_images": refs,
        "style_description": character.style_description,
        "color_palette": character.color_palette,
        "locked_features": character.locked_features,
        "total_votes": character.total_votes,
        "clips_used": character.clips_used,
        "created_at": (character.created_at or timezone.now()).isoformat().replace("+00:00", "Z"),
    }
    if character.created_from_clip_id:
        document["created_from_clip"] = character.created_from_clip_id
    if character.creator_id:
        document["creator_id"] = character.creator_id
    return document


def _write_dna_and_sheet(character: Character) -> None:
    """Validate the DNA, then write dna.json and the model sheet; an invalid DNA writes nothing."""
    document = dna_document(character)
    errors = images.validate_dna(document)
    if errors:
        raise InvalidDNA(
            "The Character DNA does not match its schema: " + "; ".join(errors), details={"errors": errors}
        )
    base = f"characters/{character.character_id}"
    character.dna_file.name = _overwrite(f"{base}/dna.json", json.dumps(document, indent=2).encode())
    shots = []
    for ref in character.reference_images.all():
        with ref.image.open("rb") as fh:
            from PIL import Image

            shots.append((ref.kind, Image.open(fh).convert("RGB")))
    sheet = images.render_model_sheet(
        name=character.name, character_id=character.character_id, shots=shots,
        palette=character.color_palette, features=character.locked_features,
    )
    character.model_sheet.name = _overwrite(f"{base}/model_sheet.png", sheet)


def character_lock(
    *,
    story: Story,
    name: str,
    frame_ids: list[int],
    creator=None,
    votes: int = 0,
    description: str = "",
    origin_submission_id: int | None = None,
) -> Character:
    """Make the canonical character of a winning design, with its DNA. Idempotent per submission.

    Reference shots are categorised from the frames' detections, the palette is measured on the
    segmented person, and dna.json must validate before the character becomes canonical; if it
    does not, the character stays a candidate with the reason in `lock_error`.
    """
    name = " ".join((name or "").split()) or "Unnamed character"
    if len(name) > 100:
        raise ServiceError("A character name may be at most 100 characters.", code="name_too_long")
    by_id = {f.pk: f for f in CandidateFrame.objects.filter(pk__in=frame_ids, clip__story=story).select_related("clip")}
    frames = [by_id[i] for i in frame_ids if i in by_id]
    if not frames:
        raise ServiceError("None of the winning frames belong to this story.", code="no_frames")

    if origin_submission_id is not None:
        try:
            with transaction.atomic():
                character, _ = Character.objects.get_or_create(
                    origin_submission_id=origin_submission_id,
                    defaults={"character_id": _unique_character_id(name), "name": name, "story": story},
                )
        except IntegrityError:  # a concurrent lock created it first
            character = Character.objects.get(origin_submission_id=origin_submission_id)
    else:
        character = Character.objects.create(character_id=_unique_character_id(name), name=name, story=story)

    try:
        return _build_dna(character, name, frames, creator, votes, description)
    except Exception as exc:
        # The build rolled back; keep the reason on the character so admins see why it is not canonical.
        reason = exc.message if isinstance(exc, ServiceError) else f"Locking failed: {exc}"
        Character.objects.filter(pk=character.pk).exclude(status=Character.Status.CANONICAL).update(
            lock_error=reason, status=Character.Status.CANDIDATE
        )
        raise


def _build_dna(character: Character, name: str, frames: list[CandidateFrame], creator, votes: int, description: str):
    with transaction.atomic():
        character = Character.objects.select_for_update().get(pk=character.pk)
        if character.status == Character.Status.CANONICAL:
            return character
        inputs = [
            images.FrameInput(f.pk, _decode(f), f.detections or [], f.quality, f.pose, f.full_body) for f in frames
        ]
        shots = images.categorise(inputs)
        palette = images.combine_palettes([images.measure_palette(f.image, f.face) for f in inputs if f.face])
        character.name = name
        character.creator = creator
        character.total_votes = votes
        character.submitted_description = (description or "")[:500]
        character.created_from_clip = frames[0].clip
        character.color_palette = palette
        character.style_description = images.compose_style(description, palette, shots)
        character.locked_features = images.locked_features_for(description, palette)
        character.source_frames.set(frames)
        for old in character.reference_images.all():
            old.image.delete(save=False)
            old.delete()
        for shot in shots:
            h, w = shot.image.shape[:2]
            ref = ReferenceImage(character=character, kind=shot.kind, width=w, height=h, source_frame_id=shot.frame_key)
            jpeg = encode_jpeg(shot.image, quality=REFERENCE_JPEG_QUALITY)
            ref.image.name = _overwrite(f"characters/{character.character_id}/{shot.kind}.jpg", jpeg)
            ref.save()
        _write_dna_and_sheet(character)  # raises InvalidDNA before anything is written
        character.lock_error = ""
        character.status = Character.Status.CANONICAL
        character.save()
    logger.info("Locked character %s for story %s", character.character_id, character.story_id)
    return character


def character_update_dna(
    *, character: Character, user, color_palette: dict | None = None, style_description: str | None = None,
    locked_features: list[str] | None = None,
) -> Character:
    """An admin corrects the palette, style description or locked features; dna.json is rewritten.

    The new values are validated against the DNA schema first; a refused edit changes nothing.
    """
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can correct a Character DNA.", code="forbidden", status_code=403)
    with transaction.atomic():
        character = Character.objects.select_for_update().get(pk=character.pk)
        if color_palette is not None:
            character.color_palette = {str(k).strip(): str(v).strip().upper() for k, v in color_palette.items()}
        if style_description is not None:
            character.style_description = " ".join(style_description.split())
        if locked_features is not None:
            cleaned = [" ".join(str(f).split()) for f in locked_features]
            character.locked_features = list(dict.fromkeys(f for f in cleaned if f))
        errors = images.validate_dna(dna_document(character))
        if errors:
            raise InvalidDNA(
                "That edit would break the Character DNA: " + "; ".join(errors),
                details={"errors": errors},
                status_code=400,
            )
        if character.status == Character.Status.CANONICAL:
            _write_dna_and_sheet(character)
        character.save()
    return character


def character_archive(*, character: Character, user) -> Character:
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can archive a character.", code="forbidden", status_code=403)
    Character.objects.filter(pk=character.pk).update(status=Character.Status.ARCHIVED, updated_at=timezone.now())
    character.refresh_from_db()
    return character


def character_set_licensing(*, character: Character, user, allow: bool) -> Character:
    """The creator (or an admin) opens or closes the character to licensing by other stories."""
    if user is None or not (user.is_staff or user.pk == character.creator_id):
        raise ServiceError(
            "Only the character's creator or an admin can change licensing.", code="forbidden", status_code=403
        )
    Character.objects.filter(pk=character.pk).update(allow_licensing=bool(allow), updated_at=timezone.now())
    character.refresh_from_db()
    return character


def character_relock(*, character: Character, user) -> Character:
    """Rebuild the DNA from the character's source frames (after new extraction, or a fixed pipeline)."""
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can re-lock a character.", code="forbidden", status_code=403)
    frames = list(character.source_frames.select_related("clip").order_by("pk"))
    if not frames:
        raise ServiceError("This character has no source frames left to rebuild from.", code="no_frames")
    Character.objects.filter(pk=character.pk).update(status=Character.Status.CANDIDATE)
    return _build_dna(
        character, character.name, frames, character.creator, character.total_votes, character.submitted_description
    )


def character_record_use(*, character_id: int) -> None:
    """One more clip generated with this character (atomic under concurrent completions)."""
    Character.objects.filter(pk=character_id).update(clips_used=F("clips_used") + 1)
