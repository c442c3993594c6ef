"""Identity where it guards a rule: an angle of another person on a pin, and the consistency score of a clip
whose character switches halfway."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from characters.models import PinAngle
from characters.pins import services as pin_services
from demo import clips
from demo.clips import photo
from generation import consistency
from tests.support.pinning import *  # noqa: F403 - the shared pinning fixtures
from tests.support.pinning import upload_clip


def astronaut_crop():
    return photo("astronaut")[0:330, 60:400].copy()  # her head and shoulders, as tests/generation/test_consistency.py


@pytest.fixture
def profile(pin_story, pin_admin, profile_clip):
    return upload_clip(profile_clip, pin_story, pin_admin)


@pytest.mark.django_db
def test_an_angle_of_another_person_is_refused_unless_confirmed(good, profile, pin_story, pin_admin):
    pin = pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    same = pin_services.pin_add_angle(pin=pin, source_clip=good, frame_timestamp=3.0, user=pin_admin)
    assert same.position == 1
    with pytest.raises(pin_services.OtherCharacter) as refused:
        pin_services.pin_add_angle(pin=pin, source_clip=profile, frame_timestamp=2.0, user=pin_admin)
    error = refused.value
    assert error.code == "other_character" and error.status_code == 409
    assert error.details["distance"] > 0.55
    assert error.message.startswith(
        f"This looks like another character (distance {error.details['distance']:.2f}; "
        "the same character is usually under 0.5)"
    )
    assert PinAngle.objects.filter(pin=pin).count() == 1  # nothing stored
    confirmed = pin_services.pin_add_angle(
        pin=pin, source_clip=profile, frame_timestamp=2.0, user=pin_admin, confirm_other_character=True
    )
    assert confirmed.position == 2
    log = LogEntry.objects.filter(object_id=str(pin.pk)).order_by("-pk").first()
    assert "looks like another" in log.change_message and "Added angle 2" in log.change_message


@pytest.mark.django_db
def test_the_api_refuses_the_other_character_with_its_distance(good, profile, pin_story, pin_admin):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    pin = pin_services.pin_create(
        story=pin_story, source_clip=good, element_index=1, frame_timestamp=1.0, user=pin_admin
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=pin_admin)[0].key}")
    url = f"/api/v1/admin/pinned-characters/{pin.pk}/angles"
    refused = api.post(url, {"source_clip_id": profile.pk, "frame_timestamp": 2.0}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "other_character"
    assert refused.json()["error"]["details"]["distance"] > 0.55
    accepted = api.post(
        url, {"source_clip_id": profile.pk, "frame_timestamp": 2.0, "confirm_other_character": True}, format="json"
    )
    assert accepted.status_code == 201, accepted.content


def test_a_clip_that_switches_person_halfway_scores_clearly_below_one_that_does_not(clip_dir):
    switching = clips.person_switches_halfway(clip_dir / "switches.mp4")
    # The same first half, and her again (the same framing) where he would come.
    steady_clip = clips.write_clip(
        clip_dir / "steady.mp4",
        [
            clips.Segment("astronaut", 3, 1.4, 1.6, (0.45, 0.33)),
            clips.Segment("astronaut", 3, 1.6, 1.4, (0.45, 0.33)),
        ],
        size=(960, 540),
        fps=24,
    )
    references = [astronaut_crop()]
    steady = consistency.score_video(steady_clip, references, samples=6)
    switched = consistency.score_video(switching, references, samples=6)
    assert steady.score >= 80
    assert switched.score <= steady.score - 35, (steady.score, switched.score)
    # Her half matches; his half is counted (found, but another character), not skipped.
    assert len(switched.frames) == 6 and all(f.face_found for f in switched.frames)
    assert max(f.identity for f in switched.frames[3:]) < 0.2 < min(f.identity for f in switched.frames[:3])


def test_references_that_disagree_are_reported(good_clip):
    result = consistency.score_video(good_clip, [astronaut_crop(), photo("camera")], samples=3)
    assert result.references_used == 2
    assert [(p["a"], p["b"]) for p in result.references_disagree] == [(0, 1)]
    assert result.references_disagree[0]["distance"] > 0.55
    assert result.as_dict()["references_disagree"] == result.references_disagree
