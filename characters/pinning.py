"""Pinned characters, the rules in one place: the admin panel, the API and the generation app call these.

Writes (services): `pin_create`, `pin_add_angle`, `pin_remove_angle`, `pin_update`, `pin_delete`,
`pin_record_usage`. Reads (selectors): `pinning_settings`, `story_pins`, `story_active_pins` (and its
lean twin for generation requests, `story_pins_for_generation`), `free_element_indexes`, and
`pin_frame_for`, which gives the exact JPEG a pin would store (the panel's preview shows it).

Images: every stored pin image meets Kling O1's element rules (JPEG/PNG, at most 10 MB, each side at
least 300 px, aspect ratio 0.4-2.5). A frame that cannot meet them is refused with the reason; frames
are never upscaled, since a blown-up small frame only gives the model a blurred character.

Files: names are exact (`pinned/{story}/{N}_frontal.jpg`, `{N}_angle_{k}.jpg`). Every write takes the
story's row lock, claims its row (unique slot) first and writes the file last, so a file at a claimed
name is always ours to replace; deleting a row deletes its files (a post_delete receiver in models.py,
which also covers a story's cascade).
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, QuerySet
from PIL import Image, UnidentifiedImageError

from common.exceptions import Conflict, NotFound, ServiceError

from .models import (
    PIN_MAX_ANGLES,
    Character,
    Clip,
    PinAngle,
    PinnedCharacter,
    PinningSettings,
    Story,
    pinned_image_name,
)
from .services import clip_local_copy
from .video import InvalidVideo, open_capture

DISABLED_MESSAGE = "Character pinning is disabled."
PIN_PERMISSION = "characters.pin_character"

ELEMENT_IMAGE_MAX_BYTES = 10 * 1024 * 1024
ELEMENT_IMAGE_MIN_SIDE = 300
ELEMENT_IMAGE_MIN_ASPECT = 0.4
ELEMENT_IMAGE_MAX_ASPECT = 2.5
ELEMENT_IMAGE_FORMATS = ("JPEG", "PNG")
# Tried in order until the JPEG fits the size limit (a 4K frame of noise can exceed 10 MB at high quality).
JPEG_QUALITIES = (92, 85, 75, 60)
# A timestamp may land this far past the reported duration (rounding in players and containers).
TIMESTAMP_TOLERANCE_SECONDS = 0.001

# Remote storages (S3): clips being scrubbed are kept locally, so each preview does not download the clip again.
REMOTE_CLIP_CACHE_DIR = Path(tempfile.gettempdir()) / "cps-pin-clips"
REMOTE_CLIP_CACHE_FILES = 4


class PinningDisabled(ServiceError):
    status_code = 403
    code = "pinning_disabled"


class FrameNotUsable(ServiceError):
    """The frame cannot become an element image (too small, odd shape, not decodable)."""

    status_code = 422
    code = "frame_not_usable"


class InvalidTimestamp(ServiceError):
    code = "invalid_timestamp"


class ElementTaken(Conflict):
    code = "element_taken"


# --- Settings and who may pin ---------------------------------------------------------------------------


def pinning_settings() -> PinningSettings:
    """The `character_pinning` flag and config (the migration creates the row; this recreates it, on)."""
    config, _ = PinningSettings.objects.get_or_create(pk=PinningSettings.SINGLETON_PK)
    return config


def require_pinning_enabled() -> PinningSettings:
    config = pinning_settings()
    if not config.enabled:
        raise PinningDisabled(DISABLED_MESSAGE)
    return config


def can_pin(user) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.is_active and user.is_staff
        and user.has_perm(PIN_PERMISSION)
    )


def _require_can_pin(user) -> None:
    if not can_pin(user):
        raise ServiceError(
            "Only staff with the “Can pin characters from clip frames” permission can pin characters.",
            code="forbidden", status_code=403,
        )


# --- Frames ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinFrame:
    """A JPEG ready to store as an element image, and where it came from."""

    jpeg: bytes
    width: int
    height: int
    seconds: float | None  # the clip time it shows (the last frame's time for the last-frame shortcut)
    frame_index: int | None  # None for the stored last frame (no decoding happened)
    from_last_frame: bool = False


def format_precise_timestamp(seconds: float) -> str:
    """`mm:ss.mmm`, as the panel shows the current time."""
    millis = round(seconds * 1000)
    return f"{millis // 60000:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def element_image_problems(*, width: int, height: int, size_bytes: int, image_format: str) -> list[str]:
    """Why an image cannot be a Kling O1 element image; empty when it can."""
    problems = []
    if image_format not in ELEMENT_IMAGE_FORMATS:
        problems.append(f"The image is {image_format or 'of an unknown format'}; the provider takes JPEG or PNG.")
    if min(width, height) < ELEMENT_IMAGE_MIN_SIDE:
        problems.append(
            f"The frame is {width}×{height} px; the generation provider needs at least {ELEMENT_IMAGE_MIN_SIDE} px "
            "on each side. Pin from a larger clip (frames are never upscaled: that would only blur the character)."
        )
    aspect = width / height if height else 0
    if height and not ELEMENT_IMAGE_MIN_ASPECT <= aspect <= ELEMENT_IMAGE_MAX_ASPECT:
        problems.append(
            f"The frame's aspect ratio is {aspect:.2f} ({width}×{height}); the provider accepts "
            f"{ELEMENT_IMAGE_MIN_ASPECT} to {ELEMENT_IMAGE_MAX_ASPECT}."
        )
    if size_bytes > ELEMENT_IMAGE_MAX_BYTES:
        problems.append(f"The image is {size_bytes / 1_048_576:.1f} MB; the provider takes at most 10 MB.")
    return problems


def _checked(frame: PinFrame, image_format: str = "JPEG") -> PinFrame:
    problems = element_image_problems(
        width=frame.width, height=frame.height, size_bytes=len(frame.jpeg), image_format=image_format
    )
    if problems:
        raise FrameNotUsable(" ".join(problems), details={"width": frame.width, "height": frame.height})
    return frame


def _encode_element_jpeg(image) -> bytes:
    for quality in JPEG_QUALITIES:
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise FrameNotUsable("The frame could not be encoded as JPEG.")
        if buffer.size <= ELEMENT_IMAGE_MAX_BYTES:
            return buffer.tobytes()
    raise FrameNotUsable("The frame stays larger than 10 MB as a JPEG, the provider's limit for an element image.")


def checked_timestamp(clip: Clip, seconds) -> float:
    """The timestamp as a float within [0, duration]; InvalidTimestamp with the valid range otherwise."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise InvalidTimestamp(f"“{seconds}” is not a time in seconds.") from None
    duration = clip.duration_seconds
    if not duration:
        raise InvalidTimestamp(f"Clip {clip.pk} has no known duration, so no frame can be picked by time.")
    if not math.isfinite(value) or value < 0 or value > duration + TIMESTAMP_TOLERANCE_SECONDS:
        raise InvalidTimestamp(
            f"The timestamp {seconds} s is outside clip {clip.pk}: pick a time between 0 and {duration:.3f} s.",
            details={"min": 0, "max": duration},
        )
    return min(value, duration)


