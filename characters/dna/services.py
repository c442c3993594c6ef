"""Writes for canonical characters: locking a design into a Character DNA, and correcting it.

The voting app calls `character_lock` when a vote declares a winner (through a Celery task), and
the admin lock endpoint calls the same function; it is idempotent on the winning submission.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import replace

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from characters.clips.extraction import score_marked_region
from characters.dna import images, traits
from characters.models import CandidateFrame, Character, ReferenceImage, Story
from characters.vision.jpeg import encode_jpeg
from common.exceptions import ServiceError
from common.typing import AnyUser, UserType

logger = logging.getLogger(__name__)

REFERENCE_JPEG_QUALITY = 92
HEX_PATTERN = r"^#[0-9A-Fa-f]{6}$"


class InvalidDNA(ServiceError):
    status_code = 422
    code = "invalid_dna"


# The model's field lengths are the limits (the API and the admin form read them from here too).
NAME_MAX: int = Character._meta.get_field("name").max_length or 100
DESCRIPTION_MAX: int = Character._meta.get_field("submitted_description").max_length or 500


def _clean_name(name: str) -> str:
    """A character's name with its spaces folded; 1 to NAME_MAX characters, else a 400 saying so."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > NAME_MAX:
        raise InvalidDNA(f"A character name needs 1 to {NAME_MAX} characters.", code="invalid_name", status_code=400)
    return cleaned


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
    """dna.json: the seed schema's fields, plus where each fact came from (extra keys the schema allows).

    The API's character body carries the same keys with the same values (tests compare them).
    """
    refs = [ref for ref in character.reference_images.all() if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE]
    document = {
        "character_id": character.character_id,
        "name": character.name,
        "story_id": character.story_id,
        "status": character.status,
        "reference_images": {ref.kind: reference_url(character, ref.kind) for ref in refs},
        # What each reference really shows: the full_body slot may hold an upper-body shot.
        "coverage": {ref.kind: ref.coverage for ref in refs if ref.coverage},
        "style_description": character.style_description,
        "color_palette": character.color_palette,
        "palette_sources": character.palette_sources,
        "locked_features": character.locked_features,
        "feature_sources": [r for r in character.feature_sources if r.get("source") != "dropped"],
        "render_style": character.render_style,
        "render_style_source": character.render_style_source,
        "measured": character.measured,
        "total_votes": character.total_votes,
        "clips_used": character.clips_used,
        "allow_licensing": character.allow_licensing,
        "created_at": (character.created_at or timezone.now()).isoformat().replace("+00:00", "Z"),
    }
    if character.created_from_clip_id:
        document["created_from_clip"] = character.created_from_clip_id
    if character.creator_id:
        document["creator_id"] = character.creator_id
    return document


def _measured_features(character: Character) -> list[dict]:
    return images.measured_features(character.color_palette, (character.measured or {}).get("traits"))


def _derive_text(character: Character) -> None:
    """Rewrite everything built from the facts: measured features follow today's palette, stated ones
    stay; the style description is the submitter's words plus those features and the render style."""
    records = images.merge_features(
        _measured_features(character), character.feature_sources, marked=character.is_marked
    )
    character.feature_sources = records
    character.locked_features = images.locked_texts(records)
    kept = [r for r in records if r.get("source") != "dropped"]
    character.style_description = images.compose_style(character.submitted_description, kept, character.render_style)


def _check(character: Character, status_code: int = 422) -> dict:
    document = dna_document(character)
    errors = images.validate_dna(document)
    if errors:
        raise InvalidDNA(
            "The Character DNA does not match its schema: " + "; ".join(errors),
            details={"errors": errors},
            status_code=status_code,
        )
    return document


def _sheet_bytes(character: Character) -> bytes:
    from PIL import Image

    shots = []
    for ref in character.reference_images.all():
        with ref.image.open("rb") as fh:
            label = ref.kind if ref.coverage in ("", "face", ref.kind) else f"{ref.kind} ({ref.coverage})"
            shots.append((label, Image.open(fh).convert("RGB")))
    return images.render_model_sheet(
        name=character.name,
        character_id=character.character_id,
        shots=shots,
        palette=character.color_palette,
        features=character.locked_features,
    )


