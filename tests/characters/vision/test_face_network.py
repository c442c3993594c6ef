"""dlib's face descriptor network in numpy (characters.vision.face_network) gives dlib's own descriptors.

On real faces from scikit-image's photos and variants of them (mirrored, darker, scaled), aligned as
identity.py aligns them. Measured (OPENBLAS_NUM_THREADS 1 and 2): at most 3.3e-7 per element and 1.1e-6
in distance from dlib's `compute_face_descriptor`; the asserts leave a margin of two orders of magnitude
(1e-4, 1e-3) and still fail on anything but float rounding (two people are 0.8 apart).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from characters.vision import face_network, identity
from characters.vision.faces import detect_faces, detectors
from demo.clips import photo
from tests.support.concurrency import race

pytestmark = pytest.mark.slow  # dlib and MediaPipe

MAX_ELEMENT_DIFFERENCE = 1e-4
MAX_DISTANCE = 1e-3


def _variants() -> dict[str, np.ndarray]:
    astronaut, cameraman = photo("astronaut"), photo("camera")
    return {
        "astronaut": astronaut,
        "cameraman": cameraman,
        "astronaut mirrored": np.ascontiguousarray(astronaut[:, ::-1]),
        "cameraman mirrored": np.ascontiguousarray(cameraman[:, ::-1]),
        "astronaut darker": (astronaut * 0.45).astype(np.uint8),
        "cameraman scaled down": cv2.resize(cameraman, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
        "astronaut scaled up": cv2.resize(astronaut, None, fx=1.7, fy=1.7, interpolation=cv2.INTER_LINEAR),
    }


@pytest.fixture(scope="module")
def dlib_encoder():
    """dlib's own encoder: the reference the numpy network must match."""
    import dlib
    import face_recognition_models as model_files

    return dlib.face_recognition_model_v1(model_files.face_recognition_model_location())


@pytest.fixture(scope="module")
def faces():
    """Per variant: the identity.py crop and box, the RGB crop, dlib's 5 landmarks and the aligned chip."""
    import dlib

    models = identity.face_models()
    found = {}
    for name, image in _variants().items():
        h, w = image.shape[:2]
        face = max(detect_faces(detectors(), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), key=lambda f: f.prominence)
        crop, box = identity.face_chip(image, (face.box.x * w, face.box.y * h, face.box.w * w, face.box.h * h))
        rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        shape = models.landmarks(rgb, dlib.rectangle(*box))
        aligned = dlib.get_face_chip(rgb, shape, size=face_network.CHIP_SIZE, padding=0.25)
        found[name] = {"crop": crop, "box": box, "rgb": rgb, "shape": shape, "aligned": aligned}
    return found


def test_the_numpy_descriptor_is_dlibs_on_every_face(faces, dlib_encoder):
    network = face_network.face_network()
    for name, face in faces.items():
        ours = network.descriptor(face["aligned"])
        theirs = np.asarray(dlib_encoder.compute_face_descriptor(face["rgb"], face["shape"]), dtype=np.float32)
        assert ours.shape == (face_network.DESCRIPTOR_SIZE,) and ours.dtype == np.float32
        assert np.abs(ours - theirs).max() < MAX_ELEMENT_DIFFERENCE, name
        assert np.linalg.norm(ours - theirs) < MAX_DISTANCE, name


def test_the_chip_is_the_one_dlib_aligns_itself(faces, dlib_encoder):
    # dlib's descriptor of get_face_chip's chip is bit for bit the one it computes from the image and landmarks.
    for name, face in faces.items():
        from_image = dlib_encoder.compute_face_descriptor(face["rgb"], face["shape"])
        from_chip = dlib_encoder.compute_face_descriptor(face["aligned"])
        assert np.array_equal(np.asarray(from_image), np.asarray(from_chip)), name


def test_identity_descriptors_keep_dlibs_distances(faces, dlib_encoder):
    """FaceModels.chip_descriptor (extraction, pins, the consistency score) gives dlib's descriptor, so the
    distances the thresholds were measured on stay: one person close, two people far."""
    models = identity.face_models()
    ours = {name: models.chip_descriptor(face["crop"], face["box"]) for name, face in faces.items()}
    theirs = {
        name: np.asarray(dlib_encoder.compute_face_descriptor(face["rgb"], face["shape"]))
        for name, face in faces.items()
    }
    for name in faces:
        assert ours[name].dtype == np.float64
        assert identity.distance(ours[name], theirs[name]) < MAX_DISTANCE, name
    same = identity.distance(ours["astronaut"], ours["astronaut mirrored"])
    other = identity.distance(ours["astronaut"], ours["cameraman"])
    assert same < identity.SAME_CHARACTER_DISTANCE < other
    assert abs(other - identity.distance(theirs["astronaut"], theirs["cameraman"])) < MAX_DISTANCE