def frame_index_at(seconds: float, fps: float, frame_count: int) -> int:
    """The frame on screen at `seconds`: frame i shows during [i/fps, (i+1)/fps). The end maps to the last frame."""
    index = math.floor(seconds * fps + 1e-6)
    return max(0, min(index, frame_count - 1)) if frame_count > 0 else max(0, index)


def _clip_path_for_decoding(clip: Clip) -> Path:
    """A local file with the clip's video. Local storage gives its own path; a remote clip is downloaded once
    into a small cache (clip files are never rewritten: a new upload gets a new name)."""
    try:
        return Path(clip.video.path)
    except NotImplementedError:
        pass
    storage = clip.video.storage
    key = f"{type(storage).__name__}:{getattr(storage, 'bucket_name', '')}:{clip.video.name}"
    REMOTE_CLIP_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = REMOTE_CLIP_CACHE_DIR / (hashlib.sha256(key.encode()).hexdigest()[:32] + Path(clip.video.name).suffix)
    if cached.exists():
        os.utime(cached)
        return cached
    downloaded, _ = clip_local_copy(clip)
    os.replace(downloaded, cached)  # atomic: a concurrent reader sees the whole file or none
    for stale in sorted(REMOTE_CLIP_CACHE_DIR.iterdir(), key=lambda p: p.stat().st_mtime)[:-REMOTE_CLIP_CACHE_FILES]:
        stale.unlink(missing_ok=True)
    return cached


