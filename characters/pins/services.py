"""Writes of pinned characters, the rules in one place: the admin panel, the API and the generation app call these.

`pin_create`, `pin_add_angle`, `pin_remove_angle`, `pin_update`, `pin_delete`, `pin_record_usage`.
Reads are in `selectors`, the frame images and their rules in `frames`.

Files: names are exact (`pinned/{story}/{N}_frontal.jpg`, `{N}_angle_{k}.jpg`). Every write takes the
story's row lock, claims its row (unique slot) first and writes the file last, so a file at a claimed
name is always ours to replace; deleting a row deletes its files (a post_delete receiver in models.py,
which also covers a story's cascade).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import IntegrityError, transaction
from django.db.models import F, Model, QuerySet

from characters.models import (
    PIN_MAX_ANGLES,
    Character,
    Clip,
    PinAngle,
    PinnedCharacter,
    PinningSettings,
    Story,
    pinned_image_name,
)
from characters.pins.frames import PinFrame, format_precise_timestamp, pin_frame_for
from characters.pins.selectors import can_pin, free_element_indexes, pinning_settings
from common.exceptions import Conflict, NotFound, ServiceError
from common.typing import AnyUser, UserType

DISABLED_MESSAGE = "Character pinning is disabled."


class PinningDisabled(ServiceError):
    status_code = 403
    code = "pinning_disabled"


class ElementTaken(Conflict):
    code = "element_taken"


# --- Settings and who may pin ---------------------------------------------------------------------------


def require_pinning_enabled() -> PinningSettings:
    config = pinning_settings()
    if not config.enabled:
        raise PinningDisabled(DISABLED_MESSAGE)
    return config


def _require_can_pin(user: AnyUser | None) -> UserType:
    if not can_pin(user):
        raise ServiceError(
            "Only staff with the “Can pin characters from clip frames” permission can pin characters.",
            code="forbidden",
            status_code=403,
        )
    return cast(UserType, user)  # staff with the permission: an account


def _audit(user: UserType, obj: Model, action_flag: int, message: str) -> None:
    """Django's admin log records every pin change, from the panel or the API alike."""
    LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj], action_flag=action_flag, change_message=message)


def _lock_story(story_id: int) -> None:
    """Serialise a story's pin writes (PostgreSQL row lock; SQLite serialises writers by itself)."""
    Story.objects.select_for_update().filter(pk=story_id).first()


def _storage() -> Storage:
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
    # A chosen frame (not the last-frame shortcut) always has its time.
    return f"clip {clip.pk} at {format_precise_timestamp(frame.seconds)} (frame {frame.frame_index})"  # type: ignore[arg-type]


def _check_clip_of_story(clip: Clip, story: Story) -> None:
    if clip.story_id != story.pk:
        raise ServiceError(
            f"Clip {clip.pk} belongs to another story; pick a clip of “{story.title}”.", code="clip_of_another_story"
        )


def _clean_label(label: str | None) -> str:
    label = (label or "").strip()
    max_length = cast(int, PinnedCharacter._meta.get_field("label").max_length)  # a CharField: set
    if len(label) > max_length:
        raise ServiceError(f"The label may be at most {max_length} characters.", code="invalid_label")
    return label


def _check_element_index(element_index: Any, config: PinningSettings) -> int:
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
    *,
    story: Story,
    source_clip: Clip,
    element_index: Any,
    user: AnyUser | None,
    label: str = "",
    frame_timestamp: float | None = None,
    character: Character | None = None,
) -> PinnedCharacter:
    """Pin a frame of `source_clip` (at `frame_timestamp`, or its stored last frame when None) as
    `@Element{element_index}` of `story`. Nothing is stored unless every check passes."""
    config = require_pinning_enabled()
    user = _require_can_pin(user)
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
                story=story,
                element_index=index,
                label=label,
                frontal_image=name,
                frontal_width=frame.width,
                frontal_height=frame.height,
                source_clip=source_clip,
                source_frame_seconds=frame.seconds,
                pinned_by=user,
                character=character,
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


class OtherCharacter(Conflict):
    code = "other_character"


def _image_descriptor(data: bytes) -> Any:
    import cv2
    import numpy as np

    from characters.vision.identity import image_descriptor

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    return None if image is None else image_descriptor(image)


