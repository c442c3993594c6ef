"""A design is of one character: frames of two character groups in one submission are refused."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.groups import services as group_services
from characters.models import CandidateFrame, CharacterGroup
from tests.characters.groups.test_character_groups import _descriptor, _track
from tests.support.factories import ClipFactory, StoryFactory, UserFactory
from voting import services
from voting.services import VotingError

pytestmark = pytest.mark.django_db


def _frame(clip, seconds, tracks):
    return CandidateFrame.objects.create(
        clip=clip,
        seconds=seconds,
        timestamp="00:01",
        image=f"frames/{seconds}.jpg",
        thumbnail=f"frames/{seconds}t.jpg",
        width=1280,
        height=720,
        rank=int(seconds),
        quality=80 - int(seconds),
        detections=[
            {"box": {"x": 10 * t, "y": 0, "width": 50, "height": 50}, "pose": "frontal", "track": t} for t in tracks
        ],
    )


@pytest.fixture
def two_characters():
    """Frames 1-2 show A, frame 3 shows B, frame 4 shows A and B together."""
    story = StoryFactory()
    clip = ClipFactory(story=story)
    frames = [_frame(clip, 1, [0]), _frame(clip, 2, [0]), _frame(clip, 3, [1]), _frame(clip, 4, [0, 1])]
    group_services.clip_record_tracks(
        clip=clip, tracks=[_track(0, 0, 0, 5, _descriptor(1)), _track(1, 0, 2, 5, _descriptor(2))], frames=frames
    )
    a, b = CharacterGroup.objects.filter(story=story).order_by("number")
    frames = list(CandidateFrame.objects.filter(clip=clip).order_by("seconds"))
    return story, frames, a, b


def test_a_design_of_two_characters_is_refused(two_characters):
    story, frames, a, b = two_characters
    with pytest.raises(VotingError) as refused:
        services.submission_create(
            story=story,
            submitter=UserFactory(),
            frame_ids=[frames[0].pk, frames[2].pk],
            style_description="Flight suit",
        )
    assert refused.value.code == "mixed_characters"
    assert "different characters" in refused.value.message and a.label in refused.value.message
    with pytest.raises(VotingError) as refused:
        services.submission_create(
            story=story,
            submitter=UserFactory(),
            frame_ids=[frames[0].pk, frames[2].pk],
            style_description="Flight suit",
            group_id=a.pk,
        )
    assert refused.value.code == "mixed_characters" and refused.value.details["frame_ids"] == [frames[2].pk]
    assert f"show another character than “{a.label}”" in refused.value.message


def test_the_group_is_inferred_from_the_frames_or_given(two_characters):
    story, frames, a, b = two_characters
    inferred = services.submission_create(
        story=story, submitter=UserFactory(), frame_ids=[frames[0].pk, frames[3].pk], style_description="Flight suit"
    )
    assert inferred.character_group == a  # frame 4 shows both; A is the one they share
    given = services.submission_create(
        story=story,
        submitter=UserFactory(),
        frame_ids=[frames[3].pk, frames[2].pk],
        style_description="Cameraman",
        group_id=b.pk,
    )
    assert given.character_group == b


def test_the_api_takes_group_id_and_keeps_frame_ids_only_clients_working(two_characters):
    story, frames, a, b = two_characters
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=UserFactory())[0].key}")
    url = f"/api/v1/stories/{story.pk}/characters/submissions"
    old_style = client.post(
        url,
        {"frame_ids": [frames[0].pk, frames[1].pk], "style_description": "Suit", "character_slot": "protagonist"},
        format="json",
    )
    assert old_style.status_code == 201, old_style.content
    assert old_style.json()["group_id"] == a.pk
    mixed = client.post(
        url, {"frame_ids": [frames[0].pk, frames[2].pk], "style_description": "Suit", "group_id": b.pk}, format="json"
    )
    assert mixed.status_code == 400 and mixed.json()["error"]["code"] == "mixed_characters"
    other_story = client.post(
        url, {"frame_ids": [frames[0].pk], "style_description": "Suit", "group_id": 999999}, format="json"
    )
    assert other_story.status_code == 400 and other_story.json()["error"]["code"] == "invalid_group"


def test_the_page_shows_one_characters_frames_and_refuses_a_mix(client, two_characters):
    story, frames, a, b = two_characters
    user = UserFactory()
    client.force_login(user)
    url = f"/stories/{story.pk}/submit/"
    page = client.get(url, {"group": b.pk})
    assert page.status_code == 200
    shown = {f.pk for clip in page.context["clips"] for f in clip.picker_frames}
    assert shown == {frames[2].pk, frames[3].pk}
    refused = client.post(
        url, {"frame_ids": [frames[0].pk, frames[2].pk], "style_description": "Suit", "group_id": b.pk}
    )
    assert refused.status_code == 400
    assert "show another character" in refused.content.decode()
