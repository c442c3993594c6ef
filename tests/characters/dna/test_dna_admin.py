"""The characters admin shows each character's cover by the one cover rule (Character.cover)."""

import pytest
from django.urls import reverse

from tests.support.factories import CharacterFactory, ReferenceImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_list_shows_the_face_close_up_else_the_first_reference(client):
    with_face, without_face = CharacterFactory(name="Eileen"), CharacterFactory(name="Bolt")
    ReferenceImageFactory(character=with_face, kind="full_body")
    ReferenceImageFactory(character=with_face, kind="face_closeup")
    ReferenceImageFactory(character=without_face, kind="side_profile")
    ReferenceImageFactory(character=without_face, kind="full_body")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:characters_character_changelist")).content.decode()
    assert f"characters/{with_face.character_id}/face_closeup.jpg" in page
    assert f"characters/{with_face.character_id}/full_body.jpg" not in page
    # No close-up: the first reference by kind ("full_body" before "side_profile"), as on every page.
    assert f"characters/{without_face.character_id}/full_body.jpg" in page
    assert f"characters/{without_face.character_id}/side_profile.jpg" not in page
