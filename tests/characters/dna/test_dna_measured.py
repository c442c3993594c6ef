"""A Character DNA that says only what it measured: regions from masks, true coverage, the render
style as stated or measured, features measured or stated, and one service behind every change."""

import json

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient
from skimage import data

from characters.clips.extraction import analyse_frame
from characters.dna import images as dna
from characters.dna import services
from characters.vision.faces import detect_faces, detectors
from characters.vision.jpeg import encode_jpeg
from generation import prompts
from generation.quotes import _character_input
from tests.support import dna_figures as fig
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory, UserFactory
from voting import services as voting


def _median_hex(image_rgb: np.ndarray, x0, y0, x1, y1) -> str:
    r, g, b = np.median(image_rgb[y0:y1, x0:x1].reshape(-1, 3), axis=0)
    return f"#{int(r):02X}{int(g):02X}{int(b):02X}"


# Measured by hand on skimage's astronaut photo: patches of her hair (crown), cheeks and nose, and the
# orange flight suit on her right arm and chest.
ASTRONAUT = data.astronaut()
HAIR_BY_HAND = _median_hex(ASTRONAUT, 180, 30, 270, 55)
SKIN_BY_HAND = _median_hex(ASTRONAUT, 195, 110, 255, 128)
SUIT_BY_HAND = _median_hex(ASTRONAUT, 60, 380, 120, 450)


def _main_face(image: np.ndarray) -> dict:
    face = detect_faces(detectors(), cv2.cvtColor(image, cv2.COLOR_BGR2RGB))[0]
    h, w = image.shape[:2]
    b = face.box
    return {
        "box": {"x": b.x * w, "y": b.y * h, "width": b.w * w, "height": b.h * h},
        "confidence": face.confidence,
        "coverage": b.area,
    }


def _view(image: np.ndarray) -> dna.SubjectView:
    return dna.view_subject(1, image, _main_face(image))


def test_astronaut_suit_skin_and_hair_come_from_their_regions():
    measured = dna.measure_regions([_view(fig.jpeg_round_trip(fig.astronaut_bgr()))])
    assert dna.delta_e(measured["clothing_primary"]["color"], SUIT_BY_HAND) < 15, measured
    assert dna.nearest_name(measured["clothing_primary"]["color"], dna.COLOUR_NAMES) == "orange"
    assert dna.delta_e(measured["skin"]["color"], SKIN_BY_HAND) < 10, measured
    assert dna.delta_e(measured["hair"]["color"], HAIR_BY_HAND) < 10, measured
    for entry in measured.values():
        assert entry["pixels"] > 1000 and entry["frames"] == [1]
    # The dark collar is not the outfit, and no second clothing colour is invented from skin.
    secondary = measured.get("clothing_secondary")
    assert secondary is None or dna.delta_e(secondary["color"], SKIN_BY_HAND) > 10


def test_cartoon_figure_flat_colours_are_measured():
    measured = dna.measure_regions([_view(fig.jpeg_round_trip(fig.cartoon_figure()))])
    assert dna.delta_e(measured["hair"]["color"], fig.HAIR) < 10, measured
    assert dna.delta_e(measured["skin"]["color"], fig.SKIN) < 10, measured
    assert dna.delta_e(measured["clothing_primary"]["color"], fig.SUIT) < 10, measured
    assert dna.delta_e(measured["clothing_secondary"]["color"], fig.TROUSERS) < 10, measured


def test_a_region_not_seen_gets_no_colour():
    # Only the face and hair, cut off above the shoulders: no torso, so no clothing colour.
    head = np.ascontiguousarray(fig.astronaut_bgr()[0:200, 100:350])
    measured = dna.measure_regions([_view(head)])
    assert "skin" in measured
    assert "clothing_primary" not in measured and "clothing_secondary" not in measured


def test_coverage_says_what_the_picture_shows():
    figure = fig.jpeg_round_trip(fig.cartoon_figure())
    assert _view(figure).coverage == "full_body"
    assert _view(fig.jpeg_round_trip(fig.waist_up(fig.cartoon_figure()))).coverage == "upper_body"
    assert _view(fig.jpeg_round_trip(fig.astronaut_bgr())).coverage == "head_and_shoulders"


