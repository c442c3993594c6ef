"""`manage.py score_consistency`: any clip scored against a character or images, as a table or JSON."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from characters.models import ReferenceImage
from demo.clips import photo
from tests.support.factories import CharacterFactory


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("score_consistency", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_png(path: Path, image) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("refs") / "astronaut.png", photo("astronaut")[0:330, 60:400])


@pytest.fixture(scope="module")
def coffee_png(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("refs") / "coffee.png", photo("coffee"))


def test_json_is_one_object_with_the_score_and_a_score_per_frame(good_clip, profile_clip, astronaut_png):
    out, _ = run(good_clip, "--references", astronaut_png, "--samples", "3", "--json")
    payload = json.loads(out)  # the whole of stdout is one JSON document
    assert set(payload) == {"score", "frames"}
    assert isinstance(payload["score"], int) and 0 <= payload["score"] <= 100
    assert len(payload["frames"]) == 3
    for frame in payload["frames"]:
        assert {"seconds", "score"} <= set(frame)
        assert isinstance(frame["score"], int) and 0 <= frame["score"] <= 100
        assert 0 < frame["seconds"] < 5
    other = json.loads(run(profile_clip, "--references", astronaut_png, "--samples", "3", "--json")[0])
    assert payload["score"] >= other["score"] + 40


def test_references_without_a_face_are_named_on_stderr(no_person_clip, astronaut_png, coffee_png):
    out, err = run(no_person_clip, "--references", coffee_png, astronaut_png, "--samples", "3", "--json")
    assert json.loads(out)["score"] == 0
    assert f"no face found in {coffee_png}" in err


@pytest.mark.django_db
def test_table_against_a_character(good_clip, astronaut_png):
    character = CharacterFactory(color_palette={"skin": "#DDB69F", "hair": "#9B8762", "clothing_primary": "#D16C4A"})
    reference = ReferenceImage(character=character, kind=ReferenceImage.Kind.FULL_BODY, width=340, height=330)
    reference.image.save("full_body.png", ContentFile(astronaut_png.read_bytes()), save=True)

    out, _ = run(good_clip, "--character", character.character_id, "--samples", "4")
    assert f"character {character.character_id} (its DNA palette)" in out
    rows = [line for line in out.splitlines() if re.match(r"\s*\d+\.\d\d\s+(yes|no)\s", line)]
    assert len(rows) == 4
    assert re.search(r"Consistency score: \d+/100", out)
    score = int(re.search(r"Consistency score: (\d+)/100", out).group(1))
    assert score >= 50
    # The database id works too, with the same result.
    assert run(good_clip, "--character", character.pk, "--samples", "4")[0] == out


@pytest.mark.django_db
def test_refusals(tmp_path, good_clip, missing_header_clip, astronaut_png, coffee_png):
    with pytest.raises(CommandError, match="No character with the id 'nobody_here'"):
        run(good_clip, "--character", "nobody_here")
    with pytest.raises(CommandError, match="no reference images"):
        run(good_clip, "--character", CharacterFactory().character_id)
    with pytest.raises(CommandError, match="None of the reference images shows a face"):
        run(good_clip, "--references", coffee_png)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image\n")
    with pytest.raises(CommandError, match=r"notes\.png: not an image"):
        run(good_clip, "--references", notes)
    with pytest.raises(CommandError, match="No such file"):
        run(tmp_path / "nowhere.mp4", "--references", astronaut_png)
    with pytest.raises(CommandError, match="could not be read as a video"):
        run(missing_header_clip, "--references", astronaut_png)


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --character nor --references
        ["--character", "someone", "--references", "a.png"],
        ["--references", "a.png", "--samples", "2"],
    ],
)
def test_bad_arguments_are_refused(good_clip, args):
    with pytest.raises(CommandError):
        run(good_clip, *args)


def test_a_bad_video_exits_non_zero_with_the_reason_on_stderr(tmp_path, astronaut_png):
    bad = tmp_path / "notes.mp4"
    bad.write_text("shopping list\n")
    root = Path(settings.BASE_DIR)
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "manage.py"),
            "score_consistency",
            str(bad),
            "--references",
            str(astronaut_png),
            "--json",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    assert proc.returncode != 0
    assert "could not be read as a video" in proc.stderr
    assert proc.stdout == ""
