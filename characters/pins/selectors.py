"""Reads of pinned characters: the pinning flag, who may pin, a story's pins and which of them generation uses."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from characters.models import (
    PinAngle,
    PinnedCharacter,
    PinningSettings,
    Story,
)
from common.exceptions import NotFound
from common.typing import AnyUser

PIN_PERMISSION = "characters.pin_character"


def pinning_settings() -> PinningSettings:
    """The `character_pinning` flag and config (the migration creates the row; this recreates it, on)."""
    config, _ = PinningSettings.objects.get_or_create(pk=PinningSettings.SINGLETON_PK)
    return config


def can_pin(user: AnyUser | None) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(PIN_PERMISSION)
    )


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
    """The same pins as `story_active_pins`, with only what a generation request reads: label, element, images,
    the source clip (a video element), the character (attribution).

    The caller passes the settings it has already read (once per request)."""
    lean = (
        PinnedCharacter.objects.filter(story=story)
        .only(
            "id", "story_id", "element_index", "label", "frontal_image", "is_active", "source_clip_id", "character_id"
        )
        .prefetch_related(Prefetch("angles", queryset=PinAngle.objects.only("id", "pin_id", "image", "position")))
        .order_by("element_index")
    )
    return _usable_pins(lean, config)


def free_element_indexes(story: Story, config: PinningSettings | None = None) -> list[int]:
    config = config or pinning_settings()
    taken = set(PinnedCharacter.objects.filter(story=story).values_list("element_index", flat=True))
    return [n for n in range(1, config.max_elements_per_season + 1) if n not in taken]


def pin_get(pin_id: int | str) -> PinnedCharacter:
    try:
        return PinnedCharacter.objects.select_related("story").get(pk=int(pin_id))
    except (PinnedCharacter.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"There is no pinned character {pin_id}.") from None
