"""Locking a winning design into a Character DNA, on clips made from the public-domain photos."""

import json
import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from skimage import data

from characters.clips.services import clip_create, story_create
from characters.dna import images as dna
from characters.dna.services import InvalidDNA, character_lock, character_update_dna
from characters.models import CandidateFrame, Character
from common.exceptions import ServiceError
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services as voting
from voting.models import CharacterSubmission

pytestmark = pytest.mark.django_db(transaction=True)


def _median_hex(image_rgb: np.ndarray, x0, y0, x1, y1) -> str:
    r, g, b = np.median(image_rgb[y0:y1, x0:x1].reshape(-1, 3), axis=0)
    return f"#{int(r):02X}{int(g):02X}{int(b):02X}"


# Measured by hand on skimage's astronaut photo: a patch of her hair (the crown), and of her cheeks and nose.
ASTRONAUT = data.astronaut()
HAIR_BY_HAND = _median_hex(ASTRONAUT, 180, 30, 270, 55)
SKIN_BY_HAND = _median_hex(ASTRONAUT, 195, 110, 255, 128)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "http://testserver"
    return settings.MEDIA_ROOT


@pytest.fixture
def extracted(media, good_clip, profile_clip):
    """A story with a frontal clip and a profile clip, really extracted."""
    owner = UserFactory(username="owner")
    story = story_create(title="Orbit", created_by=owner)
    frontal = clip_create(story=story, uploader=owner, upload=open(good_clip, "rb"))  # noqa: SIM115
    side = clip_create(story=story, uploader=owner, upload=open(profile_clip, "rb"))  # noqa: SIM115
    frontal.refresh_from_db()
    side.refresh_from_db()
    assert frontal.status == side.status == "ready"
    return story, list(frontal.candidates.order_by("rank")), list(side.candidates.order_by("rank"))


def test_lock_builds_a_valid_canonical_dna(extracted):
    story, frontal, side = extracted
    frame_ids = [f.pk for f in frontal[:3]] + [side[0].pk]
    character = character_lock(
        story=story,
        name="Commander Élodie",
        frame_ids=frame_ids,
        creator=story.created_by,
        votes=12,
        description="Smiling astronaut, short brown curly hair, orange flight suit",
    )
    assert character.status == "canonical" and character.lock_error == ""
    assert re.fullmatch(r"commander_elodie_[a-z0-9]{3}", character.character_id)
    refs = {r.kind: r for r in character.reference_images.all()}
    assert set(refs) == {"full_body", "face_closeup", "side_profile"}
    assert CandidateFrame.objects.get(pk=refs["face_closeup"].source_frame_id).pose == "frontal"
    assert refs["side_profile"].source_frame_id == side[0].pk
    for ref in refs.values():
        assert ref.image.name.startswith(f"characters/{character.character_id}/")
        assert default_storage.exists(ref.image.name) and min(ref.width, ref.height) >= 512

    assert character.dna_file.name == f"characters/{character.character_id}/dna.json"
    document = json.loads(default_storage.open(character.dna_file.name).read())
    assert dna.validate_dna(document) == []
    assert document["character_id"] == character.character_id and document["total_votes"] == 12
    assert document["reference_images"]["full_body"].startswith("http://testserver/characters/")
    assert 1 <= len(document["locked_features"]) <= 10
    # The free text stays in the description; features are measured ones (and stated ones: none here).
    assert "short brown curly hair" not in document["locked_features"]
    assert {r["source"] for r in document["feature_sources"]} == {"measured"}
    assert "photorealistic" not in document["style_description"].lower()
    assert document["style_description"].startswith("Smiling astronaut") and len(document["style_description"]) <= 500
    assert default_storage.exists(character.model_sheet.name)


