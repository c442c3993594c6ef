"""The DNA is built from the design's character (its character group), not the frame's biggest face;
and a rename through the admin change form rewrites dna.json and the model sheet."""

import json
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
from django.core.files.storage import default_storage
from skimage import data

from characters.dna import images as dna
from characters.dna import services
from characters.models import CharacterGroup
from tests.characters.dna.test_dna_measured import SKIN_BY_HAND, SUIT_BY_HAND, _assert_dna_equals_api, _dna_json, _frame
from tests.support import dna_figures as fig
from tests.support.factories import ClipFactory, StoryFactory, UserFactory
from voting.models import CharacterSubmission, SubmissionFrame
from voting.services import submission_lock_winner

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = "http://testserver"


def _two_people() -> np.ndarray:
    """The cameraman (grey, the bigger face) on the left, the astronaut smaller at the bottom right."""
    camera = cv2.cvtColor(np.stack([data.camera()] * 3, -1), cv2.COLOR_RGB2BGR)
    astronaut = cv2.resize(fig.astronaut_bgr(), (320, 320), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 512 + 320, 3), 255, np.uint8)
    canvas[:, :512] = camera
    canvas[512 - 320 :, 512:] = astronaut
    return canvas


def _grouped_frame(clip, cameraman: CharacterGroup, astronaut: CharacterGroup):
    """A frame of the two, each face carrying its group as the groups room writes it."""
    frame = _frame(clip, _two_people())
    assert len(frame.detections) == 2
    for detection in frame.detections:
        on_the_right = detection["box"]["x"] >= 512
        detection["group_id"] = (astronaut if on_the_right else cameraman).pk
    # Extraction lists the most prominent face first: the cameraman's, not the design's character.
    assert frame.detections[0]["group_id"] == cameraman.pk
    frame.save(update_fields=["detections"])
    return frame


def _found_at(shot: np.ndarray, side: int, picture: np.ndarray) -> tuple[int, int]:
    """Where a square reference shot (scaled back to `side` pixels) came from in `picture`."""
    small = cv2.resize(shot, (side, side), interpolation=cv2.INTER_AREA)
    _, score, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(picture, small, cv2.TM_CCOEFF_NORMED))
    assert score > 0.9
    return x, y


def _stored(ref) -> np.ndarray:
    with ref.image.open("rb") as fh:
        return cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)


def test_palette_and_crops_come_from_the_designs_character_not_the_biggest_face():
    story = StoryFactory()
    clip = ClipFactory(story=story)
    cameraman = CharacterGroup.objects.create(story=story, number=1, label="Character A")
    astronaut = CharacterGroup.objects.create(story=story, number=2, label="Character B")
    frame = _grouped_frame(clip, cameraman, astronaut)

    # Without the group the frame's main face (the cameraman) is measured: no orange suit there.
    main_face = services.character_lock(story=story, name="Whoever", frame_ids=[frame.pk])
    assert dna.nearest_name(main_face.color_palette.get("clothing_primary", "#808080"), dna.COLOUR_NAMES) != "orange"

    character = services.character_lock(story=story, name="Eileen", frame_ids=[frame.pk], group_id=astronaut.pk)
    palette = character.color_palette
    assert dna.delta_e(palette["clothing_primary"], SUIT_BY_HAND) < 15, palette
    assert dna.delta_e(palette["skin"], SKIN_BY_HAND) < 10, palette
    assert character.group_id == astronaut.pk
    refs = {r.kind: r for r in character.reference_images.all()}
    # The close-up is a crop around her face (two face widths), in her photo on the right.
    her_face = next(d for d in frame.detections if d["group_id"] == astronaut.pk)["box"]
    side = 2 * her_face["width"]
    x, y = _found_at(_stored(refs["face_closeup"]), side, _two_people())
    assert x >= 512 and x <= her_face["x"] <= x + side
    his_face = frame.detections[0]["box"]
    x, _ = _found_at(_stored(main_face.reference_images.get(kind="face_closeup")), 2 * his_face["width"], _two_people())
    assert x < 512
    # The widest shot is the window around her (mostly her photo), not the whole frame.
    wide = _stored(refs["full_body"])
    _, score, _, (x, _) = cv2.minMaxLoc(cv2.matchTemplate(_two_people(), wide, cv2.TM_CCOEFF_NORMED))
    assert score > 0.9 and (x + wide.shape[1] - 512) > 0.85 * wide.shape[1], (score, x, wide.shape)
    _assert_dna_equals_api(character)

    # A re-lock measures the same person again.
    relocked = services.character_relock(character=character, user=UserFactory(is_staff=True))
    assert relocked.color_palette == palette


