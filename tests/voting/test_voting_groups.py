"""A design is of one character, and votes run per character group: frames of two groups in one design
are refused, each group gets its own vote, clients that send only a slot keep working."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.groups import services as group_services
from characters.models import CandidateFrame, CharacterGroup
from common.exceptions import Conflict
from tests.characters.groups.test_character_groups import _descriptor, _track
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services
from voting.models import CharacterSubmission, VotingSession
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


# --- Votes run per character group ----------------------------------------------------------------


def _design(story, frames, name, **kwargs):
    return services.submission_create(
        story=story,
        submitter=UserFactory(),
        frame_ids=[f.pk for f in frames],
        style_description=f"{name}: flight suit",
        character_name=name,
        **kwargs,
    )


def test_each_character_group_gets_its_own_vote(two_characters, settings):
    settings.VOTING_MIN_SUBMISSIONS = 2
    story, frames, a, b = two_characters
    _design(story, [frames[0]], "A1")
    _design(story, [frames[2]], "B1")
    assert not VotingSession.objects.exists()  # one design of each: neither vote has two yet
    _design(story, [frames[1]], "A2")
    _design(story, [frames[2], frames[3]], "B2", group_id=b.pk)
    sessions = {s.group_id: s for s in VotingSession.objects.filter(status="active")}
    assert set(sessions) == {a.pk, b.pk}
    assert {s.character_name for s in sessions[a.pk].submissions.all()} == {"A1", "A2"}
    assert {s.character_name for s in sessions[b.pk].submissions.all()} == {"B1", "B2"}
    assert sessions[a.pk].slot_label == "Character A"
    with pytest.raises(Conflict) as again:
        services.session_start(story=story, group_id=a.pk)
    assert again.value.code == "session_exists" and "“Character A”" in again.value.message


def test_the_database_allows_one_open_session_per_story_and_group(two_characters):
    story, frames, a, b = two_characters
    now = timezone.now()
    times = {"starts_at": now, "ends_at": now + timedelta(hours=1)}
    VotingSession.objects.create(story=story, group=a, character_slot="group-a-1", **times)
    VotingSession.objects.create(story=story, group=a, character_slot="done", status="complete", **times)
    VotingSession.objects.create(story=story, group=b, character_slot="group-b", **times)
    with pytest.raises(IntegrityError), transaction.atomic():
        VotingSession.objects.create(story=story, group=a, character_slot="group-a-2", **times)


def test_a_vote_is_started_by_group_or_by_a_slot_that_names_the_group(two_characters, settings):
    settings.VOTING_AUTO_START = False
    story, frames, a, b = two_characters
    _design(story, [frames[0]], "A1")
    _design(story, [frames[1]], "A2")
    _design(story, [frames[2]], "B1")
    _design(story, [frames[2]], "B2")
    by_slot = services.session_start(story=story, character_slot="character-b")
    assert by_slot.group == b and by_slot.submissions.count() == 2
    admin = UserFactory(is_staff=True)
    client = APIClient()
    client.force_authenticate(admin)
    url = f"/api/v1/stories/{story.pk}/voting-sessions"
    started = client.post(url, {"group_id": a.pk}, format="json")
    assert started.status_code == 201, started.content
    body = started.json()
    assert (body["group_id"], body["slot_label"], body["character_slot"]) == (a.pk, "Character A", "character-a")
    foreign = client.post(url, {"group_id": 999999}, format="json")
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "invalid_group"
    neither = client.post(url, {}, format="json")
    assert neither.status_code == 400


# --- Clients from before identity: frame_ids and a character_slot ---------------------------------


@pytest.fixture
def legacy_client():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=UserFactory())[0].key}")
    return client


def _legacy_post(client, story, frames, slot):
    return client.post(
        f"/api/v1/stories/{story.pk}/characters/submissions",
        {"frame_ids": [f.pk for f in frames], "style_description": "Suit", "character_slot": slot},
        format="json",
    )


def test_a_slot_naming_no_group_names_the_unnamed_group(two_characters, legacy_client, settings):
    settings.VOTING_MIN_SUBMISSIONS = 2
    story, frames, a, b = two_characters
    first = _legacy_post(legacy_client, story, frames[:2], "main-robot")
    assert first.status_code == 201, first.content
    a.refresh_from_db()
    assert a.label == "Main robot"
    body = first.json()
    assert (body["group_id"], body["character_slot"], body["slot_label"]) == (a.pk, "main-robot", "Main robot")
    renamed = LogEntry.objects.get(object_id=str(a.pk))
    assert "“Character A” to “Main robot”" in renamed.change_message
    # The next client using the same slot lands in the same vote.
    second = _legacy_post(legacy_client, story, frames[:1], "main-robot")
    assert second.status_code == 201
    session = VotingSession.objects.get(status="active")
    assert session.group == a and second.json()["voting_session_id"] == session.pk


def test_a_slot_naming_another_group_is_refused_and_writes_nothing(two_characters, legacy_client):
    story, frames, a, b = two_characters
    refused = _legacy_post(legacy_client, story, frames[:2], "character-b")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "slot_of_another_group"
    assert "“Character B”" in error["message"] and "“Character A”" in error["message"]
    assert error["details"]["slot_group_id"] == b.pk and error["details"]["group_id"] == a.pk
    assert not CharacterSubmission.objects.exists()
    a.refresh_from_db()
    assert a.label == "Character A"


def test_a_named_group_keeps_its_name_and_its_own_slot_is_accepted(two_characters, legacy_client):
    story, frames, a, b = two_characters
    a.label = "Commander Eileen"
    a.save()
    own = _legacy_post(legacy_client, story, frames[:1], "commander-eileen")
    other_word = _legacy_post(legacy_client, story, frames[1:2], "protagonist")
    assert (own.status_code, other_word.status_code) == (201, 201)
    a.refresh_from_db()
    assert a.label == "Commander Eileen"
    assert {own.json()["character_slot"], other_word.json()["character_slot"]} == {"commander-eileen"}


def test_frames_without_a_group_keep_the_slot_they_were_sent_with(legacy_client):
    story = StoryFactory()
    frame = CandidateFrameFactory(clip=ClipFactory(story=story))
    response = _legacy_post(legacy_client, story, [frame], "villain")
    assert response.status_code == 201
    body = response.json()
    assert (body["group_id"], body["character_slot"], body["slot_label"]) == (None, "villain", "villain")


# --- The locked character remembers its group -------------------------------------------------------


def test_the_winner_locks_into_a_character_of_its_group(two_characters, monkeypatch):
    from characters.dna import services as dna_services

    monkeypatch.setattr(dna_services, "_build_dna", lambda character, *args: character)  # the DNA is not the point
    story, frames, a, b = two_characters
    design = _design(story, [frames[2]], "Cameraman")
    CharacterSubmission.objects.filter(pk=design.pk).update(status=CharacterSubmission.Status.WON)
    character = services.submission_lock_winner(submission_id=design.pk)
    character.refresh_from_db()
    assert character.group == b
    assert services.submission_lock_winner(submission_id=design.pk).pk == character.pk  # idempotent


# --- Sessions from before this change ---------------------------------------------------------------


def test_the_data_migration_gives_old_sessions_the_group_their_designs_agree_on(two_characters, settings):
    from django.apps import apps

    settings.VOTING_AUTO_START = False
    fill = importlib.import_module("voting.migrations.0006_session_group").fill_session_groups
    story, frames, a, b = two_characters
    now = timezone.now()
    times = {"starts_at": now, "ends_at": now + timedelta(hours=1)}

    def old_session(slot, designs, **extra):
        session = VotingSession.objects.create(story=story, character_slot=slot, **times, **extra)
        session.submissions.set(designs)
        return session

    a_designs = [_design(story, [frames[0]], "A1"), _design(story, [frames[1]], "A2")]
    b_design = _design(story, [frames[2]], "B1")
    agreeing = old_session("protagonist", a_designs)
    mixed = old_session("sidekick", [a_designs[0], b_design], status="complete")
    same_group_later = old_session("hero", a_designs)  # open too: the older one gets the group
    ungrouped = CharacterSubmission.objects.create(story=story, submitter=UserFactory(), style_description="x")
    before_identity = old_session("villain", [ungrouped, b_design], status="complete")
    VotingSession.objects.update(group=None)
    fill(apps, None)
    groups = dict(VotingSession.objects.values_list("pk", "group_id"))
    assert groups[agreeing.pk] == a.pk
    agreeing.refresh_from_db()
    assert (agreeing.character_slot, agreeing.slot_label) == (f"group-{a.pk}", "Character A")
    # A new vote of designs from before identity under the old slot text is not blocked by it.
    old_style = [
        CharacterSubmission.objects.create(story=story, submitter=UserFactory(), style_description=n) for n in "xy"
    ]
    assert services.session_start(story=story, character_slot="protagonist", submissions=old_style).group is None
    assert groups[mixed.pk] is None and groups[before_identity.pk] is None
    assert groups[same_group_later.pk] is None


def test_the_story_page_names_each_vote_by_its_characters_label(two_characters, client, settings):
    settings.VOTING_MIN_SUBMISSIONS = 2
    story, frames, a, b = two_characters
    a.label = "Commander Eileen"
    a.save()
    _design(story, [frames[0]], "A1")
    _design(story, [frames[1]], "A2")
    _design(story, [frames[2]], "B1")
    html = client.get(story.get_absolute_url()).content.decode()
    assert "Which design should be Commander Eileen?" in html
    assert "The vote for Character B opens with 1 more design" in html
    assert f"group-{a.pk}<" not in html and f"group-{b.pk}<" not in html  # the stored slot key is not shown


def test_an_admin_lets_frames_of_another_character_in_with_a_reason(two_characters):
    """A costume change the face grouping split: the admin says why, the design keeps it, the admin log too."""
    story, frames, a, b = two_characters
    admin = UserFactory(is_staff=True)
    design = services.submission_create(
        story=story,
        submitter=admin,
        frame_ids=[frames[0].pk, frames[2].pk],
        style_description="Flight suit, then the lab coat",
        group_id=a.pk,
        mixed_characters_reason="  Frame 3 is her in the lab coat; the grouping split the costume.  ",
    )
    assert design.character_group == a and design.frame_ids == [frames[0].pk, frames[2].pk]
    assert design.mixed_characters_reason == "Frame 3 is her in the lab coat; the grouping split the costume."
    entry = LogEntry.objects.get(object_id=str(design.pk), user=admin)
    assert f"design of “{a.label}”" in entry.change_message and "lab coat" in entry.change_message
    # Without naming the character, the admin is asked which one it is.
    with pytest.raises(VotingError) as refused:
        services.submission_create(
            story=story,
            submitter=admin,
            frame_ids=[frames[0].pk, frames[2].pk],
            style_description="Suit",
            mixed_characters_reason="costume",
        )
    assert refused.value.code == "group_required"
    # A reason on a design of one character lets nothing in: it is not kept.
    plain = services.submission_create(
        story=story,
        submitter=admin,
        frame_ids=[frames[0].pk],
        style_description="Suit",
        mixed_characters_reason="just in case",
    )
    assert plain.mixed_characters_reason == "" and not LogEntry.objects.filter(object_id=str(plain.pk)).exists()


def test_only_an_admin_may_let_other_characters_in(two_characters):
    story, frames, a, b = two_characters
    contributor = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=contributor)[0].key}")
    body = {
        "frame_ids": [frames[0].pk, frames[2].pk],
        "style_description": "Suit",
        "group_id": a.pk,
        "mixed_characters_reason": "trust me",
    }
    answer = client.post(f"/api/v1/stories/{story.pk}/characters/submissions", body, format="json")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "override_forbidden"
    assert "Only an admin" in answer.json()["error"]["message"]
    assert not CharacterSubmission.objects.filter(story=story).exists()
    # The same request by an admin is taken, and the API shows the reason.
    admin = UserFactory(is_staff=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=admin)[0].key}")
    taken = client.post(f"/api/v1/stories/{story.pk}/characters/submissions", body, format="json")
    assert taken.status_code == 201, taken.content
    assert taken.json()["mixed_characters_reason"] == "trust me" and taken.json()["group_id"] == a.pk
