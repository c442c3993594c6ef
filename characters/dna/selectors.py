"""Reads for canonical characters."""

from django.db.models import Prefetch, QuerySet

from characters.models import Character, ReferenceImage, Story


def character_queryset() -> QuerySet[Character]:
    return Character.objects.select_related("story", "creator", "created_from_clip").prefetch_related(
        Prefetch("reference_images", queryset=ReferenceImage.objects.order_by("kind", "pk"))
    )


def story_characters(story: Story) -> QuerySet[Character]:
    return character_queryset().filter(story=story).exclude(status=Character.Status.ARCHIVED)
