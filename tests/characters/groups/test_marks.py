"""Characters that are not faces: a contributor's box followed through its shot and found in other clips."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from characters.clips import services as clip_services
from characters.models import Appearance, CandidateFrame, CharacterGroup, Mark, StoryContributor
from characters.vision import marking
from characters.vision.tracking import iou
from demo import clips
from tests.support.factories import ClipFactory, StoryFactory, UserFactory
from tests.support.pinning import upload_clip

R = clips.RobotShot
MARK_SECONDS = 2.0


@pytest.fixture(scope="module")
def robot_clips(clip_dir):
    """(path, truth) of: 1. the robot crossing a launch pad for 6 s, then 2 s of an empty kitchen (a cut);
    2. the robot on another set, the other way, growing 0.8-1.15x, 8 s; 3. no robot: robots of the same
    shape painted otherwise, and the first clip's set empty."""
    return (
        clips.robot_clip(
            clip_dir / "robot_1.mp4", [R("rocket", 6, start=(0.1, 0.2), end=(0.55, 0.3)), R("coffee", 2, robot=False)]
        ),
        clips.robot_clip(
            clip_dir / "robot_2.mp4",
            [R("chelsea", 8, start=(0.7, 0.35), end=(0.15, 0.2), scale_from=0.8, scale_to=1.15)],
        ),
        clips.robot_clip(
            clip_dir / "robot_3.mp4",
            [
                R("coffee", 3, colour=(60, 200, 60), seed=99),
                R("rocket", 3, robot=False),
                R("chelsea", 3, colour=(200, 60, 160), seed=3),
            ],
        ),
    )


def _truth_at(truth, seconds):
    return min(truth, key=lambda item: abs(item[0] - seconds))


def _marked_box(truth):
    return _truth_at(truth, MARK_SECONDS)[1]


# --- The vision part (no database) ---------------------------------------------------------------


def test_follow_stays_on_the_subject_until_the_cut(robot_clips):
    (path, truth), _, _ = robot_clips
    followed = marking.follow(path, MARK_SECONDS, _marked_box(truth), fps=1.0)
    assert [s.seconds for s in followed.sightings] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # not past the cut at 6 s
    assert [s.marked for s in followed.sightings].count(True) == 1
    for sighting in followed.sightings:
        assert iou(sighting.box, _truth_at(truth, sighting.seconds)[1]) > 0.8
    assert followed.end_seconds < 6.0


def test_find_recalls_the_subject_elsewhere_and_nothing_where_it_is_not(robot_clips):
    (path, truth), (path_2, truth_2), (path_3, _) = robot_clips
    followed = marking.follow(path, MARK_SECONDS, _marked_box(truth), fps=1.0)
    frames = dict(marking.read_frames(path, [s.frame_index for s in followed.sightings]))
    views = [v for s in followed.sightings if (v := marking.make_view(frames[s.frame_index], s.box))]
    found = marking.find(path_2, views, fps=1.0)
    assert found.samples == 8
    assert len(found.sightings) / found.samples >= 0.8
    for sighting in found.sightings:
        assert iou(sighting.box, _truth_at(truth_2, sighting.seconds)[1]) > 0.6
        assert sighting.inliers >= marking.MIN_INLIERS
    assert found.best_frame is not None
    nothing = marking.find(path_3, views, fps=1.0)
    assert nothing.samples == 9 and nothing.sightings == []


# --- Through the API, the task and the service ----------------------------------------------------


