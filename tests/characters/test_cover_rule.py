"""The cover rule (a character's face close-up, else its first reference image) has one home, on
ReferenceImage: the story page's cards, the character page, the gallery page and the gallery API agree."""

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from characters.models import Character, ReferenceImage
from tests.support.factories import CharacterFactory, ReferenceImageFactory

pytestmark = pytest.mark.django_db

WITHOUT_FACE = ["side_profile", "full_body"]
WITH_FACE = ["side_profile", "full_body", "face_closeup"]


def _character_with(kinds) -> Character:
    character = CharacterFactory(allow_licensing=True)
    for kind in kinds:
        ReferenceImageFactory(character=character, kind=kind)
    return character


@pytest.mark.parametrize(("kinds", "cover"), [(WITHOUT_FACE, "full_body"), (WITH_FACE, "face_closeup"), ([], None)])
def test_every_page_and_the_api_show_the_same_cover(kinds, cover):
    character = _character_with(kinds)
    loaded = Character.objects.prefetch_related("reference_images").get(pk=character.pk)
    in_db = ReferenceImage.objects.filter(character=character).order_by(*ReferenceImage.cover_order()).first()

    assert (loaded.cover.kind if loaded.cover else None) == cover
    assert (in_db.kind if in_db else None) == cover  # the queryset order and the Python key agree

    client = Client()
    story_page = client.get(character.story.get_absolute_url()).content.decode()
    character_page = client.get(character.get_absolute_url()).content.decode()
    gallery_page = client.get("/gallery/").content.decode()
    [row] = client.get("/api/v1/gallery/characters").json()["characters"]
    if cover is None:
        assert row["thumbnail_url"] is None
        return
    image_url = default_storage.url(f"characters/{character.character_id}/{cover}.jpg")
    assert f'src="{image_url}"' in story_page
    assert f'src="{image_url}"' in character_page.split('class="character-hero__face"')[1].split("</div>")[0]
    assert image_url in gallery_page
    assert row["thumbnail_url"].endswith(f"/characters/{character.character_id}/references/{cover}")
