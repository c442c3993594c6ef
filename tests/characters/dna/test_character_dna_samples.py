"""Character DNA on the real sample clips in ../shared/samples (skipped when absent)."""

import pytest

from characters.clips.services import clip_create, story_create
from characters.dna import images as dna
from characters.dna.services import character_lock
from tests.characters.dna.test_character_dna import HAIR_BY_HAND, SKIN_BY_HAND
from tests.support.factories import UserFactory
from tests.support.paths import SAMPLES

pytestmark = [
    pytest.mark.samples,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (SAMPLES / "labels.json").is_file(), reason=f"no sample clips in {SAMPLES}"),
]


@pytest.fixture
def samples_story(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = UserFactory(username="owner")
    story = story_create(title="Samples", created_by=owner)

    def upload(name):
        with open(SAMPLES / name, "rb") as fh:
            clip = clip_create(story=story, uploader=owner, upload=fh)
        clip.refresh_from_db()
        assert clip.status == "ready", clip.error_message
        return clip

    return story, upload


def test_sample_palette_and_categories(samples_story):
    story, upload = samples_story
    mixed = upload("astronaut_mixed_720p30_10s.mp4")
    profile = upload("cameraman_profile_720p30_5s.mp4")
    opening = list(mixed.candidates.filter(seconds__lt=2))
    side = list(profile.candidates.order_by("rank")[:1])
    assert opening and side

    character = character_lock(story=story, name="Eileen", frame_ids=[f.pk for f in opening], description="x")
    assert dna.delta_e(character.color_palette["hair"], HAIR_BY_HAND) < 8
    assert dna.delta_e(character.color_palette["skin"], SKIN_BY_HAND) < 6
    kinds = set(character.reference_images.values_list("kind", flat=True))
    assert {"full_body", "face_closeup"} <= kinds and "side_profile" not in kinds  # no profile among them

    with_profile = character_lock(
        story=story, name="Cam", frame_ids=[*(f.pk for f in opening), side[0].pk], description="x"
    )
    refs = {r.kind: r.source_frame_id for r in with_profile.reference_images.all()}
    assert refs["side_profile"] == side[0].pk
