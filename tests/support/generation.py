"""What the generation tests generate from: stories with real pins and canonical characters.

Pins go through the pinning services (real frames decoded from a stored clip); characters are
canonical rows whose reference images are crops of the same clip's first frame, so a clip of that
person scores as the same person. No extraction runs, which keeps these fixtures quick.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from characters.models import Character, Clip, PinnedCharacter, ReferenceImage, Story
from characters.pins import services as pin_services
from marketplace import services as marketplace
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory


@pytest.fixture
def offline_provider(settings):
    """Generation through the offline provider, with no fal key (use with pytest.mark.usefixtures)."""
    settings.GENERATION_PROVIDER = "offline"
    settings.FAL_KEY = ""
    settings.SITE_URL = "http://testserver"


# Where the astronaut's face is in the first frame of the good clip (1280x720), with some margin.
FACE_BOX = (380, 0, 860, 480)  # x0, y0, x1, y1


def stored_clip(story: Story, uploader, source: Path) -> Clip:
    """A ready clip of `story` whose video is a copy of `source` in our storage (no extraction)."""
    with open(source, "rb") as fh:
        name = default_storage.save(f"clips/{story.pk}/{uuid.uuid4().hex}.mp4", File(fh))
    return ClipFactory(
        story=story, uploader=uploader, video=name, duration_seconds=5.0, fps=30.0, width=1280, height=720
    )


def pinning_admin(username: str = "pin-admin"):
    admin = UserFactory(username=username, is_staff=True)
    admin.user_permissions.add(Permission.objects.get(codename="pin_character"))
    return type(admin).objects.get(pk=admin.pk)  # a fresh instance: permissions are cached per instance


def pin(
    story: Story,
    clip: Clip,
    admin,
    element_index: int,
    *,
    angles: int = 0,
    label: str = "",
    character: Character | None = None,
) -> PinnedCharacter:
    """A pin from a frame of `clip`, with `angles` more angles from later frames."""
    pinned = pin_services.pin_create(
        story=story,
        source_clip=clip,
        element_index=element_index,
        user=admin,
        label=label or f"Hero {element_index}",
        frame_timestamp=0.2,
        character=character,
    )
    for k in range(angles):
        pin_services.pin_add_angle(pin=pinned, source_clip=clip, user=admin, frame_timestamp=0.6 + 0.4 * k)
    return pinned


def _jpeg(image) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buffer.tobytes()


def canonical_character(
    story: Story,
    creator,
    clip_path: Path,
    *,
    palette: dict | None = None,
    features: list[str] | None = None,
    style: str = "Smiling astronaut in an orange flight suit.",
    kinds: tuple[str, ...] = ("full_body", "face_closeup"),
    **extra,
) -> Character:
    """A canonical character of `story` with reference images cut from the clip's first frame."""
    capture = cv2.VideoCapture(str(clip_path))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"could not read {clip_path}"
    x0, y0, x1, y1 = FACE_BOX
    crops = {"full_body": frame, "face_closeup": frame[y0:y1, x0:x1], "side_profile": frame[y0:y1, x0:x1]}
    character = CharacterFactory(
        story=story,
        creator=creator,
        style_description=style,
        color_palette=palette or {"hair": "#3B2A20", "skin": "#C89A7E", "clothing_primary": "#E06A20"},
        locked_features=features or ["short brown curly hair", "orange flight suit"],
        **extra,
    )
    for kind in kinds:
        image = crops[kind]
        ref = ReferenceImage(character=character, kind=kind, width=image.shape[1], height=image.shape[0])
        ref.image.save(f"{kind}.jpg", ContentFile(_jpeg(image)), save=False)
        ref.save()
    return character


@dataclass
class PinnedStory:
    """A story with a canonical character and pins, and a contributor who may generate with them."""

    story: Story
    admin: object
    contributor: object
    clip: Clip
    character: Character
    pins: list[PinnedCharacter] = field(default_factory=list)


def pinned_story(clip_path: Path, pins: list[tuple[int, int]], *, character_kwargs: dict | None = None) -> PinnedStory:
    """`pins` as (element index, number of extra angles)."""
    admin = pinning_admin()
    contributor = UserFactory(username="contributor")
    story = StoryFactory(title="Orbit", created_by=admin)
    clip = stored_clip(story, contributor, clip_path)  # uploading a clip makes a story contributor
    character = canonical_character(story, admin, clip_path, **(character_kwargs or {}))
    made = [pin(story, clip, admin, index, angles=angles, character=character) for index, angles in pins]
    return PinnedStory(story=story, admin=admin, contributor=contributor, clip=clip, character=character, pins=made)


def licensee_of(character: Character, username: str = "licensee", license_type: str = "pack_10"):
    """A user from elsewhere who bought a license of `character`, and their own story."""
    staff = UserFactory(username=f"{username}-granter", is_staff=True)
    buyer = UserFactory(username=username)
    marketplace.credits_grant(user=buyer, amount=1000, reason="test funds", granted_by=staff)
    if not character.allow_licensing:
        Character.objects.filter(pk=character.pk).update(allow_licensing=True)
        character.refresh_from_db()
    license = marketplace.license_purchase(buyer=buyer, character=character, license_type=license_type).license
    return buyer, StoryFactory(title=f"{username}'s story", created_by=buyer), license