def test_palette_matches_colours_measured_by_hand(media, mixed_clip):
    # The mixed clip opens on her whole head (the benchmark-like close-up crops the crown away).
    owner = UserFactory(username="owner")
    story = story_create(title="Orbit", created_by=owner)
    clip = clip_create(story=story, uploader=owner, upload=open(mixed_clip, "rb"))  # noqa: SIM115
    opening = list(clip.candidates.filter(seconds__lt=2))
    assert opening, "the sharp opening seconds must give candidates"
    character = character_lock(story=story, name="Eileen", frame_ids=[f.pk for f in opening], description="x")
    palette = character.color_palette
    assert dna.delta_e(palette["hair"], HAIR_BY_HAND) < 8, (palette["hair"], HAIR_BY_HAND)
    assert dna.delta_e(palette["skin"], SKIN_BY_HAND) < 6, (palette["skin"], SKIN_BY_HAND)
    # and they are not the same colour measured twice
    assert dna.delta_e(palette["hair"], palette["skin"]) > 15
    assert all(re.fullmatch(r"#[0-9A-F]{6}", v) for v in palette.values())


def test_lock_is_idempotent_per_submission(extracted):
    story, frontal, _ = extracted
    kwargs = dict(story=story, name="Eileen", frame_ids=[frontal[0].pk], description="calm", origin_submission_id=77)
    first = character_lock(**kwargs)
    second = character_lock(**kwargs)
    assert first.pk == second.pk and Character.objects.count() == 1
    assert first.reference_images.filter(kind="full_body").count() == 1


def test_vote_winner_becomes_a_character_once(extracted, settings):
    settings.VOTING_QUORUM = 1
    story, frontal, side = extracted
    subs = [
        voting.submission_create(
            story=story, submitter=UserFactory(), frame_ids=ids, style_description=desc, character_name=name
        )
        for ids, desc, name in (
            ([frontal[0].pk], "Brown curly hair, orange suit", "Eileen"),
            # A rival design of the same character (votes are per character group, issue 12).
            ([frontal[1].pk], "Dark hair, black coat", "Cam"),
        )
    ]
    voting.vote_cast(submission_id=subs[0].pk, voter=UserFactory())  # quorum 1: a majority at once
    character = Character.objects.get()
    assert (character.origin_submission_id, character.status, character.name) == (subs[0].pk, "canonical", "Eileen")
    assert character.creator == subs[0].submitter and character.total_votes == 1
    again = voting.submission_lock_winner(submission_id=subs[0].pk)
    assert again.pk == character.pk and Character.objects.count() == 1
    assert CharacterSubmission.objects.get(pk=subs[1].pk).status == "lost"


def test_admin_edit_rewrites_and_revalidates(extracted):
    story, frontal, _ = extracted
    character = character_lock(story=story, name="Eileen", frame_ids=[frontal[0].pk], description="Brown hair")
    admin = UserFactory(is_staff=True)
    before = default_storage.open(character.dna_file.name).read()
    with pytest.raises(ServiceError) as err:
        character_update_dna(character=character, user=admin, color_palette={"hair": "brown"})
    assert err.value.status_code == 400 and "color_palette" in err.value.message
    assert default_storage.open(character.dna_file.name).read() == before
    with pytest.raises(ServiceError):
        character_update_dna(character=character, user=admin, locked_features=[])
    with pytest.raises(ServiceError) as err:
        character_update_dna(character=character, user=UserFactory(), style_description="no")
    assert err.value.status_code == 403

    updated = character_update_dna(
        character=character,
        user=admin,
        color_palette={"hair": "#c4a000", "suit": "#E06A20"},
        locked_features=["gold hair", "gold hair", "orange suit"],
    )
    document = json.loads(default_storage.open(updated.dna_file.name).read())
    assert document["color_palette"] == {"hair": "#C4A000", "suit": "#E06A20"}
    assert document["locked_features"] == ["gold hair", "orange suit"]


def test_invalid_dna_fails_the_lock_and_stays_candidate(extracted, settings):
    story, frontal, _ = extracted
    settings.SITE_URL = "//no-scheme"  # reference URLs would not be URIs
    with pytest.raises(InvalidDNA, match="reference_images"):
        character_lock(story=story, name="Eileen", frame_ids=[frontal[0].pk], description="x", origin_submission_id=5)
    character = Character.objects.get(origin_submission_id=5)
    assert character.status == "candidate" and "is not a 'uri'" in character.lock_error
    assert not character.dna_file and not default_storage.exists(f"characters/{character.character_id}/dna.json")