def test_the_winning_submission_locks_its_character_group():
    story = StoryFactory()
    clip = ClipFactory(story=story)
    cameraman = CharacterGroup.objects.create(story=story, number=1, label="Character A")
    astronaut = CharacterGroup.objects.create(story=story, number=2, label="Character B")
    frame = _grouped_frame(clip, cameraman, astronaut)
    submission = CharacterSubmission.objects.create(
        story=story,
        submitter=UserFactory(),
        style_description="Smiling astronaut",
        character_group=astronaut,
        status=CharacterSubmission.Status.WON,
    )
    SubmissionFrame.objects.create(submission=submission, frame=frame, position=0)
    character = submission_lock_winner(submission_id=submission.pk)
    assert character.group_id == astronaut.pk
    assert dna.nearest_name(character.color_palette["clothing_primary"], dna.COLOUR_NAMES) == "orange"


class _FormFields(HTMLParser):
    """The fields of an HTML form as a browser would post them (text inputs, textareas, checked
    boxes, selected options)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""

    def handle_data(self, text):
        if self._textarea:
            self.data[self._textarea] += text

    def handle_endtag(self, tag):
        if tag == "textarea":
            if self._textarea:  # Django starts a textarea's content with a newline the browser drops
                self.data[self._textarea] = self.data[self._textarea].removeprefix("\n")
            self._textarea = None
        elif tag == "select":
            self._select = None


def test_a_rename_in_the_admin_rewrites_dna_json_and_the_model_sheet(client):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    character = services.character_lock(
        story=story, name="Eileen", frame_ids=[_frame(clip, fig.astronaut_bgr()).pk], description="Smiling astronaut"
    )
    sheet_before = default_storage.open(character.model_sheet.name).read()
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = f"/admin/characters/character/{character.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = _FormFields()
    form.feed(page.content.decode())
    posted = {**form.data, "name": "Commander Eileen Collins"}
    response = client.post(url, posted)
    assert response.status_code == 302, response.content.decode()[:2000]

    character.refresh_from_db()
    assert character.name == "Commander Eileen Collins"
    document = _dna_json(character)
    assert document["name"] == "Commander Eileen Collins"
    sheet = default_storage.open(character.model_sheet.name).read()
    assert sheet != sheet_before and sheet == services._sheet_bytes(character)  # drawn with the new name
    # Nothing else moved: the untouched fields posted back as they were.
    assert document["locked_features"] == character.locked_features
    assert json.loads(form.data["color_palette"]) == character.color_palette
    _assert_dna_equals_api(character)


def test_an_admin_feature_list_the_service_would_refuse_is_a_form_error(client):
    story = StoryFactory()
    clip = ClipFactory(story=story)
    character = services.character_lock(story=story, name="Eileen", frame_ids=[_frame(clip, fig.astronaut_bgr()).pk])
    before = default_storage.open(character.dna_file.name).read()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/characters/character/{character.pk}/change/"
    form = _FormFields()
    form.feed(client.get(url).content.decode())
    response = client.post(url, {**form.data, "locked_features": json.dumps(["black hair", "x" * 101])})
    assert response.status_code == 200  # the form again, with the reason
    assert "at most 100 characters" in response.content.decode()
    assert "was changed successfully" not in response.content.decode()
    character.refresh_from_db()
    assert "x" * 101 not in character.locked_features
    assert default_storage.open(character.dna_file.name).read() == before


def test_frames_are_ranked_on_the_designs_character_not_the_frames_main_face():
    """The stored quality is the main face's; the close-up should come from the frame where the design's
    character is sharp, even when the other person is sharper there than in another frame."""
    picture = _two_people()
    blurred = picture.copy()
    blurred[512 - 320 :, 512:] = cv2.GaussianBlur(blurred[512 - 320 :, 512:], (0, 0), 6)  # only her
    astronaut_box = {"x": 512 + 100, "y": 512 - 320 + 60, "width": 120, "height": 140}
    faces = [
        {"box": {"x": 180, "y": 60, "width": 160, "height": 180}, "group_id": 1},
        {"box": astronaut_box, "group_id": 2},
    ]
    # Both frames carry the same stored quality (the cameraman's face is the same in both).
    sharp, soft = (
        dna.FrameInput(key, image, faces, 80, "frontal", False, 2) for key, image in ((1, picture), (2, blurred))
    )
    ranked = [services._ranked_on_the_character(f) for f in (sharp, soft)]
    assert ranked[0].quality > ranked[1].quality  # her sharp frame first
    assert all(r.quality != 80 for r in ranked)  # scored on her box, not the stored main-face quality
    main_face = dna.FrameInput(3, picture, faces, 80, "frontal", False, 1)  # the design's character is the main face
    assert services._ranked_on_the_character(main_face) is main_face