RENDER_FIXTURES = [
    ("astronaut photo", lambda: fig.astronaut_bgr(), "photographic"),
    ("camera photo", lambda: cv2.cvtColor(np.stack([data.camera()] * 3, -1), cv2.COLOR_RGB2BGR), "photographic"),
    ("flat figure", fig.cartoon_figure, "2d_animation"),
    ("flat figure, waist up", lambda: fig.waist_up(fig.cartoon_figure()), "2d_animation"),
    ("shaded figure", lambda: fig.shaded(fig.cartoon_figure()), "3d_animation"),
]


@pytest.mark.parametrize("name,make,expected", RENDER_FIXTURES, ids=[f[0] for f in RENDER_FIXTURES])
def test_render_style_suggestion_on_fixtures(name, make, expected):
    image = fig.jpeg_round_trip(make())
    assert dna.measure_render_style([_view(image)])["suggestion"] == expected


# --- Through the lock and the one update service ----------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "http://testserver"


def _frame(clip, image: np.ndarray):
    """A candidate frame of `image`, analysed as extraction would."""
    analysis = analyse_frame(detectors(), image, 0.0)
    assert analysis is not None
    score = analysis.score
    frame = CandidateFrameFactory(
        clip=clip, quality=score.quality, pose=score.pose, full_body=score.full_body, detections=score.detections
    )
    frame.image.name = default_storage.save(f"frames/test/{frame.pk}.jpg", ContentFile(encode_jpeg(image, quality=92)))
    frame.save()
    return frame


def _dna_json(character) -> dict:
    character.refresh_from_db()
    return json.loads(default_storage.open(character.dna_file.name).read())


def _assert_dna_equals_api(character):
    document = _dna_json(character)
    assert dna.validate_dna(document) == []
    body = APIClient().get(f"/api/v1/characters/{character.character_id}").json()
    for key, value in document.items():
        if key == "creator_id":
            assert body["creator"]["id"] == value
        else:
            assert body[key] == value, key


@pytest.mark.django_db(transaction=True)
def test_categories_with_and_without_a_whole_body(media):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    photo = services.character_lock(story=story, name="Eileen", frame_ids=[_frame(clip, fig.astronaut_bgr()).pk])
    refs = {r.kind: r.coverage for r in photo.reference_images.all()}
    assert refs["full_body"] == "head_and_shoulders" and refs["face_closeup"] == "face"
    assert _dna_json(photo)["coverage"]["full_body"] == "head_and_shoulders"

    whole = _frame(clip, fig.cartoon_figure())
    waist = _frame(clip, fig.waist_up(fig.cartoon_figure()))
    drawn = services.character_lock(story=story, name="Figure", frame_ids=[waist.pk, whole.pk])
    full = drawn.reference_images.get(kind="full_body")
    assert (full.coverage, full.source_frame_id) == ("full_body", whole.pk)
    only_waist = services.character_lock(story=story, name="Half", frame_ids=[waist.pk])
    assert only_waist.reference_images.get(kind="full_body").coverage == "upper_body"
    page = APIClient().get(only_waist.get_absolute_url())
    assert b"shows upper body" in page.content


@pytest.mark.django_db(transaction=True)
def test_style_is_stated_or_measured_never_invented(media):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    drawn = _frame(clip, fig.cartoon_figure())
    measured = services.character_lock(story=story, name="A", frame_ids=[drawn.pk], description="A cheerful pilot")
    assert (measured.render_style, measured.render_style_source) == ("2d_animation", "measured")
    assert "photo" not in measured.style_description.lower()
    assert "2D-animated" in measured.style_description

    stated = services.character_lock(
        story=story, name="B", frame_ids=[drawn.pk], description="A cheerful pilot", render_style="3d_animation"
    )
    assert (stated.render_style, stated.render_style_source) == ("3d_animation", "stated")
    assert "3D-animated" in stated.style_description and "2D" not in stated.style_description


