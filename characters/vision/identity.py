"""Who a face is: dlib's 128-d face descriptor, the one home for extraction, pins and the consistency score.

dlib's ResNet face encoder (the CC0 model in `face_recognition_models`) turns a face, aligned by dlib's
5-point landmark model on the MediaPipe box, into a 128-d descriptor; two faces are compared by the
Euclidean distance of their descriptors. The 5-point model is the one dlib made for this alignment and a
tenth of the 68-point model's size (each worker thread holds its own copy).

The encoder runs in numpy (`characters.vision.face_network`: dlib's file, dlib's arithmetic) on the chip
dlib's `compute_face_descriptor` would align (`dlib.get_face_chip`, 150 px, padding 0.25): the prebuilt
dlib has no BLAS and took 59-66 ms a face here, numpy's OpenBLAS (on one thread) 8 ms of CPU
(bench/face_network.py), with descriptors within 4e-7 per element of dlib's.

Distances measured on the package photos (see bench/identity.py and README "Characters across clips"):
the same person across zoom, pan and a cut 0.02-0.35 (blurred, dark or cut by the edge up to about 0.5),
the astronaut against the cameraman 0.75-0.9. dlib's usual same-person threshold is 0.6; we join a track
to a character at SAME_CHARACTER_DISTANCE (0.55), which keeps a margin from both sides.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from characters.vision.face_network import CHIP_SIZE, face_network
from characters.vision.face_network import DESCRIPTOR_SIZE as DESCRIPTOR_SIZE  # the descriptor's length, for callers

# Faces are cropped with this margin (times the box side) and scaled so the box is at most
# DESCRIPTOR_FACE_SIDE px before landmarks and descriptor: dlib aligns to a 150 px chip anyway,
# and a smaller crop spares converting a whole 4K frame.
DESCRIPTOR_CROP_MARGIN = 0.6
DESCRIPTOR_FACE_SIDE = 300
# Two descriptors under this are the same character (groups, pins, the consistency score's disagreement check).
SAME_CHARACTER_DISTANCE = 0.55
# What the pin panel quotes as "usually under" for the same character (the measured upper end, rounded).
USUAL_SAME_CHARACTER_DISTANCE = 0.5


def face_chip(image_bgr: np.ndarray, box_px: tuple[float, float, float, float]) -> tuple[np.ndarray, tuple] | None:
    """The crop around a face (box x, y, w, h in pixels of `image_bgr`) that the descriptor needs, scaled
    down, with the box in the crop's pixels; None for a sliver at an edge. Small enough to keep in memory."""
    ih, iw = image_bgr.shape[:2]
    bx, by, bw, bh = box_px
    side = max(bw, bh)
    x0, y0 = max(0, int(bx - DESCRIPTOR_CROP_MARGIN * side)), max(0, int(by - DESCRIPTOR_CROP_MARGIN * side))
    x1 = min(iw, int(bx + bw + DESCRIPTOR_CROP_MARGIN * side) + 1)
    y1 = min(ih, int(by + bh + DESCRIPTOR_CROP_MARGIN * side) + 1)
    if x1 - x0 < 16 or y1 - y0 < 16 or side < 12:
        return None
    crop = image_bgr[y0:y1, x0:x1]
    scale = min(1.0, DESCRIPTOR_FACE_SIDE / side)
    # A copy either way: never a view that keeps a whole frame in memory.
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else crop.copy()
    box = (
        round((bx - x0) * scale),
        round((by - y0) * scale),
        round((bx - x0 + bw) * scale),
        round((by - y0 + bh) * scale),
    )
    return crop, box


