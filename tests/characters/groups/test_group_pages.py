"""Character groups on the pages: the locked character on its rows, and rename / merge / split by contributors."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from rest_framework.test import APIClient

from characters.groups import services as group_services
from characters.models import Appearance, CandidateFrame, CharacterGroup
from tests.characters.groups.test_character_groups import _descriptor, _track
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory
from voting import services as voting_services
from voting.models import VotingSession

pytestmark = pytest.mark.django_db


def _frame(clip, seconds, tracks):
    return CandidateFrame.objects.create(
        clip=clip,
        seconds=seconds,
        timestamp=f"00:0{seconds}",
        image=f"frames/{clip.pk}-{seconds}.jpg",
        thumbnail=f"frames/{clip.pk}-{seconds}t.jpg",
        width=1280,
        height=720,
        rank=int(seconds),
        quality=80 - int(seconds),
        detections=[
            {"box": {"x": 10 * t, "y": 0, "width": 50, "height": 50}, "pose": "frontal", "track": t} for t in tracks
        ],
    )


def _clip_with(story, people):
    """A clip showing each of `people` (descriptor seeds) in a shot of its own, with one candidate frame each."""
    clip = ClipFactory(story=story)
    frames = [_frame(clip, i + 1, [i]) for i in range(len(people))]
    tracks = [
        _track(i, i, i * 2, i * 2 + 1, _descriptor(seed, 0.05, jitter_seed=clip.pk)) for i, seed in enumerate(people)
    ]
    group_services.clip_record_tracks(clip=clip, tracks=tracks, frames=frames)
    return clip


@pytest.fixture
def story():
    """Character A and Character B, one clip; the story's creator is a contributor."""
    story = StoryFactory()
    _clip_with(story, [1, 2])
    return story


def _groups(story):
    return list(CharacterGroup.objects.filter(story=story).order_by("number"))


def _editor(story):
    client = Client()
    client.force_login(story.created_by)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The locked character on the rows -------------------------------------------------------------


def test_a_new_clip_of_a_locked_group_is_recognised_as_that_character(story, client):
    a, b = _groups(story)
    eileen = CharacterFactory(story=story, name="Commander Eileen", group=a)
    later = _clip_with(story, [1])  # the same person in a new clip joins Character A
    assert Appearance.objects.get(clip=later).group == a
    link = f'<a class="group-row__locked" href="{eileen.get_absolute_url()}"><strong>Commander Eileen (locked)</strong>'
    for url in (later.get_absolute_url(), story.get_absolute_url()):
        html = client.get(url).content.decode()
        assert link in html, url
    rows = client.get(story.get_absolute_url()).content.decode()
    assert "Character B (locked)" not in rows and '<strong class="group-row__label">Character B</strong>' in rows

    api = APIClient()
    groups = api.get(f"/api/v1/stories/{story.pk}/character-groups").json()["groups"]
    assert {g["group_id"]: g["character_id"] for g in groups} == {a.pk: eileen.character_id, b.pk: None}
    assert api.get(f"/api/v1/characters/{eileen.character_id}").json()["group_id"] == a.pk


def test_an_archived_character_is_not_shown_as_the_groups(story, client):
    a, _ = _groups(story)
    CharacterFactory(story=story, name="Old Eileen", group=a, status="archived")
    assert "Old Eileen (locked)" not in client.get(story.get_absolute_url()).content.decode()


# --- Who sees the forms -----------------------------------------------------------------------------


def test_only_contributors_get_the_edit_forms(story, client):
    a, _ = _groups(story)
    rename = f'action="/character-groups/{a.pk}/rename/"'
    merge = f'action="/character-groups/{a.pk}/merge/"'
    page = _editor(story).get(story.get_absolute_url()).content.decode()
    assert rename in page and merge in page
    for viewer in (client, None):
        if viewer is None:
            viewer = Client()
            viewer.force_login(UserFactory())  # signed in, not a contributor
        html = viewer.get(story.get_absolute_url()).content.decode()
        assert rename not in html and merge not in html
        assert "Contributors of the story can rename, merge and split them" in html