def _write_files(files: dict[str, bytes]) -> None:
    """Write every file or none: on a failed write the ones already replaced get their old bytes back."""
    previous: dict[str, bytes | None] = {}
    for name in files:
        previous[name] = default_storage.open(name).read() if default_storage.exists(name) else None
    written = []
    try:
        for name, content in files.items():
            _overwrite(name, content)
            written.append(name)
    except Exception:
        for name in written:
            before = previous[name]
            if before is None:
                default_storage.delete(name)
            else:
                _overwrite(name, before)
        raise


def _write_dna_and_sheet(character: Character, *, sheet: bool = True, status_code: int = 422) -> None:
    """Validate the DNA, then write dna.json (and the model sheet); an invalid DNA writes nothing."""
    document = _check(character, status_code)
    base = f"characters/{character.character_id}"
    files = {f"{base}/dna.json": json.dumps(document, indent=2).encode()}
    if sheet or not character.model_sheet:
        files[f"{base}/model_sheet.png"] = _sheet_bytes(character)  # rendered before anything is written
    _write_files(files)
    character.dna_file.name = f"{base}/dna.json"
    character.model_sheet.name = f"{base}/model_sheet.png"


def character_lock(
    *,
    story: Story,
    name: str,
    frame_ids: list[int],
    creator: UserType | None = None,
    votes: int = 0,
    description: str = "",
    origin_submission_id: int | None = None,
    render_style: str = "",
    features_to_keep: list[str] | None = None,
    group_id: int | None = None,
) -> Character:
    """Make the canonical character of a winning design, with its DNA. Idempotent per submission.

    Reference shots are categorised from the frames' detections, the palette is measured on the
    segmented person (regions from masks, see images.view_subject), the render style is the
    designer's choice or else the measured suggestion, the locked features are the measured ones
    plus the designer's features to keep (traits of the face among the measured: see dna.traits).
    With `group_id` (the character group the design showed) the character remembers it
    (`Character.group`) and every measurement and crop is of that group's face in each frame, not
    the frame's main face. dna.json must validate before the character
    becomes canonical; if it does not, the character stays a candidate with the reason in `lock_error`.
    """
    name = _clean_name(" ".join((name or "").split()) or "Unnamed character")
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
    if group_id is not None and character.group_id != group_id:
        Character.objects.filter(pk=character.pk).update(group_id=group_id)
        character.group_id = group_id

    try:
        return _build_dna(
            character,
            name,
            frames,
            creator,
            votes,
            description,
            render_style,
            images.clean_stated_features(features_to_keep),
            group_id,
        )
    except Exception as exc:
        # The build rolled back; keep the reason on the character so admins see why it is not canonical.
        reason = exc.message if isinstance(exc, ServiceError) else f"Locking failed: {exc}"
        Character.objects.filter(pk=character.pk).exclude(status=Character.Status.CANONICAL).update(
            lock_error=reason, status=Character.Status.CANDIDATE
        )
        raise


def _ranked_on_the_character(frame: images.FrameInput) -> images.FrameInput:
    """A frame's stored quality is its main face's; where the design's character is another face, the
    frame is ranked on that face's box instead (extraction's own scores for a box)."""
    face = frame.face
    if face is None or face is frame.detections[0]:
        return frame
    return replace(frame, quality=score_marked_region(frame.image, face["box"])["quality"])