def clip_frame_at(*, clip: Clip, seconds) -> PinFrame:
    """Decode the frame on screen at `seconds` (seek by frame index, then one read) as an element JPEG."""
    seconds = checked_timestamp(clip, seconds)
    try:
        capture = open_capture(_clip_path_for_decoding(clip))
    except (InvalidVideo, OSError) as exc:
        raise FrameNotUsable(f"Clip {clip.pk} could not be opened: {exc}") from None
    try:
        fps = clip.fps or capture.get(cv2.CAP_PROP_FPS)
        frame_count = clip.frame_count or int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = frame_index_at(seconds, fps, frame_count)
        # OpenCV's FFmpeg backend seeks to the keyframe before and decodes forward to this exact frame.
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok or image is None:
        raise FrameNotUsable(
            f"No picture could be decoded at {format_precise_timestamp(seconds)} (frame {index}) of clip {clip.pk}; "
            "the end of the file may be damaged. Pick an earlier time."
        )
    height, width = image.shape[:2]
    return _checked(PinFrame(_encode_element_jpeg(image), width, height, seconds, index))


def clip_last_frame(*, clip: Clip) -> PinFrame:
    """The clip's stored last frame as it is: its bytes, no video decoding."""
    if not clip.last_frame:
        raise Conflict(
            f"Clip {clip.pk} has no stored last frame yet (its frame extraction has not finished). "
            "Pick a timestamp instead.",
            code="no_last_frame",
        )
    with clip.last_frame.open("rb") as fh:
        data = fh.read()
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            image_format, (width, height) = image.format or "", image.size
            if image_format == "PNG":  # stored pins are JPEG files
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITIES[0])
                data, image_format = buffer.getvalue(), "JPEG"
    except UnidentifiedImageError:
        raise FrameNotUsable(f"Clip {clip.pk}'s stored last frame is not an image; re-extract the clip.") from None
    frame = PinFrame(data, width, height, clip.last_frame_seconds, None, from_last_frame=True)
    return _checked(frame, image_format)


def pin_frame_for(*, clip: Clip, frame_timestamp) -> PinFrame:
    """The exact image a pin or angle from this clip would store: the frame at `frame_timestamp`,
    or the clip's stored last frame when it is None."""
    if frame_timestamp is None:
        return clip_last_frame(clip=clip)
    return clip_frame_at(clip=clip, seconds=frame_timestamp)


# --- Selectors ---------------------------------------------------------------------------------------------


def story_pins(story: Story) -> QuerySet[PinnedCharacter]:
    """All of a story's pins (active or not) with their angles, by element."""
    return (
        PinnedCharacter.objects.filter(story=story)
        .select_related("source_clip", "pinned_by", "character")
        .prefetch_related(Prefetch("angles", queryset=PinAngle.objects.select_related("source_clip")))
        .order_by("element_index")
    )


def _usable_pins(pins: QuerySet[PinnedCharacter], config: PinningSettings) -> list[PinnedCharacter]:
    """The rule for which pins generation uses: active, within the configured slots; none while pinning is off."""
    if not config.enabled:
        return []
    return list(pins.filter(is_active=True, element_index__lte=config.max_elements_per_season))


def story_active_pins(story: Story, config: PinningSettings | None = None) -> list[PinnedCharacter]:
    """The pins generation uses, by element (see `_usable_pins`), with everything the panel and API show."""
    return _usable_pins(story_pins(story), config or pinning_settings())


def story_pins_for_generation(story: Story, config: PinningSettings) -> list[PinnedCharacter]:
    """The same pins as `story_active_pins`, with only what a generation request reads: label, element, images.

    The caller passes the settings it has already read (once per request)."""
    lean = (
        PinnedCharacter.objects.filter(story=story)
        .only("id", "story_id", "element_index", "label", "frontal_image", "is_active")
        .prefetch_related(Prefetch("angles", queryset=PinAngle.objects.only("id", "pin_id", "image", "position")))
        .order_by("element_index")
    )
    return _usable_pins(lean, config)


