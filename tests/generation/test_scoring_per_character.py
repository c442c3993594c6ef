"""A job's consistency score per character asked for (generation.scoring.score_clip): each pinned character
against its own references, never one pooled set in which any face matches something."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from characters.models import ReferenceImage
from characters.vision.jpeg import encode_jpeg
from demo.clips import photo
from generation import scoring
from generation.api.serializers import GenerationJobSerializer
from generation.consistency import palette_from_references, score_video
from generation.models import PER_CHARACTER_SCORE_NOTE
from tests.support.factories import CharacterFactory, GenerationJobFactory, PinnedCharacterFactory, StoryFactory

pytestmark = pytest.mark.slow  # dlib and MediaPipe on clips


def astronaut() -> object:
    return photo("astronaut")[0:330, 60:400].copy()


def cameraman() -> object:
    return photo("camera").copy()


def _pin(story, index, image, character):
    pin = PinnedCharacterFactory(story=story, element_index=index, character=character)
    default_storage.save(pin.frontal_image.name, ContentFile(encode_jpeg(image)))
    return pin


@pytest.mark.django_db
def test_a_clip_showing_one_of_two_pinned_characters_scores_about_half(good_clip, client):
    story = StoryFactory()
    her, him = CharacterFactory(story=story, name="Ada"), CharacterFactory(story=story, name="Carl")
    pins = [_pin(story, 1, astronaut(), her), _pin(story, 2, cameraman(), him)]
    job = GenerationJobFactory(story=story, provider="fal", pinned_character_ids=[p.pk for p in pins])

    score, frames, note = scoring.score_clip(job, good_clip)  # the clip shows her only

    # Pins carry no DNA palette: each character's is measured on its own pinned images.
    hers, his = (
        score_video(good_clip, [image], palette=palette_from_references([image])).score
        for image in (astronaut(), cameraman())
    )
    pooled = score_video(good_clip, [astronaut(), cameraman()]).score  # one set of references: any face matches
    assert hers >= 50 and his <= 20 and pooled >= hers - 5
    assert score is not None and abs(score - (hers + his) / 2) <= 1 and score < pooled - 20
    for frame in frames:
        ada, carl = frame["characters"]
        assert (ada["name"], carl["name"]) == ("Ada", "Carl") and carl["score"] <= 25
        assert frame["score"] == round((ada["score"] + carl["score"]) / 2) and frame["basis"] == "face"
    assert sum(f["characters"][0]["score"] for f in frames) > sum(f["characters"][1]["score"] for f in frames) + 150
    assert note == ""  # each character's references agree
    job.status, job.frame_scores, job.consistency_score = job.Status.COMPLETE, frames, score
    job.save()
    assert job.scored_per_character and not job.scored_by_appearance
    assert job.consistency_note == PER_CHARACTER_SCORE_NOTE
    by_name = {c["name"]: c["score"] for c in job.character_scores}
    assert by_name["Ada"] > 50 > 20 > by_name["Carl"]
    # The API and the job page say it per character.
    body = GenerationJobSerializer(job).data
    assert body["consistency_note"] == PER_CHARACTER_SCORE_NOTE
    assert [c["name"] for c in body["result"]["frame_scores"][0]["characters"]] == ["Ada", "Carl"]
    client.force_login(job.requester)
    page = client.get(reverse("generation-job", args=[job.job_id])).content.decode()
    assert 'data-role="character-scores"' in page and f"Ada: {by_name['Ada']}/100" in page


@pytest.mark.django_db
def test_one_characters_references_of_two_people_are_reported_on_the_job(good_clip, client):
    character = CharacterFactory(name="Ada")
    for kind, image in (("frontal", astronaut()), ("left", cameraman())):
        ref = ReferenceImage(character=character, kind=kind, width=image.shape[1], height=image.shape[0])
        ref.image.save(f"{kind}.jpg", ContentFile(encode_jpeg(image)), save=False)
        ref.save()
    job = GenerationJobFactory(story=character.story, character=character, provider="fal")

    score, frames, note = scoring.score_clip(job, good_clip)

    assert score is not None and frames and "characters" not in frames[0]
    assert note.startswith("The references do not all look like one character: reference 1 and reference 2 are 0.")
    assert "the same character is usually under 0.5" in note
    # The note is on the job (generation_complete appends it to `error`), which the job page shows.
    job.status, job.frame_scores, job.consistency_score, job.error = job.Status.COMPLETE, frames, score, note
    job.save()
    client.force_login(job.requester)
    page = client.get(reverse("generation-job", args=[job.job_id])).content.decode()
    assert 'data-role="job-notes"' in page and "do not all look like one character" in page
