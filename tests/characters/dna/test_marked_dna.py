"""The DNA of a marked (non-face) character: its palette measured on the subject inside the marked box
(GrabCut seeded by the box, k-means in Lab), named for what it is, and said to come from the marked box."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from characters.dna import images, services
from characters.vision.jpeg import encode_jpeg
from demo import clips
from tests.support.factories import CandidateFrameFactory, ClipFactory, StoryFactory

STILLS = [("rocket", 0.1, 0.2, 1.0), ("chelsea", 0.55, 0.3, 0.85), ("coffee", 0.3, 0.25, 1.15)]


def _mark_detection(box: dict) -> list[dict]:
    return [{"box": box, "source": "mark", "mark_id": 1, "group_id": 1, "appearance_id": 1, "confidence": 0.0}]


@pytest.mark.parametrize("background,x,y,scale", STILLS)
def test_grabcut_keeps_the_subject_and_leaves_the_set(background, x, y, scale):
    frame, box, truth = clips.robot_still(background, x, y, scale)
    found = images.marked_foreground(frame, box)
    inside = np.zeros_like(truth)
    inside[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]] = True
    iou = (found & truth).sum() / (found | truth).sum()
    box_iou = (inside & truth).sum() / (inside | truth).sum()
    # Measured (bench/marks_appearance.py): 0.94-0.99, where the box alone is about 0.51.
    assert iou > 0.9 and box_iou < 0.6
    assert not found[~inside].any()  # nothing outside the box


def test_the_palette_is_the_subjects_paint_not_the_set():
    frames = [
        images.FrameInput(key, frame, _mark_detection(box), 80, "", True)
        for key, (frame, box, _) in enumerate(clips.robot_still(*still) for still in STILLS)
    ]
    regions = images.measure_marked_regions(frames)
    assert set(regions) <= set(images.MARKED_REGIONS) and "body_primary" in regions
    primary = regions["body_primary"]
    assert images.delta_e(primary["color"], clips.ROBOT_PAINT) < 5  # measured 1.1
    assert primary["frames"] == [0, 1, 2] and 0 < primary["pixels"] <= primary["region_pixels"]
    assert images.marked_features(images.palette_from(regions)) == [
        {"feature": "orange body", "key": "body", "source": "measured"}
    ]


def test_a_two_coloured_subject_gets_a_secondary_colour_and_an_empty_box_none():
    frame = clips.pan_zoom_window(clips.photo("rocket"), (960, 540), 1.05, (0.5, 0.5))
    cv2.ellipse(frame, (480, 270), (90, 140), 0, 0, 360, (200, 60, 30), -1)  # a blue body...
    cv2.rectangle(frame, (420, 300), (540, 380), (30, 200, 240), -1)  # ...with a yellow belly
    box = {"x": 380, "y": 120, "width": 200, "height": 300}
    regions = images.measure_marked_regions([images.FrameInput(1, frame, _mark_detection(box), 80, "", True)])
    assert images.delta_e(regions["body_primary"]["color"], "#1E3CC8") < 8
    assert images.delta_e(regions["body_secondary"]["color"], "#F0C81E") < 8
    assert regions["body_primary"]["share"] > regions["body_secondary"]["share"] > 0.1
    flat = np.full((540, 960, 3), 90, np.uint8)  # nothing to separate from: no colour rather than a guess
    assert images.measure_marked_regions([images.FrameInput(1, flat, _mark_detection(box), 80, "", True)]) == {}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "http://testserver"


@pytest.mark.django_db(transaction=True)
def test_locking_a_marked_design_measures_the_marked_box_and_says_so(media, client):
    story = StoryFactory()
    clip = ClipFactory(story=story, width=960, height=540)
    frame_ids = []
    for quality, still in zip((70, 90, 80), STILLS, strict=True):
        image, box, _ = clips.robot_still(*still)
        frame = CandidateFrameFactory(clip=clip, quality=quality, full_body=True, detections=_mark_detection(box))
        frame.image.name = default_storage.save(f"frames/test/{frame.pk}.jpg", ContentFile(encode_jpeg(image)))
        frame.save()
        frame_ids.append((frame.pk, box))
    character = services.character_lock(story=story, name="Robo", frame_ids=[pk for pk, _ in frame_ids])
    assert character.status == "canonical", character.lock_error
    assert set(character.color_palette) == {"body_primary"}
    assert images.delta_e(character.color_palette["body_primary"], clips.ROBOT_PAINT) < 5
    assert character.palette_sources == {"body_primary": "measured"}
    assert character.measured["subject"]["kind"] == "marked"
    assert "marked box" in character.measured["subject"]["palette"]
    assert character.measured["regions"]["body_primary"]["frames"] == [pk for pk, _ in frame_ids]
    assert "orange body" in character.locked_features
    # The reference is the best frame's box, a little padded: the subject, not the set around it.
    (reference,) = character.reference_images.all()
    best_pk, best_box = frame_ids[1]
    assert reference.kind == "full_body" and reference.source_frame_id == best_pk
    pad = images.MARKED_REFERENCE_PAD
    assert abs(reference.width - best_box["width"] * (1 + 2 * pad)) <= 2
    assert abs(reference.height - best_box["height"] * (1 + 2 * pad)) <= 2
    document = json.loads(default_storage.open(character.dna_file.name).read())
    assert images.validate_dna(document) == []
    assert document["measured"]["subject"]["kind"] == "marked" and document["color_palette"] == character.color_palette
    page = client.get(reverse("character-detail", args=[character.character_id])).content.decode()
    assert "Measured from the marked box" in page and "Body primary" in page
    assert "skin inside the face outline" not in page


def test_a_marked_character_with_nothing_measured_keeps_its_shape_not_a_face():
    """The locked features are never empty (the schema needs one): the default names what the references
    of that kind of character show."""
    assert images.merge_features([], [], marked=True) == [images.MARKED_FALLBACK_FEATURE]
    assert images.merge_features([], []) == [images.FALLBACK_FEATURE]
    assert "face" not in images.MARKED_FALLBACK_FEATURE["feature"]