def test_two_threads_at_once_give_what_one_gives(faces):
    network = face_network.face_network()
    chips = [face["aligned"] for face in faces.values()] * 3
    alone = [network.descriptor(chip) for chip in chips]

    def all_of_them(order):
        return [network.descriptor(chips[i]) for i in order]

    forward, backward = list(range(len(chips))), list(reversed(range(len(chips))))
    (first, second), refused = race(all_of_them, [(forward,), (backward,)])
    assert not refused
    for i, expected in enumerate(alone):
        assert np.abs(first[i] - expected).max() < 1e-6
        assert np.abs(second[len(chips) - 1 - i] - expected).max() < 1e-6


def test_the_network_runs_openblas_on_one_thread():
    # Beside the decoder and MediaPipe, OpenBLAS's second thread spun for CPU they needed (bench/identity.py).
    import ctypes

    face_network.face_network()
    with open("/proc/self/maps") as maps:
        numpy_blas = next(line.split()[-1] for line in maps if "numpy.libs/libopenblas" in line)
    assert ctypes.CDLL(numpy_blas).openblas_get_num_threads64_() == 1


def test_a_chip_of_another_size_is_refused():
    with pytest.raises(ValueError, match="150 px square RGB uint8"):
        face_network.face_network().descriptor(np.zeros((160, 160, 3), np.uint8))


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    import face_recognition_models as model_files

    with open(model_files.face_recognition_model_location(), "rb") as f:
        return f.read()


def _altered(data: bytes, old: bytes, new: bytes, after: bytes = b"") -> bytes:
    start = data.index(after) if after else 0
    at = data.index(old, start)
    return data[:at] + new + data[at + len(old) :]


@pytest.mark.parametrize(
    "alter, message",
    [
        pytest.param(lambda d: d[: len(d) // 2], "the file ends inside", id="truncated"),
        pytest.param(lambda d: d[:-1], "the file ends inside", id="last byte missing"),
        pytest.param(lambda d: d + b"\x00", "1 bytes after the network", id="a byte too many"),
        pytest.param(lambda d: _altered(d, b"con_4", b"con_9"), "version 'con_9'", id="conv version"),
        pytest.param(lambda d: _altered(d, b"fc_2", b"fc_7"), "version 'fc_7'", id="fc version"),
        pytest.param(
            lambda d: _altered(d, b"\x01\x96\x01\x96", b"\x01\xa0\x01\xa0", after=b"input_rgb_image_sized"),
            "input_rgb_image_sized rows: 160, expected 150",
            id="input size",
        ),
        pytest.param(
            # The first con_ in the file is the one over the input: 7x7 filters, here said to be 5x5.
            lambda d: _altered(d, b"\x01\x20\x01\x07\x01\x07", b"\x01\x20\x01\x05\x01\x05", after=b"con_4"),
            "rows: 5, expected 7",
            id="filter size",
        ),
        pytest.param(
            lambda d: _altered(d, b"\x0dloss_metric_2", b"\x14loss_multiclass_log_"),
            "version 'loss_multiclass_log_'",
            id="another network",
        ),
    ],
)
def test_a_damaged_or_different_model_file_is_refused(tmp_path, model_bytes, alter, message):
    path = tmp_path / "model.dat"
    path.write_bytes(alter(model_bytes))
    with pytest.raises(face_network.ModelFileError, match=message) as refused:
        face_network.read_model(path)
    assert "model.dat" in str(refused.value) and "not dlib's face descriptor network v1" in str(refused.value)


def test_the_real_model_file_reads_whole(model_bytes, tmp_path):
    path = tmp_path / "model.dat"
    path.write_bytes(model_bytes)
    network = face_network.read_model(path)
    chip = np.full((face_network.CHIP_SIZE,) * 2 + (3,), 128, np.uint8)
    assert np.allclose(network.descriptor(chip), face_network.face_network().descriptor(chip), atol=1e-6)