# --- Rename ---------------------------------------------------------------------------------------


def test_rename_from_the_story_page(story):
    a, _ = _groups(story)
    response = _editor(story).post(
        f"/character-groups/{a.pk}/rename/",
        {"label": "  Commander Eileen ", "next": f"{story.get_absolute_url()}#who-is-who"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{story.get_absolute_url()}#who-is-who"
    assert "“Character A” is now called “Commander Eileen”." in _messages(response)
    a.refresh_from_db()
    assert a.label == "Commander Eileen"
    assert "Renamed “Character A” to “Commander Eileen”." in LogEntry.objects.get(object_id=str(a.pk)).change_message


@pytest.mark.parametrize(
    ("label", "said"), [("", "A label needs 1 to 100 characters."), ("x" * 101, "A label needs 1 to 100 characters.")]
)
def test_a_refused_rename_says_why_and_changes_nothing(story, label, said):
    a, _ = _groups(story)
    response = _editor(story).post(f"/character-groups/{a.pk}/rename/", {"label": label}, follow=True)
    assert f"“Character A” was not renamed: {said}" in _messages(response)
    a.refresh_from_db()
    assert a.label == "Character A" and not LogEntry.objects.exists()


def test_rename_by_someone_else_is_refused_and_anonymous_is_sent_to_log_in(story, client):
    a, _ = _groups(story)
    stranger = Client()
    stranger.force_login(UserFactory())
    response = stranger.post(f"/character-groups/{a.pk}/rename/", {"label": "Mine"}, follow=True)
    assert (
        "“Character A” was not renamed: Only contributors of this story can rename, merge or split its characters."
        in (_messages(response))
    )
    anonymous = client.post(f"/character-groups/{a.pk}/rename/", {"label": "Mine"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    a.refresh_from_db()
    assert a.label == "Character A"


def test_the_forms_need_a_csrf_token_and_a_foreign_next_is_not_followed(story):
    a, _ = _groups(story)
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(story.created_by)
    assert guarded.post(f"/character-groups/{a.pk}/rename/", {"label": "Mine"}).status_code == 403
    response = _editor(story).post(
        f"/character-groups/{a.pk}/rename/", {"label": "Mine", "next": "https://elsewhere.example/"}
    )
    assert response["Location"] == f"{story.get_absolute_url()}#who-is-who"


def test_an_unknown_group_is_a_404(story):
    assert _editor(story).post("/character-groups/999999/rename/", {"label": "x"}).status_code == 404
    assert Client().get("/character-groups/999999/").status_code == 404


# --- Merge ----------------------------------------------------------------------------------------


def test_merge_this_is_the_same_as(story):
    a, b = _groups(story)
    response = _editor(story).post(f"/character-groups/{a.pk}/merge/", {"other_group_id": b.pk}, follow=True)
    assert "“Character B” was merged into “Character A”: they are one character now." in _messages(response)
    assert _groups(story) == [a] and a.appearances.count() == 2
    assert LogEntry.objects.filter(object_id=str(a.pk), change_message__contains="Merged “Character B”").exists()


def test_merge_carries_the_locked_character_and_the_open_vote(story, settings):
    settings.VOTING_MIN_SUBMISSIONS = 2
    a, b = _groups(story)
    b_frame = CandidateFrame.objects.get(detections__contains=[{"group_id": b.pk}])
    for name in ("B1", "B2"):
        voting_services.submission_create(
            story=story, submitter=UserFactory(), frame_ids=[b_frame.pk], style_description=name
        )
    eileen = CharacterFactory(story=story, group=b)
    _editor(story).post(f"/character-groups/{a.pk}/merge/", {"other_group_id": b.pk})
    eileen.refresh_from_db()
    assert eileen.group == a
    assert VotingSession.objects.get(status="active").group == a


@pytest.mark.parametrize("case", ["nothing picked", "itself", "both locked", "both in a vote"])
def test_a_refused_merge_says_why_and_merges_nothing(story, settings, case):
    a, b = _groups(story)
    other = b.pk
    expected = {
        "nothing picked": "Pick the character this one is the same as.",
        "itself": "A group cannot be merged with itself.",
        "both locked": "“Character A” and “Character B” are both locked characters",
        "both in a vote": "“Character A” and “Character B” each have an open vote",
    }[case]
    if case == "nothing picked":
        other = ""
    elif case == "itself":
        other = a.pk
    elif case == "both locked":
        CharacterFactory(story=story, group=a)
        CharacterFactory(story=story, group=b)
    else:
        settings.VOTING_MIN_SUBMISSIONS = 2
        for group in (a, b):
            frame = CandidateFrame.objects.get(detections__contains=[{"group_id": group.pk}])
            for name in ("1", "2"):
                voting_services.submission_create(
                    story=story, submitter=UserFactory(), frame_ids=[frame.pk], style_description=name
                )
    response = _editor(story).post(f"/character-groups/{a.pk}/merge/", {"other_group_id": other}, follow=True)
    said = _messages(response)
    assert len(said) == 1 and said[0].startswith("Nothing was merged: ") and expected in said[0], said
    assert _groups(story) == [a, b]


# --- Split ----------------------------------------------------------------------------------------


@pytest.fixture
def mixed(story):
    """Character A wrongly holds two people: Character B was merged into it."""
    a, b = _groups(story)
    group_services.group_merge(group=a, other_group_id=b.pk, user=story.created_by)
    return a, list(a.appearances.order_by("start_seconds"))


def test_the_group_page_lists_appearances_and_splits_the_ticked_ones(story, mixed):
    a, (first, second) = mixed
    editor = _editor(story)
    page = editor.get(f"/character-groups/{a.pk}/").content.decode()
    assert f'name="appearance_ids" value="{first.pk}"' in page and f'name="appearance_ids" value="{second.pk}"' in page
    response = editor.post(f"/character-groups/{a.pk}/split/", {"appearance_ids": [second.pk]}, follow=True)
    new = CharacterGroup.objects.exclude(pk=a.pk).get(story=story)
    assert response.redirect_chain[-1][0] == f"/character-groups/{new.pk}/"
    assert f"1 appearance of “Character A” is now a character of its own, “{new.label}”. Rename it below." in (
        _messages(response)
    )
    assert list(new.appearances.all()) == [second] and list(a.appearances.all()) == [first]
    assert LogEntry.objects.filter(object_id=str(new.pk), change_message__contains="Split off").exists()


@pytest.mark.parametrize("case", ["none ticked", "all ticked", "of another group"])
def test_a_refused_split_says_why_and_splits_nothing(story, mixed, case):
    a, appearances = mixed
    if case == "none ticked":
        picked = []
    elif case == "all ticked":
        picked = [x.pk for x in appearances]
    else:  # an appearance of the same clip that no group holds
        picked = [
            Appearance.objects.create(
                clip=appearances[0].clip, shot_index=9, track_index=9, start_seconds=8, end_seconds=9
            ).pk
        ]
    expected = {
        "none ticked": "Tick the appearances that show another character.",
        "all ticked": "That is every appearance of the group: nothing would be left to split from.",
        "of another group": f"are not in “{a.label}”",
    }[case]
    response = _editor(story).post(f"/character-groups/{a.pk}/split/", {"appearance_ids": picked}, follow=True)
    assert response.redirect_chain[-1][0] == f"/character-groups/{a.pk}/"
    said = _messages(response)
    assert len(said) == 1 and said[0].startswith("Nothing was split: ") and expected in said[0], said
    assert CharacterGroup.objects.filter(story=story).count() == 1


def test_the_group_page_shows_no_forms_to_others(story, mixed, client):
    a, _ = mixed
    page = client.get(f"/character-groups/{a.pk}/").content.decode()
    assert "Appearances" in page and 'name="appearance_ids"' not in page and "/rename/" not in page