def _build_dna(
    character: Character,
    name: str,
    frames: list[CandidateFrame],
    creator: UserType | None,
    votes: int,
    description: str,
    render_style: str = "",
    features_to_keep: list[str] | None = None,
    group_id: int | None = None,
) -> Character:
    if render_style and render_style not in images.RENDER_STYLES:
        raise ServiceError(f"Unknown render style '{render_style}'.", code="invalid_render_style")
    with transaction.atomic():
        character = Character.objects.select_for_update().get(pk=character.pk)
        if character.status == Character.Status.CANONICAL:
            return character
        inputs = [
            images.FrameInput(f.pk, _decode(f), f.detections or [], f.quality, f.pose, f.full_body, group_id)
            for f in frames
        ]
        inputs = [f for f in inputs if f.face] or inputs  # frames the character is not in show someone else
        inputs = [_ranked_on_the_character(f) for f in inputs]
        views = [images.view_subject(f.key, f.image, f.face, len(f.detections) > 1) for f in inputs if f.face]
        coverage = {v.key: v.coverage for v in views}
        shots = images.categorise(inputs, coverage)
        regions = images.measure_regions(views)
        style_measure = images.measure_render_style(views)
        face_traits = traits.measure_traits(views)
        marked = any(images.marked_box(f) for f in inputs)  # a marked (non-face) character: its box, not a face
        if marked:
            shots, regions = images.marked_references(inputs), images.measure_marked_regions(inputs)
        character.name = name
        character.creator = creator
        character.total_votes = votes
        character.submitted_description = (description or "")[:DESCRIPTION_MAX]
        character.created_from_clip = frames[0].clip
        character.measured = {"regions": regions, "render_style": style_measure, "traits": face_traits}
        if marked:
            character.measured["subject"] = images.MARKED_SUBJECT
        character.color_palette = images.palette_from(regions)
        character.palette_sources = dict.fromkeys(character.color_palette, "measured")
        if render_style:
            character.render_style, character.render_style_source = render_style, "stated"
        elif style_measure:
            character.render_style, character.render_style_source = style_measure["suggestion"], "measured"
        if features_to_keep is None:  # a re-lock keeps what people stated
            stated = [r for r in character.feature_sources if r.get("source") in ("stated", "dropped")]
        else:
            stated = [{"feature": f, "source": "stated", "key": ""} for f in features_to_keep]
        character.feature_sources = stated
        _derive_text(character)
        character.source_frames.set(frames)
        for old in character.reference_images.all():
            old.image.delete(save=False)
            old.delete()
        for shot in shots:
            h, w = shot.image.shape[:2]
            ref = ReferenceImage(
                character=character,
                kind=shot.kind,
                width=w,
                height=h,
                source_frame_id=shot.frame_key,
                coverage=shot.coverage,
            )
            jpeg = encode_jpeg(shot.image, quality=REFERENCE_JPEG_QUALITY)
            ref.image.name = _overwrite(f"characters/{character.character_id}/{shot.kind}.jpg", jpeg)
            ref.save()
        character.lock_error = ""
        character.status = Character.Status.CANONICAL
        _write_dna_and_sheet(character)  # raises InvalidDNA before anything is written
        character.save()
    logger.info("Locked character %s for story %s", character.character_id, character.story_id)
    return character