def bearer(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_a_marked_robot_is_followed_found_again_and_listed(robot_clips, django_capture_on_commit_callbacks):
    story = StoryFactory()
    user = story.created_by
    clip_1, clip_2, clip_3 = (
        clip_services.clip_extract_frames(clip_id=upload_clip(path, story, user).pk) for path, _ in robot_clips
    )
    assert not clip_1.people_found and clip_1.candidates.count() == 0  # the issue: no person, nothing to pick
    (_, truth), (_, truth_2), _ = robot_clips
    with django_capture_on_commit_callbacks(execute=True):
        response = bearer(user).post(
            f"/api/v1/clips/{clip_1.pk}/marks",
            {
                "seconds": MARK_SECONDS,
                "box": _marked_box(truth),
                "label": "Robo",
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    mark = Mark.objects.get()
    group = CharacterGroup.objects.get(story=story)
    assert group.kind == "marked" and group.label == "Robo" and body["mark"]["group_id"] == group.pk
    # Tasks are eager here: done by the time the answer is read again.
    body = APIClient().get(f"/api/v1/marks/{mark.pk}").json()
    assert body["mark"]["status"] == "done" and body["mark"]["progress"] == 100
    assert body["mark"]["followed_samples"] == 6 and body["mark"]["clips_searched"] == 2
    seconds = {
        c.pk: sorted(Appearance.objects.filter(group=group, clip=c).values_list("start_seconds", flat=True))
        for c in (clip_1, clip_2, clip_3)
    }
    assert seconds[clip_1.pk] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(seconds[clip_2.pk]) >= 0.8 * 8 and seconds[clip_3.pk] == []
    for appearance in Appearance.objects.filter(group=group, clip=clip_2):
        assert iou(appearance.box, _truth_at(truth_2, appearance.start_seconds)[1]) > 0.6
    # Candidate frames: the best few of its shot, and the best one of clip 2, marked as the mark's.
    frames = list(CandidateFrame.objects.filter(clip__story=story))
    assert {f.clip_id for f in frames} == {clip_1.pk, clip_2.pk}
    assert sum(f.clip_id == clip_1.pk for f in frames) == 3
    for frame in frames:
        (detection,) = frame.detections
        assert detection["source"] == "mark" and detection["group_id"] == group.pk
        assert detection["mark_id"] == mark.pk and detection["appearance_id"]
        assert detection["inside_frame"] >= 0.98 and 0 <= frame.quality <= 100
    assert body["group"]["kind"] == "marked" and len(body["group"]["appearances"]) == len(frames)
    assert body["group"]["cover_url"]
    listed = APIClient().get(f"/api/v1/stories/{story.pk}/character-groups").json()["groups"]
    assert [g["group_id"] for g in listed] == [group.pk]
    assert listed[0]["clips"] == [clip_1.pk, clip_2.pk]
    # Re-running the mark replaces what it wrote (no duplicates), and re-extracting a clip keeps it.
    Mark.objects.filter(pk=mark.pk).update(status=Mark.Status.QUEUED)
    from characters.groups import services as group_services

    group_services.mark_run(mark_id=mark.pk)
    assert Appearance.objects.filter(group=group, clip=clip_1).count() == 6
    assert CandidateFrame.objects.filter(clip__story=story).count() == len(frames)
    clip_services.clip_extract_frames(clip_id=clip_2.pk)
    assert Appearance.objects.filter(group=group, clip=clip_2).count() == len(seconds[clip_2.pk])


@pytest.mark.django_db
def test_marks_are_checked_and_only_contributors_may_mark(django_capture_on_commit_callbacks):
    clip = ClipFactory()  # 1280 x 720, 5 s, ready
    contributor, outsider = clip.uploader, UserFactory()
    url = f"/api/v1/clips/{clip.pk}/marks"
    good = {"seconds": 1.0, "box": {"x": 100, "y": 100, "width": 200, "height": 300}}

    def post(user, body):
        client = bearer(user) if user else APIClient()
        with django_capture_on_commit_callbacks(execute=False):
            return client.post(url, body, format="json")

    assert post(None, good).status_code == 401
    response = post(outsider, good)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    for box in (
        {"x": 1200, "y": 100, "width": 200, "height": 300},  # past the right edge
        {"x": -5, "y": 100, "width": 200, "height": 300},
        {"x": 100, "y": 500, "width": 200, "height": 300},  # past the bottom
        {"x": 100, "y": 100, "width": 0, "height": 300},
        {"x": 100, "y": 100, "width": 200, "height": -30},
    ):
        response = post(contributor, {**good, "box": box})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_box", box
    response = post(contributor, {**good, "box": {"x": 1}})
    assert response.status_code == 400
    response = post(contributor, {**good, "seconds": 9.0})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_seconds"
    face_group = CharacterGroup.objects.create(story=clip.story, number=1, label="Character A")
    response = post(contributor, {**good, "group_id": face_group.pk})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_group"
    other_story_group = CharacterGroup.objects.create(story=StoryFactory(), number=1, label="X", kind="marked")
    response = post(contributor, {**good, "group_id": other_story_group.pk})
    assert response.status_code == 400 and response.json()["error"]["code"] == "group_of_another_story"
    not_ready = ClipFactory(story=clip.story, uploader=contributor, status="extracting")
    with django_capture_on_commit_callbacks(execute=False):
        response = bearer(contributor).post(f"/api/v1/clips/{not_ready.pk}/marks", good, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "clip_not_ready"
    assert not Mark.objects.exists() and CharacterGroup.objects.count() == 2  # nothing half-written
    # A good one, from a contributor who is not the uploader, feeding an existing marked group.
    other = UserFactory()
    StoryContributor.objects.create(story=clip.story, user=other, first_contribution="design")
    marked = CharacterGroup.objects.create(story=clip.story, number=2, label="Robo", kind="marked")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = bearer(other).post(url, {**good, "group_id": marked.pk}, format="json")
    assert response.status_code == 202 and response.json()["mark"]["group_id"] == marked.pk
    assert response.json()["mark"]["status"] == "queued" and len(queued) == 1


@pytest.mark.django_db
def test_the_clip_page_offers_marking_to_contributors_only(client):
    clip = ClipFactory()
    url = f"/clips/{clip.pk}/"
    assert 'id="mark-character"' not in client.get(url).content.decode()
    client.force_login(UserFactory())
    assert 'id="mark-character"' not in client.get(url).content.decode()
    client.force_login(clip.uploader)
    page = client.get(url).content.decode()
    assert 'id="mark-character"' in page and "js/mark-character.js" in page
    assert f'data-api-url="/api/v1/clips/{clip.pk}/marks"' in page and 'data-width="1280"' in page