@pytest.mark.parametrize("name", ["Ça va! Élodie 🚀", "!!!", "名前", "  Sir   Aldric  ", "x" * 100])
def test_odd_names_give_valid_unique_slugs(name):
    ids = {dna.character_id_for(name, suffix) for suffix in ("a1b", "zz9")}
    assert len(ids) == 2
    assert all(re.fullmatch(r"^[a-z0-9_]+$", i) and len(i) <= 100 for i in ids)


def test_validate_dna_reports_each_problem():
    bad = {
        "character_id": "Bad Id",
        "name": "x",
        "reference_images": {},
        "style_description": "s" * 501,
        "color_palette": {"hair": "red"},
        "locked_features": [],
    }
    problems = "\n".join(dna.validate_dna(bad))
    for field in ("character_id", "reference_images", "style_description", "color_palette/hair", "locked_features"):
        assert field in problems


def test_lock_endpoint_and_dna_api(extracted):
    from rest_framework.test import APIClient

    from voting.models import VotingSession

    story, frontal, side = extracted
    subs = [
        voting.submission_create(
            story=story, submitter=UserFactory(), frame_ids=ids, style_description=desc, character_name=name
        )
        for ids, desc, name in (
            ([frontal[0].pk], "Brown curly hair, orange suit", "Eileen"),
            ([frontal[1].pk], "Dark hair, black coat", "Cam"),  # a rival design of the same character
        )
    ]
    api = APIClient()
    api.force_authenticate(UserFactory(username="contributor"))
    url = f"/api/v1/stories/{story.pk}/characters/lock"
    assert api.post(url, {"submission_id": subs[0].pk}, format="json").status_code == 403

    api.force_authenticate(UserFactory(username="boss", is_staff=True))
    assert api.post(url, {"submission_id": 999999}, format="json").status_code == 404
    elsewhere = StoryFactory()
    foreign = voting.submission_create(
        story=elsewhere,
        submitter=UserFactory(),
        style_description="other",
        frame_ids=[CandidateFrameFactory(clip=ClipFactory(story=elsewhere)).pk],
    )
    refused = api.post(url, {"submission_id": foreign.pk}, format="json")
    assert refused.status_code == 404 and f"Story {story.pk} has no submission" in refused.json()["error"]["message"]
    response = api.post(url, {"submission_id": subs[0].pk, "character_name": "Commander Eileen"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Commander Eileen" and body["status"] == "canonical"
    assert set(body["reference_images"]) >= {"full_body", "face_closeup"}
    session = VotingSession.objects.get()
    assert (session.status, session.winner_id, session.decided_by) == ("complete", subs[0].pk, "admin")

    again = api.post(url, {"submission_id": subs[0].pk}, format="json")
    assert again.status_code == 200 and again.json()["character_id"] == body["character_id"]
    assert Character.objects.count() == 1

    dna_body = APIClient().get(f"/api/v1/characters/{body['character_id']}").json()
    for field in (
        "character_id",
        "name",
        "story_id",
        "story_name",
        "status",
        "style_description",
        "color_palette",
        "locked_features",
        "reference_images",
        "created_from_clip",
        "total_votes",
        "clips_used",
        "creator",
        "created_at",
    ):
        assert field in dna_body
    assert dna_body["story_name"] == "Orbit" and dna_body["creator"]["username"] == subs[0].submitter.username
    # Each reference URL resolves (through the stable redirect) to the stored image.
    ref = APIClient().get(dna_body["reference_images"]["face_closeup"].replace("http://testserver", ""))
    assert ref.status_code == 302

    patched = api.patch(
        f"/api/v1/characters/{body['character_id']}", {"locked_features": ["orange flight suit"]}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["locked_features"] == ["orange flight suit"]
    bad = api.patch(
        f"/api/v1/characters/{body['character_id']}", {"color_palette": {"hair": "brownish"}}, format="json"
    )
    assert bad.status_code == 400 and "color_palette" in bad.json()["error"]["message"]
