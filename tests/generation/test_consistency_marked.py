"""The consistency score of a marked (non-face) character: found by appearance (keypoints with a RANSAC
homography, colours of the subject), a frame where it is not found is a miss, and the result says so."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from characters.dna import images
from characters.models import ReferenceImage
from characters.vision.jpeg import encode_jpeg
from demo import clips
from generation import consistency
from tests.support.factories import CharacterFactory

pytestmark = pytest.mark.slow  # renders clips with ffmpeg

R = clips.RobotShot
PAINTED_OTHERWISE = {"colour": (200, 60, 160), "seed": 3}  # the same shape: another character


@pytest.fixture(scope="module")
def reference():
    """The DNA's reference of the marked robot: its box, padded, cropped from a still on another set."""
    frame, box, _ = clips.robot_still("astronaut", 0.6, 0.2)
    detections = [{"box": box, "source": "mark"}]
    return images.marked_references([images.FrameInput(1, frame, detections, 80, "", True)])[0].image


@pytest.fixture(scope="module")
def robot_videos(clip_dir):
    first_half = R("rocket", 3, start=(0.1, 0.2), end=(0.5, 0.3))
    return {
        name: clips.robot_clip(clip_dir / f"consistency_{name}.mp4", shots)[0]
        for name, shots in {
            "steady": [first_half, R("chelsea", 3, start=(0.6, 0.3))],
            "switches": [first_half, R("chelsea", 3, start=(0.6, 0.3), **PAINTED_OTHERWISE)],
            "absent": [R("rocket", 3, robot=False), R("chelsea", 3, robot=False)],
        }.items()
    }


def score(path, reference, **kwargs):
    return consistency.score_video(path, [reference], samples=6, subject=consistency.SUBJECT_APPEARANCE, **kwargs)


def test_the_rendered_subject_scores_clearly_above_a_clip_that_switches_subject_halfway(robot_videos, reference):
    steady, switches, absent = (score(robot_videos[n], reference) for n in ("steady", "switches", "absent"))
    # Measured (bench/marks_appearance.py): 82, 41, 0.
    assert steady.score >= 70 and steady.score - switches.score >= 30 and absent.score == 0
    assert all(f.face_found and f.inliers >= 60 for f in steady.frames)
    # The other robot's half is a miss per frame: it lowers the score, it is not skipped.
    assert [f.face_found for f in switches.frames] == [True, True, True, False, False, False]
    assert [f.score for f in switches.frames[3:]] == [0, 0, 0] and len(switches.frames) == 6
    for result in (steady, switches, absent):
        assert result.method.startswith("consistency/v1: appearance") and result.references_used == 1
        assert {f.basis for f in result.frames} == {"appearance"}
    assert steady.as_dict()["frames"][0]["basis"] == "appearance"


def test_a_face_score_of_the_same_clip_finds_no_one(robot_videos, reference):
    """Why a marked character needs its own basis: scored by face, the robot is not there at all."""
    with pytest.raises(consistency.NoReferenceFace):
        consistency.score_video(robot_videos["steady"], [reference], samples=3)


def test_a_reference_without_detail_is_refused_as_a_no_reference_face(robot_videos):
    flat = clips.photo("rocket")[:40, :40] * 0  # black: no keypoints
    with pytest.raises(consistency.NoReferenceAppearance) as refused:
        score(robot_videos["steady"], flat)
    assert isinstance(refused.value, consistency.NoReferenceFace)  # what callers already catch
    with pytest.raises(ValueError, match="subject"):
        consistency.score_video(robot_videos["steady"], [flat], subject="smell")


@pytest.mark.django_db
def test_a_marked_characters_dna_chooses_the_appearance_score(robot_videos, reference):
    marked = CharacterFactory(measured={"subject": images.MARKED_SUBJECT, "regions": {}})
    face = CharacterFactory(measured={"regions": {}})
    assert consistency.subject_of(marked) == "appearance"
    assert consistency.subject_of(face) == consistency.subject_of(None) == "face"
    ref = ReferenceImage(character=marked, kind="full_body", width=reference.shape[1], height=reference.shape[0])
    ref.image.save("robot.jpg", ContentFile(encode_jpeg(reference)), save=False)
    ref.save()
    result = consistency.score_video_against_character(robot_videos["switches"], marked, samples=6)
    assert result.method.startswith("consistency/v1: appearance")
    assert [f.face_found for f in result.frames] == [True, True, True, False, False, False]


@pytest.mark.django_db
def test_a_job_for_a_marked_character_is_scored_by_appearance_and_says_so(robot_videos, reference, client):
    """generation.scoring picks the basis from the character asked for; the job's API and page say it."""
    from generation import scoring
    from generation.api.serializers import GenerationJobSerializer
    from generation.models import APPEARANCE_SCORE_NOTE
    from tests.support.factories import GenerationJobFactory

    marked = CharacterFactory(measured={"subject": images.MARKED_SUBJECT, "regions": {}})
    ref = ReferenceImage(character=marked, kind="full_body", width=reference.shape[1], height=reference.shape[0])
    ref.image.save("robot.jpg", ContentFile(encode_jpeg(reference)), save=False)
    ref.save()
    job = GenerationJobFactory(
        story=marked.story, character=marked, model_id="fal-ai/kling-video/o1/reference-to-video", provider="fal"
    )
    score_value, frames, note = scoring.score_clip(job, robot_videos["switches"])
    assert note == "" and {f["basis"] for f in frames} == {"appearance"}
    found = [f["face_found"] for f in frames]
    assert found[0] and not found[-1] and found == sorted(found, reverse=True)  # found, then missed
    assert score_value is not None and score_value < 70  # the misses count

    job.status, job.consistency_score, job.frame_scores = job.Status.COMPLETE, score_value, frames
    job.save()
    assert job.scored_by_appearance and job.consistency_note == APPEARANCE_SCORE_NOTE
    body = GenerationJobSerializer(job).data
    assert body["consistency_note"] == APPEARANCE_SCORE_NOTE
    assert {f["basis"] for f in body["result"]["frame_scores"]} == {"appearance"}
    client.force_login(job.requester)
    page = client.get(reverse("generation-job", args=[job.job_id])).content.decode()
    assert 'data-role="score-basis"' in page and "Scored by appearance" in page

    face_job = GenerationJobFactory(story=marked.story, frame_scores=[{"basis": "face"}], provider="fal")
    assert not face_job.scored_by_appearance and face_job.consistency_note == ""