def free_element_indexes(story: Story, config: PinningSettings | None = None) -> list[int]:
    config = config or pinning_settings()
    taken = set(PinnedCharacter.objects.filter(story=story).values_list("element_index", flat=True))
    return [n for n in range(1, config.max_elements_per_season + 1) if n not in taken]


def pin_get(pin_id) -> PinnedCharacter:
    try:
        return PinnedCharacter.objects.select_related("story").get(pk=int(pin_id))
    except (PinnedCharacter.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no pinned character {pin_id}.") from None


# --- Services ----------------------------------------------------------------------------------------------


def _audit(user, obj, action_flag: int, message: str) -> None:
    """Django's admin log records every pin change, from the panel or the API alike."""
    LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj], action_flag=action_flag, change_message=message)


def _lock_story(story_id: int) -> None:
    """Serialise a story's pin writes (PostgreSQL row lock; SQLite serialises writers by itself)."""
    Story.objects.select_for_update().filter(pk=story_id).first()


def _storage():
    return PinnedCharacter._meta.get_field("frontal_image").storage


def _write_exact(name: str, data: bytes) -> None:
    """Store `data` under exactly `name`. The caller holds the row claiming this name, so a file already
    there is a leftover of no live pin: it is replaced rather than letting the storage pick another name."""
    storage = _storage()
    storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        storage.delete(saved)
        raise RuntimeError(f"The storage renamed {name} to {saved}.")


def _describe_source(frame: PinFrame, clip: Clip) -> str:
    if frame.from_last_frame:
        return f"clip {clip.pk}'s last frame"
    return f"clip {clip.pk} at {format_precise_timestamp(frame.seconds)} (frame {frame.frame_index})"


def _check_clip_of_story(clip: Clip, story: Story) -> None:
    if clip.story_id != story.pk:
        raise ServiceError(
            f"Clip {clip.pk} belongs to another story; pick a clip of “{story.title}”.", code="clip_of_another_story"
        )


def _clean_label(label) -> str:
    label = (label or "").strip()
    max_length = PinnedCharacter._meta.get_field("label").max_length
    if len(label) > max_length:
        raise ServiceError(f"The label may be at most {max_length} characters.", code="invalid_label")
    return label


def _check_element_index(element_index, config: PinningSettings) -> int:
    try:
        index = int(element_index)
    except (TypeError, ValueError):
        index = 0
    if isinstance(element_index, bool) or not 1 <= index <= config.max_elements_per_season:
        raise ServiceError(
            f"The element index must be between 1 and {config.max_elements_per_season} "
            f"(@Element1 to @Element{config.max_elements_per_season}).",
            code="element_index_out_of_range",
        )
    return index


def _taken(story: Story, index: int) -> ElementTaken:
    return ElementTaken(
        f"@Element{index} is already pinned in “{story.title}”. Delete that pin first, or pick a free slot.",
        details={"free_element_indexes": free_element_indexes(story)},
    )


def pin_create(
    *, story: Story, source_clip: Clip, element_index, user, label: str = "", frame_timestamp=None,
    character: Character | None = None,
) -> PinnedCharacter:
    """Pin a frame of `source_clip` (at `frame_timestamp`, or its stored last frame when None) as
    `@Element{element_index}` of `story`. Nothing is stored unless every check passes."""
    config = require_pinning_enabled()
    _require_can_pin(user)
    label = _clean_label(label)
    index = _check_element_index(element_index, config)
    _check_clip_of_story(source_clip, story)
    if character is not None and character.story_id != story.pk:
        raise ServiceError(f"{character.name} is a character of another story.", code="character_of_another_story")
    if PinnedCharacter.objects.filter(story=story, element_index=index).exists():
        raise _taken(story, index)  # before spending a decode
    frame = pin_frame_for(clip=source_clip, frame_timestamp=frame_timestamp)
    name = pinned_image_name(story.pk, index, "frontal")
    written = False
    try:
        with transaction.atomic():
            _lock_story(story.pk)
            if PinnedCharacter.objects.filter(story=story, element_index=index).exists():
                raise _taken(story, index)
            pin = PinnedCharacter.objects.create(
                story=story, element_index=index, label=label, frontal_image=name, frontal_width=frame.width,
                frontal_height=frame.height, source_clip=source_clip, source_frame_seconds=frame.seconds,
                pinned_by=user, character=character,
            )
            _audit(user, pin, ADDITION, f"Pinned {pin.element_tag} from {_describe_source(frame, source_clip)}.")
            written = True
            _write_exact(name, frame.jpeg)
    except BaseException as exc:
        if written:
            _storage().delete(name)
        if isinstance(exc, IntegrityError):  # lost a race for the slot before writing: the winner's file stays
            raise _taken(story, index) from None
        raise
    return pin


