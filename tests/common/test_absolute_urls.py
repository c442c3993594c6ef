"""Absolute links in API bodies follow the host the client used; dna.json and what providers fetch keep SITE_URL."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from characters.dna.services import dna_document, reference_path, reference_url
from characters.models import ReferenceImage
from common.absolute_urls import absolute_url
from tests.support.factories import (
    CandidateFrameFactory,
    CharacterFactory,
    ClipFactory,
    PinnedCharacterFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PUBLIC = "https://public.example"
OTHER_HOST = "testserver-b"


@pytest.fixture(autouse=True)
def two_hosts(settings):
    settings.SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, OTHER_HOST]


def client_on(host: str, user=None) -> APIClient:
    api = APIClient(HTTP_HOST=host)
    if user is not None:
        api.force_authenticate(user)
    return api


def test_the_helper_keeps_absolute_urls_and_falls_back_to_site_url(rf):
    request = rf.get("/", HTTP_HOST=OTHER_HOST)
    assert absolute_url(request, "/media/a.jpg") == f"http://{OTHER_HOST}/media/a.jpg"
    assert absolute_url(request, "https://bucket.s3.example/a.jpg?sig=1") == "https://bucket.s3.example/a.jpg?sig=1"
    assert absolute_url(None, "/media/a.jpg") == f"{PUBLIC}/media/a.jpg"


def test_clip_links_follow_the_request_host():
    frame = CandidateFrameFactory(clip=ClipFactory())
    for host in ("testserver", OTHER_HOST):
        body = client_on(host).get(f"/api/v1/clips/{frame.clip_id}").json()
        assert body["status_url"] == f"http://{host}/api/v1/clips/{frame.clip_id}"
        candidate = body["candidates"][0]
        assert candidate["image_url"] == f"http://{host}/media/{frame.image.name}"
        assert candidate["thumbnail_url"] == f"http://{host}/media/{frame.thumbnail.name}"
        story = client_on(host).get(f"/api/v1/stories/{frame.clip.story_id}").json()
        assert story["clips"][0]["url"] == body["status_url"]


def test_character_links_follow_the_request_host_and_dna_json_keeps_site_url():
    character = CharacterFactory(allow_licensing=True)
    for kind in (ReferenceImage.Kind.FULL_BODY, ReferenceImage.Kind.FACE_CLOSEUP):
        ReferenceImage.objects.create(character=character, kind=kind, image=f"characters/x/{kind}.jpg")

    dna_body = client_on(OTHER_HOST).get(f"/api/v1/characters/{character.character_id}").json()
    assert dna_body["reference_images"]["face_closeup"].startswith(f"http://{OTHER_HOST}/characters/")
    face = reference_path(character, "face_closeup")
    assert dna_body["reference_images"]["face_closeup"] == f"http://{OTHER_HOST}{face}"
    card = client_on(OTHER_HOST).get("/api/v1/gallery/characters").json()["characters"][0]
    assert card["thumbnail_url"] == dna_body["reference_images"]["face_closeup"]
    assert client_on(OTHER_HOST).get(card["thumbnail_url"].removeprefix(f"http://{OTHER_HOST}")).status_code != 404

    # What is stored and what providers fetch stay on the public address, whoever asked.
    document = dna_document(character)
    assert set(document["reference_images"].values()) == {
        reference_url(character, "full_body"),
        reference_url(character, "face_closeup"),
    }
    assert document["reference_images"]["face_closeup"].startswith(f"{PUBLIC}/characters/")


def test_pin_links_follow_the_request_host():
    pin = PinnedCharacterFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)  # superusers hold the pin permission
    body = client_on(OTHER_HOST, admin).get(f"/api/v1/admin/pinned-characters?story_id={pin.story_id}").json()
    assert body["characters"][0]["frontal_image_url"] == f"http://{OTHER_HOST}/media/{pin.frontal_image.name}"


def test_an_unknown_host_is_refused():
    frame = CandidateFrameFactory(clip=ClipFactory())
    assert client_on("evil.example").get(f"/api/v1/clips/{frame.clip_id}").status_code == 400