class FaceModels:
    """dlib's 5-point landmark model and ResNet face encoder (CC0 files from `face_recognition_models`).

    The landmark model is dlib's, one per thread (`face_models()`); the encoder's weights are read once
    per process and shared (`face_network()` keeps no per-call state).
    """

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as model_files

        self.landmarks = dlib.shape_predictor(model_files.pose_predictor_five_point_model_location())
        self.encoder = face_network()
        self._rectangle = dlib.rectangle
        self._aligned_chip = dlib.get_face_chip

    def chip_descriptor(self, chip: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The descriptor of the face at `box` (left, top, right, bottom) of a `face_chip` crop."""
        rgb = np.ascontiguousarray(cv2.cvtColor(chip, cv2.COLOR_BGR2RGB))
        shape = self.landmarks(rgb, self._rectangle(*box))
        # The chip dlib's compute_face_descriptor(rgb, shape) aligns and encodes.
        aligned = self._aligned_chip(rgb, shape, size=CHIP_SIZE, padding=0.25)
        return self.encoder.descriptor(aligned).astype(np.float64)

    def box_descriptor(self, image_bgr: np.ndarray, box_px: tuple[float, float, float, float]) -> np.ndarray | None:
        """The descriptor of the face at `box_px` (x, y, w, h pixels), or None for a sliver at an edge."""
        chip = face_chip(image_bgr, box_px)
        return None if chip is None else self.chip_descriptor(*chip)

    def descriptor(self, image_bgr: np.ndarray, face) -> np.ndarray | None:
        """The descriptor of a `characters.vision.faces.Face` (box relative to `image_bgr`)."""
        ih, iw = image_bgr.shape[:2]
        b = face.box
        return self.box_descriptor(image_bgr, (b.x * iw, b.y * ih, b.w * iw, b.h * ih))


_per_thread = threading.local()


def face_models() -> FaceModels:
    """This thread's dlib models, loaded on first use (a worker keeps them between jobs)."""
    models = getattr(_per_thread, "face_models", None)
    if models is None:
        models = _per_thread.face_models = FaceModels()
    return models


_idle_models: list[FaceModels] = []
_idle_models_lock = threading.Lock()


class DescriptorThread(threading.Thread):
    """Computes descriptors of queued faces beside the caller (numpy's matmuls release the GIL).

    The extraction queues a track's best faces when the track ends and goes on with the next samples, so
    the descriptors use the time the analysis waits for the decoder instead of adding to it. A face is
    anything with `chip` and `box` (a `face_chip`); it gets `descriptor` and loses `chip`. The models are
    borrowed from a per-process list, used by one thread at a time, so no clip loads them again.
    """

    def __init__(self) -> None:
        super().__init__(name="face-descriptors", daemon=True)
        self._faces: queue.SimpleQueue = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self.error: BaseException | None = None

    def submit(self, face) -> None:
        self._faces.put(face)

    def run(self) -> None:
        with _idle_models_lock:
            models = _idle_models.pop() if _idle_models else None
        try:
            while (face := self._faces.get()) is not None and not self._cancelled.is_set():
                if models is None:
                    models = FaceModels()
                face.descriptor = models.chip_descriptor(face.chip, face.box)
                face.chip = None
        except BaseException as exc:  # handed to the caller's thread by finish()
            self.error = exc
        finally:
            if models is not None:
                with _idle_models_lock:
                    _idle_models.append(models)

    def finish(self) -> None:
        """Wait until every queued face has its descriptor; raises what the thread raised."""
        self._faces.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        self._cancelled.set()
        self._faces.put(None)
        self.join()


def distance(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def centroid(descriptors: Iterable[Sequence[float]]) -> np.ndarray:
    return np.mean(np.asarray(list(descriptors), dtype=np.float64), axis=0)


def disagreeing_pairs(descriptors: Sequence[np.ndarray], threshold: float = SAME_CHARACTER_DISTANCE) -> list[dict]:
    """Pairs (i, j, distance) of descriptors further apart than `threshold`: not one character."""
    pairs = []
    for i in range(len(descriptors)):
        for j in range(i + 1, len(descriptors)):
            d = distance(descriptors[i], descriptors[j])
            if d > threshold:
                pairs.append({"a": i, "b": j, "distance": round(d, 4)})
    return pairs


def image_descriptor(image_bgr: np.ndarray) -> np.ndarray | None:
    """The descriptor of the main face of a picture (a pin image, a reference), or None without a face."""
    from characters.vision.faces import detect_faces, detectors

    h, w = image_bgr.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    small = (
        image_bgr
        if scale >= 1.0
        else cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    )
    faces = detect_faces(detectors(), cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    if not faces:
        return None
    main = max(faces, key=lambda f: f.prominence)
    return face_models().descriptor(image_bgr, main)
