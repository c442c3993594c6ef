"""Who is who across a story's clips: tracks per shot, descriptors, character groups and their API."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.clips import services
from characters.clips.extraction import extract_candidates
from characters.groups import selectors as group_selectors
from characters.groups import services as group_services
from characters.models import Appearance, CandidateFrame, CharacterGroup, StoryContributor
from characters.vision.identity import SAME_CHARACTER_DISTANCE, distance
from characters.vision.tracking import Track
from demo import clips
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory
from tests.support.pinning import upload_clip


@pytest.fixture(scope="module")
def two_clips(clip_dir):
    return (
        clips.astronaut_cut_to_cameraman(clip_dir / "groups_a.mp4"),
        clips.cameraman_cut_to_astronaut(clip_dir / "groups_b.mp4"),
    )


@pytest.fixture(scope="module")
def extracted_a(two_clips):
    return extract_candidates(two_clips[0], fps=1.0)


# --- Extraction: shots, tracks, descriptors (no database) ---------------------------------------


def test_tracks_follow_one_face_per_shot_and_split_at_cuts(extracted_a):
    tracks = extracted_a.tracks
    # The astronaut 0-3 s, the coffee cup (a shot of its own, no face), the cameraman 5-8 s.
    assert [(t.shot_index, t.start_seconds, t.end_seconds) for t in tracks] == [(0, 0.0, 2.0), (2, 5.0, 7.0)]
    for track in tracks:
        assert track.samples == 3 and 1 <= len(track.faces) <= 3
        assert len(track.descriptor) == 128
    assert distance(tracks[0].descriptor, tracks[1].descriptor) > 0.7
    for frame in extracted_a.scored:
        expected = 0 if frame.seconds < 3 else 1
        assert [d["track"] for d in frame.detections] == [expected]


def test_extraction_without_identity_has_no_tracks(two_clips):
    result = extract_candidates(two_clips[0], fps=1.0, identity=False)
    assert result.tracks == [] and all("track" not in d for f in result.scored for d in f.detections)


# --- Joining into groups (real clips through the service) ---------------------------------------


@pytest.mark.django_db
def test_two_people_never_share_a_group_and_one_person_across_clips_and_cuts_does(two_clips, media_root):
    story = StoryFactory()
    user = story.created_by
    clip_a = services.clip_extract_frames(clip_id=upload_clip(two_clips[0], story, user).pk)
    clip_b = services.clip_extract_frames(clip_id=upload_clip(two_clips[1], story, user).pk)
    groups = list(CharacterGroup.objects.filter(story=story).order_by("number"))
    assert [g.label for g in groups] == ["Character A", "Character B"]
    by_clip = {g.pk: sorted((a.clip_id, a.start_seconds) for a in g.appearances.all()) for g in groups}
    astronaut, cameraman = groups  # clip A shows the astronaut first
    assert by_clip[astronaut.pk] == [(clip_a.pk, 0.0), (clip_b.pk, 3.0)]
    assert by_clip[cameraman.pk] == [(clip_a.pk, 5.0), (clip_b.pk, 0.0)]
    assert distance(astronaut.centroid, cameraman.centroid) > SAME_CHARACTER_DISTANCE + 0.15
    # Every face of every candidate frame names its group and track; the API's clip shows it.
    for frame in CandidateFrame.objects.filter(clip__story=story):
        for detection in frame.detections:
            expected = astronaut if (frame.clip_id == clip_a.pk) == (frame.seconds < 3) else cameraman
            assert detection["group_id"] == expected.pk and detection["appearance_id"]
    body = APIClient().get(f"/api/v1/clips/{clip_b.pk}").json()
    assert {d["group_id"] for c in body["candidates"] for d in c["detections"]} == {astronaut.pk, cameraman.pk}
    # Re-extracting a clip replaces its appearances and keeps the groups (no duplicates).
    services.clip_extract_frames(clip_id=clip_b.pk)
    assert list(CharacterGroup.objects.filter(story=story).values_list("pk", flat=True)) == [astronaut.pk, cameraman.pk]
    assert Appearance.objects.filter(clip=clip_b).count() == 2
    # The story lists them with covers, clips and screen time.
    views = group_selectors.story_group_views(story)
    assert [v.clip_ids for v in views] == [[clip_a.pk, clip_b.pk], [clip_a.pk, clip_b.pk]]
    assert all(v.cover is not None and v.frames for v in views)


# --- Joining with made-up descriptors (fast) --------------------------------------------------


def _descriptor(seed: int, jitter: float = 0.0, jitter_seed: int = 0) -> list[float]:
    base = np.random.default_rng(seed).normal(0, 1, 128)
    base = base / np.linalg.norm(base) * 0.5  # points ~0.7 apart from each other
    noise = np.random.default_rng(1000 + jitter_seed).normal(0, 1, 128)
    return list(base + noise / np.linalg.norm(noise) * jitter)


def _track(index, shot, start, end, descriptor) -> Track:
    track = Track(
        index=index,
        shot_index=shot,
        start_seconds=start,
        end_seconds=end,
        last_box={"x": 0, "y": 0, "width": 10, "height": 10},
        best_quality=0.5,
    )
    track.faces = [type("F", (), {"descriptor": np.asarray(descriptor), "quality": 0.5})()]
    return track


@pytest.mark.django_db
def test_faces_on_screen_together_are_two_characters_even_when_they_look_alike():
    clip = ClipFactory()
    # Two tracks of one shot at the same time, descriptors 0.2 apart: the same-looking twins stay apart.
    tracks = [_track(0, 0, 0, 4, _descriptor(1)), _track(1, 0, 1, 3, _descriptor(1, 0.2, 1))]
    group_services.clip_record_tracks(clip=clip, tracks=tracks, frames=[])
    assert CharacterGroup.objects.filter(story=clip.story).count() == 2
    # The same descriptor in a later shot joins one of them.
    other = ClipFactory(story=clip.story)
    group_services.clip_record_tracks(clip=other, tracks=[_track(0, 0, 0, 2, _descriptor(1, 0.1, 2))], frames=[])
    assert CharacterGroup.objects.filter(story=clip.story).count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_clips_finishing_at_once_make_one_group_per_person():
    story = StoryFactory()
    clip_1, clip_2 = ClipFactory(story=story), ClipFactory(story=story)
    barrier, errors = threading.Barrier(2), []

    def join(clip, seed):
        try:
            barrier.wait()
            group_services.clip_record_tracks(
                clip=clip, tracks=[_track(0, 0, 0, 2, _descriptor(7, 0.1, seed))], frames=[]
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=join, args=(c, s)) for c, s in ((clip_1, 1), (clip_2, 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert CharacterGroup.objects.filter(story=story).count() == 1
    assert Appearance.objects.filter(clip__story=story, group__isnull=False).count() == 2


# --- The API ----------------------------------------------------------------------------------


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def grouped_story(db):
    """A story with two clips and three groups made from descriptors: A (2 tracks), B, C."""
    story = StoryFactory()
    clip_1, clip_2 = ClipFactory(story=story), ClipFactory(story=story)
    frame = CandidateFrame.objects.create(
        clip=clip_1,
        seconds=1.0,
        timestamp="00:01",
        image="frames/x.jpg",
        thumbnail="frames/x_t.jpg",
        width=1280,
        height=720,
        rank=1,
        quality=80,
        pose="frontal",
        detections=[{"box": {"x": 10, "y": 20, "width": 100, "height": 120}, "pose": "frontal", "track": 0}],
    )
    group_services.clip_record_tracks(
        clip=clip_1, tracks=[_track(0, 0, 0, 2, _descriptor(1)), _track(1, 1, 3, 4, _descriptor(2))], frames=[frame]
    )
    group_services.clip_record_tracks(
        clip=clip_2,
        tracks=[_track(0, 0, 0, 2, _descriptor(1, 0.1, 3)), _track(1, 0, 3, 4, _descriptor(3))],
        frames=[],
    )
    return story


def test_groups_list_shape(grouped_story):
    body = APIClient().get(f"/api/v1/stories/{grouped_story.pk}/character-groups").json()
    groups = body["groups"]
    assert [g["label"] for g in groups] == ["Character A", "Character B", "Character C"]
    first = groups[0]
    assert first["kind"] == "face" and first["cover_url"].endswith("/frames/x.jpg")
    assert first["clips"] == sorted(first["clips"]) and len(first["clips"]) == 2
    appearance = first["appearances"][0]
    assert {k: appearance[k] for k in ("clip_id", "seconds", "box", "pose")} == {
        "clip_id": first["clips"][0],
        "seconds": 1.0,
        "box": {"x": 10, "y": 20, "width": 100, "height": 120},
        "pose": "frontal",
    }
    assert appearance["frame_id"] == CandidateFrame.objects.get().pk
    assert groups[1]["cover_url"] is None and groups[1]["appearances"] == []
    assert APIClient().get("/api/v1/stories/999999/character-groups").status_code == 404


def test_rename_merge_and_split_by_contributors_are_logged(grouped_story):
    a, b, c = CharacterGroup.objects.filter(story=grouped_story).order_by("number")
    outsider = UserFactory()
    contributor = UserFactory()
    StoryContributor.objects.create(story=grouped_story, user=contributor, first_contribution="clip")

    assert APIClient().patch(f"/api/v1/character-groups/{a.pk}", {"label": "Mara"}, format="json").status_code == 401
    refused = bearer(outsider).patch(f"/api/v1/character-groups/{a.pk}", {"label": "Mara"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (
        bearer(contributor).patch(f"/api/v1/character-groups/{a.pk}", {"label": " "}, format="json").status_code == 400
    )
    renamed = bearer(contributor).patch(f"/api/v1/character-groups/{a.pk}", {"label": "Mara"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["label"] == "Mara"

    api = bearer(contributor)
    assert (
        bearer(outsider)
        .post(f"/api/v1/character-groups/{a.pk}/merge", {"other_group_id": b.pk}, format="json")
        .status_code
        == 403
    )
    assert (
        api.post(f"/api/v1/character-groups/{a.pk}/merge", {"other_group_id": a.pk}, format="json").status_code == 400
    )
    merged = api.post(f"/api/v1/character-groups/{a.pk}/merge", {"other_group_id": b.pk}, format="json")
    assert merged.status_code == 200, merged.content
    assert len(merged.json()["appearance_ids"]) == 3
    assert not CharacterGroup.objects.filter(pk=b.pk).exists()

    moved = [a.appearances.order_by("pk").last().pk]
    foreign = api.post(
        f"/api/v1/character-groups/{a.pk}/split", {"appearance_ids": [c.appearances.get().pk]}, format="json"
    )
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "appearance_of_another_group"
    everything = api.post(
        f"/api/v1/character-groups/{a.pk}/split",
        {"appearance_ids": list(a.appearances.values_list("pk", flat=True))},
        format="json",
    )
    assert everything.status_code == 400
    split = api.post(f"/api/v1/character-groups/{a.pk}/split", {"appearance_ids": moved}, format="json")
    assert split.status_code == 201, split.content
    assert split.json()["appearance_ids"] == moved and split.json()["label"] == "Character D"
    assert Appearance.objects.filter(group=a).count() == 2
    messages = list(LogEntry.objects.filter(user=contributor).values_list("change_message", flat=True))
    assert any("Renamed" in m for m in messages) and any("Merged" in m for m in messages)
    assert any("Split" in m for m in messages)


def test_merge_refuses_a_group_of_another_story(grouped_story):
    a = CharacterGroup.objects.filter(story=grouped_story).first()
    elsewhere = ClipFactory()
    group_services.clip_record_tracks(clip=elsewhere, tracks=[_track(0, 0, 0, 1, _descriptor(9))], frames=[])
    other = CharacterGroup.objects.get(story=elsewhere.story)
    response = bearer(grouped_story.created_by).post(
        f"/api/v1/character-groups/{a.pk}/merge", {"other_group_id": other.pk}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "group_of_another_story"
    assert CharacterGroup.objects.filter(pk=other.pk).exists()


# --- Re-extraction keeps the story's characters -------------------------------------------------


@pytest.mark.django_db
def test_re_extracting_a_clip_gives_its_people_their_groups_back():
    """A group only this clip showed keeps its id and label when the same person comes back."""
    clip = ClipFactory()
    group_services.clip_record_tracks(clip=clip, tracks=[_track(0, 0, 0, 2, _descriptor(1))], frames=[])
    group = CharacterGroup.objects.get(story=clip.story)
    group_services.group_rename(group=group, user=clip.story.created_by, label="Ada")
    group_services.clip_record_tracks(clip=clip, tracks=[_track(0, 0, 0, 3, _descriptor(1, 0.1, 5))], frames=[])
    assert list(CharacterGroup.objects.filter(story=clip.story).values_list("pk", "label")) == [(group.pk, "Ada")]
    assert Appearance.objects.get(clip=clip).group_id == group.pk
    # Somebody else in the re-extracted clip is a new group; Ada's, emptied and undecided, is deleted.
    group_services.clip_record_tracks(clip=clip, tracks=[_track(0, 0, 0, 3, _descriptor(2))], frames=[])
    assert list(CharacterGroup.objects.filter(story=clip.story).values_list("label", flat=True)) == ["Character B"]


@pytest.mark.django_db
def test_a_group_with_a_locked_character_outlives_its_appearances_and_takes_the_next_clip():
    clip = ClipFactory()
    group_services.clip_record_tracks(clip=clip, tracks=[_track(0, 0, 0, 2, _descriptor(1))], frames=[])
    group = CharacterGroup.objects.get(story=clip.story)
    centroid = list(group.centroid)
    character = CharacterFactory(story=clip.story, group=group)
    # The clip is re-extracted and nobody is found: the group stays, empty, with the character on it.
    group_services.clip_record_tracks(clip=clip, tracks=[], frames=[])
    group.refresh_from_db()
    character.refresh_from_db()
    assert character.group_id == group.pk and group.centroid == centroid
    assert not group.appearances.exists() and group.cover_frame_id is None
    view = next(v for v in group_selectors.story_group_views(clip.story) if v.group.pk == group.pk)
    assert view.character == character and view.frames == [] and view.clip_ids == []
    # A new clip of the same person joins it by the kept centroid; somebody else does not.
    other = ClipFactory(story=clip.story)
    group_services.clip_record_tracks(
        clip=other, tracks=[_track(0, 0, 0, 2, _descriptor(1, 0.1, 9)), _track(1, 1, 3, 5, _descriptor(3))], frames=[]
    )
    by_track = dict(Appearance.objects.filter(clip=other).values_list("track_index", "group_id"))
    assert by_track[0] == group.pk and by_track[1] not in (None, group.pk)


@pytest.mark.django_db
def test_a_long_list_of_appearances_comes_page_by_page():
    from characters.groups.api.serializers import APPEARANCES_PAGE_SIZE

    clip = ClipFactory()
    total = APPEARANCES_PAGE_SIZE + 5
    frames = [
        CandidateFrame.objects.create(
            clip=clip,
            seconds=float(n),
            timestamp=f"00:{n:02d}",
            image=f"frames/{n}.jpg",
            thumbnail=f"frames/{n}_t.jpg",
            width=1280,
            height=720,
            rank=n + 1,
            quality=90 - n,
            pose="frontal",
            detections=[{"box": {"x": 10, "y": 20, "width": 100, "height": 120}, "pose": "frontal", "track": 0}],
        )
        for n in range(total)
    ]
    group_services.clip_record_tracks(clip=clip, tracks=[_track(0, 0, 0, total, _descriptor(4))], frames=frames)
    client = APIClient()
    listed = client.get(f"/api/v1/stories/{clip.story_id}/character-groups").json()["groups"][0]
    assert listed["appearances_count"] == total and len(listed["appearances"]) == APPEARANCES_PAGE_SIZE
    assert [a["frame_id"] for a in listed["appearances"]] == [f.pk for f in frames[:APPEARANCES_PAGE_SIZE]]
    assert listed["appearances_next"].endswith(f"/api/v1/character-groups/{listed['group_id']}/appearances?page=2")
    rest = client.get(listed["appearances_next"]).json()
    assert rest["count"] == total and rest["next"] is None and rest["previous"]
    assert [a["frame_id"] for a in rest["results"]] == [f.pk for f in frames[APPEARANCES_PAGE_SIZE:]]
    assert client.get(f"/api/v1/character-groups/{listed['group_id']}/appearances?page=9").status_code == 404
    assert client.get("/api/v1/character-groups/999999/appearances").status_code == 404
    small = client.get(f"/api/v1/character-groups/{listed['group_id']}/appearances?limit=3").json()
    assert len(small["results"]) == 3 and small["next"].endswith("page=2")
