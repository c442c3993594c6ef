"""Extraction analyses samples on ANALYSIS_THREADS threads and takes them back in time order: the result is the
one a single thread makes, and a failure half-way leaves no thread of the clip behind."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from characters.clips import extraction
from demo import clips

pytestmark = pytest.mark.slow  # MediaPipe and dlib on a rendered clip


def _summary(result):
    return (
        [(f.seconds, f.quality, f.pose, [(d["box"], d.get("track")) for d in f.detections]) for f in result.scored],
        [(f.seconds, f.quality) for f in result.frames],
        [(t.index, t.shot_index, t.start_seconds, t.end_seconds, t.descriptor) for t in result.tracks],
    )


@pytest.fixture(scope="module")
def cut_clip(clip_dir):
    return clips.astronaut_cut_to_cameraman(clip_dir / "threads_cut.mp4")


def test_threads_give_what_one_thread_gives(cut_clip, monkeypatch):
    assert extraction.ANALYSIS_THREADS > 1
    in_threads = extraction.extract_candidates(cut_clip, fps=2.0)
    with ThreadPoolExecutor(max_workers=1) as one:
        monkeypatch.setattr(extraction, "_analysis_threads", one)
        alone = extraction.extract_candidates(cut_clip, fps=2.0)
    assert in_threads.frames_analysed == alone.frames_analysed >= 15
    assert _summary(in_threads) == _summary(alone)
    assert [f.seconds for f in in_threads.scored] == sorted(f.seconds for f in in_threads.scored)


def test_a_failing_sample_stops_the_clip_and_its_threads(cut_clip, monkeypatch):
    real, calls = extraction.analyse_frame, []

    def failing(models, frame, seconds, **kwargs):
        calls.append(seconds)
        if len(calls) == 3:
            raise RuntimeError("model crashed")
        return real(models, frame, seconds, **kwargs)

    monkeypatch.setattr(extraction, "analyse_frame", failing)
    with pytest.raises(RuntimeError, match="model crashed"):
        extraction.extract_candidates(cut_clip, fps=2.0)
    assert len(calls) <= 3 + extraction.ANALYSIS_THREADS  # the samples behind it were dropped, not analysed
    alive = {t.name for t in threading.enumerate()}
    assert "clip-decoder" not in alive and "face-descriptors" not in alive
