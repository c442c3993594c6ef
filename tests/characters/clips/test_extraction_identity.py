"""What identity costs the extraction: descriptors computed in a thread beside the sample loop (numpy's
matmuls release the GIL), on models borrowed once per process, and no thread left behind when a clip is
given up."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import pytest

from characters.clips.extraction import extract_candidates
from characters.vision import identity, tracking
from characters.vision.faces import detect_faces, detectors
from demo import clips
from demo.clips import photo

pytestmark = pytest.mark.slow  # dlib and MediaPipe


@pytest.fixture(scope="module")
def astronaut_chip():
    image = photo("astronaut")
    h, w = image.shape[:2]
    face = max(detect_faces(detectors(), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), key=lambda f: f.prominence)
    return identity.face_chip(image, (face.box.x * w, face.box.y * h, face.box.w * w, face.box.h * h))


def test_the_thread_gives_the_descriptors_the_caller_would_and_frees_the_chips(astronaut_chip):
    chip, box = astronaut_chip
    faces = [SimpleNamespace(chip=chip.copy(), box=box, descriptor=None) for _ in range(2)]
    worker = identity.DescriptorThread()
    worker.start()
    for face in faces:
        worker.submit(face)
    worker.finish()
    expected = identity.face_models().chip_descriptor(chip, box)
    for face in faces:
        assert face.chip is None and face.descriptor.shape == (identity.DESCRIPTOR_SIZE,)
        assert identity.distance(face.descriptor, expected) < 1e-6
    assert not worker.is_alive()


def test_each_clip_borrows_the_same_models_instead_of_loading_its_own(astronaut_chip):
    chip, box = astronaut_chip
    seen = []
    for _ in range(3):
        worker = identity.DescriptorThread()
        worker.start()
        worker.submit(SimpleNamespace(chip=chip.copy(), box=box, descriptor=None))
        worker.finish()
        seen.append(list(identity._idle_models))
    assert seen[0] and all(models == seen[0] for models in seen)  # the same sets, back after each clip: none loaded


def test_a_failing_descriptor_is_raised_in_the_callers_thread():
    worker = identity.DescriptorThread()
    worker.start()
    worker.submit(SimpleNamespace(chip=None, box=(0, 0, 10, 10), descriptor=None))  # no pixels
    with pytest.raises(cv2.error):
        worker.finish()
    assert not worker.is_alive()


def test_cancel_stops_without_computing_what_is_still_queued(astronaut_chip):
    chip, box = astronaut_chip
    faces = [SimpleNamespace(chip=chip, box=box, descriptor=None) for _ in range(40)]
    worker = identity.DescriptorThread()
    for face in faces:
        worker.submit(face)
    worker.start()
    worker.cancel()
    assert not worker.is_alive()
    assert sum(face.descriptor is not None for face in faces) < len(faces)


def test_a_clip_given_up_half_way_leaves_no_descriptor_thread(clip_dir, monkeypatch):
    path = clips.astronaut_cut_to_cameraman(clip_dir / "given_up.mp4")  # the astronaut's track ends at the cut
    started: list[identity.DescriptorThread] = []

    class Recorded(identity.DescriptorThread):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(tracking, "DescriptorThread", Recorded)

    class GiveUp(Exception):
        pass

    def progress(percent: int) -> None:
        if percent >= 80:  # past the cut, before the end
            raise GiveUp

    with pytest.raises(GiveUp):
        extract_candidates(path, fps=1.0, progress=progress)
    assert len(started) == 1 and not started[0].is_alive()
    result = extract_candidates(path, fps=1.0)  # and the next clip still gets its descriptors
    assert len(result.tracks) == 2 and all(len(t.descriptor) == identity.DESCRIPTOR_SIZE for t in result.tracks)
    assert len(started) == 2 and not started[1].is_alive()