@pytest.mark.django_db(transaction=True)
def test_free_text_stays_in_the_description_and_stated_features_are_kept(media):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    frame = _frame(clip, fig.astronaut_bgr())
    user = UserFactory()
    too_many = [f"feature {i}" for i in range(11)]
    with pytest.raises(voting.VotingError) as err:
        voting.submission_create(
            story=story, submitter=user, frame_ids=[frame.pk], style_description="x", features_to_keep=too_many
        )
    assert err.value.code == "invalid_features"
    with pytest.raises(voting.VotingError):
        voting.submission_create(
            story=story, submitter=user, frame_ids=[frame.pk], style_description="x", features_to_keep=["x" * 101]
        )
    with pytest.raises(voting.VotingError):
        voting.submission_create(
            story=story, submitter=user, frame_ids=[frame.pk], style_description="x", render_style="oil painting"
        )
    description = "Smiling astronaut, warm candle-lit restaurant, orange flight suit"
    character = services.character_lock(
        story=story,
        name="E",
        frame_ids=[frame.pk],
        description=description,
        features_to_keep=["mission patch on the chest"],
    )
    assert "warm candle-lit restaurant" not in character.locked_features
    assert character.style_description.startswith(description)
    sources = {r["feature"]: r["source"] for r in character.feature_sources}
    assert sources["mission patch on the chest"] == "stated"
    assert sources["orange clothing"] == "measured" and any(f.endswith(" hair") for f in sources)
    assert "black" not in " ".join(character.locked_features)  # the collar is not the outfit


@pytest.mark.django_db(transaction=True)
def test_one_service_keeps_text_files_and_api_in_step(media):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    creator = UserFactory()
    character = services.character_lock(
        story=story,
        name="Eileen",
        frame_ids=[_frame(clip, fig.astronaut_bgr()).pk],
        description="Smiling astronaut",
        creator=creator,
    )
    _assert_dna_equals_api(character)
    admin = UserFactory(is_staff=True)
    api = APIClient()
    api.force_authenticate(admin)
    url = f"/api/v1/characters/{character.character_id}"

    # A palette fix rewrites the style text, the features and the negative prompt.
    palette = {**character.color_palette, "hair": "#1C1A1A"}
    assert api.patch(url, {"color_palette": palette}, format="json").status_code == 200
    character.refresh_from_db()
    assert "black hair" in character.locked_features and "Black hair" in character.style_description
    assert character.palette_sources["hair"] == "stated" and character.palette_sources["skin"] == "measured"
    plan = prompts.plan_image_to_video("She waves", _character_input(character), 5, "16:9")
    assert "black hair" in plan.prompt_used.lower()
    assert "black hair" not in plan.negative_prompt and "blonde hair" in plan.negative_prompt
    _assert_dna_equals_api(character)

    sheet_before = default_storage.open(character.model_sheet.name).read()
    body = api.patch(
        url,
        {
            "name": "Commander Eileen",
            "render_style": "photographic",
            "locked_features": ["black hair", "mission patch"],
        },
        format="json",
    ).json()
    assert body["name"] == "Commander Eileen" and body["render_style_source"] == "stated"
    character.refresh_from_db()
    assert _dna_json(character)["name"] == "Commander Eileen"
    assert default_storage.open(character.model_sheet.name).read() != sheet_before
    assert character.locked_features == ["black hair", "mission patch"]
    _assert_dna_equals_api(character)

    # A refused edit changes nothing, in the row or the files.
    before = default_storage.open(character.dna_file.name).read()
    assert api.patch(url, {"render_style": "oil"}, format="json").status_code == 400
    assert api.patch(url, {"locked_features": ["x" * 101]}, format="json").status_code == 400
    assert default_storage.open(character.dna_file.name).read() == before

    services.character_set_licensing(character=character, user=creator, allow=True)
    services.character_record_use(character_id=character.pk)
    services.character_record_use(character_id=character.pk)
    character.refresh_from_db()
    assert character.clips_used == 2 and _dna_json(character)["clips_used"] == 2
    _assert_dna_equals_api(character)


@pytest.mark.django_db(transaction=True)
def test_a_failed_file_write_leaves_nothing_half_written(media, monkeypatch):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    character = services.character_lock(story=story, name="Eileen", frame_ids=[_frame(clip, fig.astronaut_bgr()).pk])
    before = default_storage.open(character.dna_file.name).read()
    real = services._overwrite

    def failing(name, content):
        if name.endswith(".png"):
            raise OSError("disk full")
        return real(name, content)

    monkeypatch.setattr(services, "_overwrite", failing)
    with pytest.raises(OSError):
        services.character_update(character=character, user=UserFactory(is_staff=True), name="Renamed")
    character.refresh_from_db()
    assert character.name == "Eileen"
    assert default_storage.open(character.dna_file.name).read() == before