def _identity_distance(pin: PinnedCharacter, frame: PinFrame) -> float | None:
    """Descriptor distance between the pin's frontal image and the frame; None when either shows no face."""
    from characters.vision.identity import distance

    try:
        with pin.frontal_image.open("rb") as fh:
            frontal = _image_descriptor(fh.read())
    except OSError:
        return None
    if frontal is None:
        return None
    angle = _image_descriptor(frame.jpeg)
    return None if angle is None else distance(frontal, angle)


def pin_add_angle(
    *,
    pin: PinnedCharacter,
    source_clip: Clip,
    user: AnyUser | None,
    frame_timestamp: float | None = None,
    confirm_other_character: bool = False,
) -> PinAngle:
    """Add another view of a pinned character from a clip of the same story (frame or last frame).

    An angle whose face is another character than the frontal's (descriptor distance at or above
    SAME_CHARACTER_DISTANCE) is refused with `other_character` unless `confirm_other_character`,
    and the confirmation is written to the admin log. A frame where no face is found is not judged.
    """
    from characters.vision.identity import SAME_CHARACTER_DISTANCE, USUAL_SAME_CHARACTER_DISTANCE

    require_pinning_enabled()
    user = _require_can_pin(user)
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
    other = _identity_distance(pin, frame)
    if other is not None and other < SAME_CHARACTER_DISTANCE:
        other = None
    if other is not None and not confirm_other_character:
        raise OtherCharacter(
            f"This looks like another character (distance {other:.2f}; the same character is usually under "
            f"{USUAL_SAME_CHARACTER_DISTANCE:g}). Pick a frame of {pin.element_tag}'s character, or confirm "
            "that it is the same one.",
            details={"distance": round(other, 4), "threshold": SAME_CHARACTER_DISTANCE},
        )
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
                pin=pin,
                position=free[0],
                image=name,
                width=frame.width,
                height=frame.height,
                source_clip=source_clip,
                source_frame_seconds=frame.seconds,
                added_by=user,
            )
            PinnedCharacter.objects.filter(pk=pin.pk).update(updated_at=angle.created_at)
            confirmed = (
                f" Confirmed as the same character although it looks like another (distance {other:.2f})."
                if other is not None
                else ""
            )
            _audit(
                user,
                pin,
                CHANGE,
                f"Added angle {angle.position} from {_describe_source(frame, source_clip)}.{confirmed}",
            )
            written = True
            _write_exact(name, frame.jpeg)
    except BaseException as exc:
        if written:
            _storage().delete(name)
        if isinstance(exc, IntegrityError):
            raise Conflict("Another angle was added to this pin at the same moment; try again.") from None
        raise
    return angle


def pin_remove_angle(*, angle: PinAngle, user: AnyUser | None) -> None:
    require_pinning_enabled()
    user = _require_can_pin(user)
    pin = angle.pin
    with transaction.atomic():
        _lock_story(pin.story_id)
        _audit(user, pin, CHANGE, f"Removed angle {angle.position}.")
        angle.delete()  # its file goes with it (models.py)


def pin_update(
    *,
    pin: PinnedCharacter,
    user: AnyUser | None,
    is_active: bool | None = None,
    label: str | None = None,
) -> PinnedCharacter:
    """Deactivate or reactivate a pin (kept, but generation stops using it), or rename it."""
    require_pinning_enabled()
    user = _require_can_pin(user)
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


def pin_delete(*, pin: PinnedCharacter, user: AnyUser | None) -> None:
    """Delete a pin, its angles and all their stored files."""
    require_pinning_enabled()
    user = _require_can_pin(user)
    with transaction.atomic():
        _lock_story(pin.story_id)
        _audit(user, pin, DELETION, f"Deleted {pin.element_tag} and its {pin.angles.count()} angle(s).")
        pin.delete()


def pin_record_usage(pins: Iterable[PinnedCharacter] | QuerySet[PinnedCharacter]) -> None:
    """Count one more generation for each pin; atomic under concurrent generations. A queryset is updated as is."""
    if not isinstance(pins, QuerySet):
        pins = PinnedCharacter.objects.filter(pk__in=[pin.pk for pin in pins])
    pins.update(usage_count=F("usage_count") + 1)