def pin_add_angle(*, pin: PinnedCharacter, source_clip: Clip, user, frame_timestamp=None) -> PinAngle:
    """Add another view of a pinned character from a clip of the same story (frame or last frame)."""
    require_pinning_enabled()
    _require_can_pin(user)
    story = pin.story
    _check_clip_of_story(source_clip, story)

    def full() -> Conflict:
        return Conflict(
            f"{pin.element_tag} already has {PIN_MAX_ANGLES} angles, the most a pin can have; remove one first.",
            code="too_many_angles",
        )

    if pin.angles.count() >= PIN_MAX_ANGLES:
        raise full()
    frame = pin_frame_for(clip=source_clip, frame_timestamp=frame_timestamp)
    name, written = "", False
    try:
        with transaction.atomic():
            _lock_story(story.pk)
            if not PinnedCharacter.objects.filter(pk=pin.pk).exists():
                raise NotFound(f"{pin.element_tag} was deleted meanwhile.")
            used = set(pin.angles.values_list("position", flat=True))
            free = [k for k in range(1, PIN_MAX_ANGLES + 1) if k not in used]
            if not free:
                raise full()
            name = pinned_image_name(story.pk, pin.element_index, f"angle_{free[0]}")
            angle = PinAngle.objects.create(
                pin=pin, position=free[0], image=name, width=frame.width, height=frame.height,
                source_clip=source_clip, source_frame_seconds=frame.seconds, added_by=user,
            )
            PinnedCharacter.objects.filter(pk=pin.pk).update(updated_at=angle.created_at)
            _audit(user, pin, CHANGE, f"Added angle {angle.position} from {_describe_source(frame, source_clip)}.")
            written = True
            _write_exact(name, frame.jpeg)
    except BaseException as exc:
        if written:
            _storage().delete(name)
        if isinstance(exc, IntegrityError):
            raise Conflict("Another angle was added to this pin at the same moment; try again.") from None
        raise
    return angle


def pin_remove_angle(*, angle: PinAngle, user) -> None:
    require_pinning_enabled()
    _require_can_pin(user)
    pin = angle.pin
    with transaction.atomic():
        _lock_story(pin.story_id)
        _audit(user, pin, CHANGE, f"Removed angle {angle.position}.")
        angle.delete()  # its file goes with it (models.py)


def pin_update(*, pin: PinnedCharacter, user, is_active: bool | None = None, label: str | None = None):
    """Deactivate or reactivate a pin (kept, but generation stops using it), or rename it."""
    require_pinning_enabled()
    _require_can_pin(user)
    changes = []
    if label is not None:
        label = _clean_label(label)
        if label != pin.label:
            pin.label = label
            changes.append(f"Label set to “{label}”.")
    if is_active is not None and is_active != pin.is_active:
        pin.is_active = is_active
        changes.append("Reactivated." if is_active else "Deactivated.")
    if changes:
        with transaction.atomic():
            pin.save(update_fields=["label", "is_active", "updated_at"])
            _audit(user, pin, CHANGE, " ".join(changes))
    return pin


def pin_delete(*, pin: PinnedCharacter, user) -> None:
    """Delete a pin, its angles and all their stored files."""
    require_pinning_enabled()
    _require_can_pin(user)
    with transaction.atomic():
        _lock_story(pin.story_id)
        _audit(user, pin, DELETION, f"Deleted {pin.element_tag} and its {pin.angles.count()} angle(s).")
        pin.delete()


def pin_record_usage(pins: Iterable[PinnedCharacter] | QuerySet[PinnedCharacter]) -> None:
    """Count one more generation for each pin; atomic under concurrent generations. A queryset is updated as is."""
    if not isinstance(pins, QuerySet):
        pins = PinnedCharacter.objects.filter(pk__in=[pin.pk for pin in pins])
    pins.update(usage_count=F("usage_count") + 1)