def character_update(
    *,
    character: Character,
    user: AnyUser | None,
    color_palette: dict | None = None,
    style_description: str | None = None,
    locked_features: list[str] | None = None,
    name: str | None = None,
    render_style: str | None = None,
    allow_licensing: bool | None = None,
    status: str | None = None,
    clips_used_delta: int = 0,
    system: bool = False,
) -> Character:
    """Every change to a character, in one step: the row is locked, the change applied, the text that
    depends on it rewritten (features, style description), the DNA validated, the row saved and
    dna.json and the model sheet rewritten; a refused or failed change leaves the row and the files
    as they were.

    Who may: admins change the DNA (palette, features, style, name, render style, status); the creator
    or an admin opens or closes licensing; `system=True` is generation recording a clip used.
    A palette role an admin sets becomes a stated fact; features an admin lists that are not the
    measured ones are stated; a measured feature left out of the list stays out.
    """
    dna_change = any(
        v is not None for v in (color_palette, style_description, locked_features, name, render_style, status)
    )
    if not system:
        if user is None or not user.is_authenticated:
            raise ServiceError("Log in to change a character.", code="forbidden", status_code=403)
        if dna_change and not user.is_staff:
            raise ServiceError("Only admins can correct a Character DNA.", code="forbidden", status_code=403)
        if allow_licensing is not None and not (user.is_staff or user.pk == character.creator_id):
            raise ServiceError(
                "Only the character's creator or an admin can change licensing.", code="forbidden", status_code=403
            )
    with transaction.atomic():
        character = Character.objects.select_for_update().get(pk=character.pk)
        if name is not None:
            character.name = _clean_name(name)
        if render_style is not None:
            if render_style not in ("", *images.RENDER_STYLES):
                choices = ", ".join(images.RENDER_STYLES)
                raise InvalidDNA(
                    f"Unknown render style '{render_style}'; use one of {choices}.",
                    code="invalid_render_style",
                    status_code=400,
                )
            suggestion = (character.measured.get("render_style") or {}).get("suggestion", "")
            character.render_style = render_style or suggestion
            character.render_style_source = "stated" if render_style else ("measured" if suggestion else "")
        if color_palette is not None:
            palette = {str(k).strip(): str(v).strip().upper() for k, v in color_palette.items()}
            bad = [role for role, value in palette.items() if not re.fullmatch(HEX_PATTERN, value)]
            if bad:
                raise InvalidDNA(
                    "That edit would break the Character DNA: color_palette/"
                    + ", color_palette/".join(bad)
                    + " must be #RRGGBB colours.",
                    details={"errors": bad},
                    status_code=400,
                )
            measured = images.palette_from((character.measured or {}).get("regions", {}))
            character.palette_sources = {
                role: "measured" if measured.get(role, "").upper() == value else "stated"
                for role, value in palette.items()
            }
            character.color_palette = palette
        if style_description is not None:
            character.submitted_description = " ".join(style_description.split())[:DESCRIPTION_MAX]
        if locked_features is not None:
            listed = images.clean_stated_features(locked_features)
            problems = images.stated_feature_problems(listed, required=True)
            if problems:
                raise InvalidDNA(" ".join(problems), code="invalid_features", status_code=400)
            measured_now = {r["feature"].lower(): r for r in _measured_features(character)}
            records = [measured_now.get(f.lower()) or {"feature": f, "source": "stated", "key": ""} for f in listed]
            kept_keys = {r["key"] for r in records if r["source"] == "measured"}
            records += [
                {"feature": r["feature"], "source": "dropped", "key": r["key"]}
                for r in measured_now.values()
                if r["key"] not in kept_keys
            ]
            character.feature_sources = records
        if status is not None:
            character.status = status
        if allow_licensing is not None:
            character.allow_licensing = bool(allow_licensing)
        if clips_used_delta:
            character.clips_used = max(0, character.clips_used + clips_used_delta)
        _derive_text(character)
        if dna_change or character.dna_file:
            _check(character, status_code=400)
        character.save()
        if character.dna_file:  # a locked DNA: its files follow the row
            # Files last, with the row locked: a failed write raises, rolls the row back, restores files.
            only_counts = not dna_change and allow_licensing is None
            _write_dna_and_sheet(character, sheet=not only_counts, status_code=400)
            Character.objects.filter(pk=character.pk).update(
                dna_file=character.dna_file.name, model_sheet=character.model_sheet.name
            )
    return character


def character_update_dna(
    *,
    character: Character,
    user: AnyUser | None,
    color_palette: dict | None = None,
    style_description: str | None = None,
    locked_features: list[str] | None = None,
) -> Character:
    """An admin corrects the palette, style description or locked features (see character_update)."""
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can correct a Character DNA.", code="forbidden", status_code=403)
    return character_update(
        character=character,
        user=user,
        color_palette=color_palette,
        style_description=style_description,
        locked_features=locked_features,
    )


def character_archive(*, character: Character, user: AnyUser | None) -> Character:
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can archive a character.", code="forbidden", status_code=403)
    return character_update(character=character, user=user, status=Character.Status.ARCHIVED)


def character_set_licensing(*, character: Character, user: AnyUser | None, allow: bool) -> Character:
    """The creator (or an admin) opens or closes the character to licensing by other stories."""
    return character_update(character=character, user=user, allow_licensing=allow)


def character_relock(*, character: Character, user: AnyUser | None) -> Character:
    """Rebuild the DNA from the character's source frames (after new extraction, or a fixed pipeline)."""
    if user is None or not user.is_staff:
        raise ServiceError("Only admins can re-lock a character.", code="forbidden", status_code=403)
    frames = list(character.source_frames.select_related("clip").order_by("pk"))
    if not frames:
        raise ServiceError("This character has no source frames left to rebuild from.", code="no_frames")
    Character.objects.filter(pk=character.pk).update(status=Character.Status.CANDIDATE)
    return _build_dna(
        character,
        character.name,
        frames,
        character.creator,
        character.total_votes,
        character.submitted_description,
        character.render_style if character.render_style_source == "stated" else "",
        None,
        character.group_id,  # a re-lock measures the same character
    )


def character_record_use(*, character_id: int) -> None:
    """One more clip generated with this character: the count and dna.json move together (the row is
    locked, so concurrent completions each count once)."""
    character = Character.objects.get(pk=character_id)
    character_update(character=character, user=None, clips_used_delta=1, system=True)
