"""`manage.py extract_frames`: the pipeline on a file, as a table or one JSON object."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("extract_frames", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_output_is_one_object_best_first(mixed_clip):
    out, err = run(mixed_clip, "--json")
    payload = json.loads(out)  # the whole of stdout is one JSON document
    assert set(payload) == {"clip", "elapsed_seconds", "frames"}
    assert payload["clip"] == str(mixed_clip)
    assert 0 < payload["elapsed_seconds"] < 60
    frames = payload["frames"]
    assert 1 <= len(frames) <= settings.EXTRACTION_TOP_N
    assert [f["quality"] for f in frames] == sorted((f["quality"] for f in frames), reverse=True)
    for frame in frames:
        assert set(frame) == {"timestamp", "seconds", "quality", "low_quality", "dominant", "pose", "detections"}
        assert re.fullmatch(r"\d\d:\d\d", frame["timestamp"])
        assert frame["timestamp"] == f"00:{int(frame['seconds']):02d}"
        assert frame["pose"] in {"frontal", "left", "right"}
        assert frame["detections"] and "box" in frame["detections"][0]
        assert frame["seconds"] < 8  # nothing from the seconds without a person
    assert frames[0]["seconds"] < 2  # a sharp, well-lit second leads
    assert "100%" in err  # the progress bar went to stderr, not into the JSON


def test_fps_and_top_options(mixed_clip, settings):
    settings.MIN_QUALITY_SCORE = 0  # every frame may be offered: --top alone decides how many
    out, _ = run(mixed_clip, "--json", "--fps", "2", "--top", "2")
    frames = json.loads(out)["frames"]
    assert len(frames) == 2
    assert "20 analysed" in run(mixed_clip, "--fps", "2")[0]  # 10 s at 2 frames a second
    assert "10 analysed" in run(mixed_clip)[0]  # the EXTRACTION_FPS setting, 1


def test_table_output(profile_clip):
    out, err = run(profile_clip)
    assert "1280x720" in out
    lines = [line for line in out.splitlines() if re.match(r"\s*\d+\s+\d\d:\d\d\s", line)]
    assert lines, out
    assert all(" right " in line for line in lines)
    assert "extracting [" in err


def test_no_person_clip_says_so(no_person_clip):
    out, _ = run(no_person_clip)
    assert "No person found" in out
    assert json.loads(run(no_person_clip, "--json")[0])["frames"] == []


def test_truncated_clip_warns_on_stderr(truncated_tail_clip):
    out, err = run(truncated_tail_clip, "--json")
    assert json.loads(out)["frames"]
    assert "ends early" in err


@pytest.mark.parametrize("content", [b"", b"this is not a video\n"])
def test_refused_file_raises_command_error(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(CommandError, match=r"bad\.mp4: .*(empty|not a video)"):
        run(bad, "--json")


def test_missing_header_and_missing_file_are_refused(missing_header_clip, tmp_path):
    with pytest.raises(CommandError, match="could not be read as a video"):
        run(missing_header_clip)
    with pytest.raises(CommandError, match="No such file"):
        run(tmp_path / "nowhere.mp4")


def test_refused_file_exits_non_zero_with_the_reason_on_stderr(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("shopping list\n")
    root = Path(settings.BASE_DIR)
    proc = subprocess.run(
        [sys.executable, str(root / "manage.py"), "extract_frames", str(bad), "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    assert proc.returncode != 0
    assert "not a video" in proc.stderr
    assert proc.stdout == ""
