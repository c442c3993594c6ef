"""Shots and face tracks in a clip's sampled frames, and one identity descriptor per track.

Shots
    A cut is where the colour histogram of a sampled frame jumps from the previous sample's: the
    hue/saturation/brightness histogram (HSV, 16 x 8 x 4 bins, on a 160 px copy) compared by
    Bhattacharyya distance, a cut above CUT_DISTANCE, or above KEYFRAME_CUT_DISTANCE when the encoder
    started an I picture between the two samples off its schedule (`is_cut`; the decoder tells,
    `SampledDecoder.keyframe_between`). Measured by bench/shots.py at one sample a second: fast pans and
    zooms, dark and motion-blurred shots move it by at most 0.28, a cut to another scene by 0.74 and
    more, a cut to another framing of the same scene by 0.18-0.81 (median 0.38): the histogram alone
    finds 4 of those 12, with x264's scene-cut I pictures all 12 (as PySceneDetect's AdaptiveDetector on
    every frame does), and no false cut either way. The brightness bins are there for grey pictures
    (black-and-white footage, a desaturated night): they put all their mass in one hue/saturation bin,
    so without them no cut between two of them was seen. A lasting change of light counts as a cut.
    Every sample counts, with a person or not, so a shot of an empty room between two of the same
    person still splits them. (PySceneDetect itself would need opencv-python, which overwrites
    mediapipe's opencv-contrib cv2.)

Tracks
    Within a shot a face continues the track whose last box overlaps it most (IoU >= TRACK_MIN_IOU),
    from the sample just before; each track takes at most one face per sample. One track = one
    appearance of one character in one shot. A missed detection ends a track; the story's grouping
    joins the pieces again by their descriptors.

Descriptors
    Not every face: each track keeps its TRACK_BEST_FACES best faces (confidence x size x frontalness,
    occluded faces halved) as small crops (about 300 px), and when the track ends the descriptor of the
    track is the mean of the descriptors of its best few (dlib, `characters.vision.identity`): one face
    for a track of up to FACES_PER_DESCRIPTOR_STEP samples, two up to twice that, three beyond. A
    descriptor costs about 8 ms of CPU here (dlib's network in numpy, `characters.vision.face_network`;
    dlib's own build took 57 ms), and the faces of a short track at one sample a second are near copies
    of each other, so more would buy nothing but time. On bench/identity.py's clips that is one
    descriptor per track, 8 in all.
    A track ends in the loop (a cut, or a sample that does not continue it); its best faces then go to
    a DescriptorThread (numpy's matmuls release the GIL) and the loop goes on with the next samples, so
    the descriptors run beside the analysis and the decoder instead of stalling them. `Track.descriptor` is
    there once `finish()` has returned; `close()` stops the thread of a clip given up half-way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from characters.vision.identity import DescriptorThread, face_chip

CUT_DISTANCE = 0.4
# Across an I picture the encoder started (`SampledDecoder.keyframe_between`), a smaller jump is a cut too.
KEYFRAME_CUT_DISTANCE = 0.15
TRACK_MIN_IOU = 0.3
TRACK_BEST_FACES = 3
FACES_PER_DESCRIPTOR_STEP = 3  # samples per descriptor face (1-3 samples: 1 face, 4-6: 2, 7+: 3)
HISTOGRAM_SIDE = 160


def frame_histogram(frame_bgr: np.ndarray) -> np.ndarray:
    h, w = frame_bgr.shape[:2]
    scale = HISTOGRAM_SIDE / max(h, w)
    small = cv2.resize(frame_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def is_cut(distance: float, *, keyframe: bool = False) -> bool:
    """A cut between two samples `distance` apart (histogram_distance); `keyframe`: an I picture between them."""
    return distance > (KEYFRAME_CUT_DISTANCE if keyframe else CUT_DISTANCE)


def iou(a: dict, b: dict) -> float:
    """Intersection over union of two {x, y, width, height} boxes."""
    ax1, ay1 = a["x"] + a["width"], a["y"] + a["height"]
    bx1, by1 = b["x"] + b["width"], b["y"] + b["height"]
    iw = max(0.0, min(ax1, bx1) - max(a["x"], b["x"]))
    ih = max(0.0, min(ay1, by1) - max(a["y"], b["y"]))
    inter = iw * ih
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def face_quality(detection: dict, frame_height: int) -> float:
    """How good a face is for telling who it is: confident, big, frontal, not occluded (0-1-ish)."""
    yaw = abs(detection.get("yaw") or 0.0)
    frontal = max(0.2, 1.0 - yaw / 90.0)
    size = min(1.0, detection["box"]["height"] / max(1.0, 0.3 * frame_height))
    value = detection.get("confidence", 0.0) * size * frontal * detection.get("inside_frame", 1.0)
    return value * (0.5 if detection.get("occluded") else 1.0)


@dataclass
class _Face:
    quality: float
    seconds: float
    chip: np.ndarray | None  # the crop, until the track ends
    box: tuple
    descriptor: np.ndarray | None = None


@dataclass
class Track:
    """One appearance of one character in one shot of a clip."""

    index: int  # in the clip, from 0
    shot_index: int
    start_seconds: float
    end_seconds: float
    last_box: dict
    best_seconds: float = 0.0
    best_box: dict = field(default_factory=dict)
    best_pose: str = "frontal"
    best_quality: float = -1.0
    samples: int = 0
    faces: list[_Face] = field(default_factory=list)
    ended: bool = False

    @property
    def descriptor(self) -> list[float] | None:
        """The mean of the best faces' descriptors (128 floats), None when no face gave one."""
        found = [f.descriptor for f in self.faces if f.descriptor is not None]
        if not found:
            return None
        return [round(float(v), 6) for v in np.mean(np.asarray(found), axis=0)]


class ShotTracker:
    """Fed every sampled frame in time order (with its face detections, possibly none)."""

    def __init__(self, *, best_faces: int = TRACK_BEST_FACES) -> None:
        self.best_faces = best_faces
        self.shot_index = -1
        self.tracks: list[Track] = []
        self._previous_hist: np.ndarray | None = None
        self._open: list[Track] = []  # tracks seen in the previous sample of the current shot
        self._descriptors: DescriptorThread | None = None

    def observe(
        self, seconds: float, frame_bgr: np.ndarray, detections: list[dict], *, keyframe: bool = False
    ) -> list[int]:
        """Advance by one sample; returns the track index of each detection (same order). `keyframe`: the
        decoder met an I picture since the previous sample (`is_cut`)."""
        hist = frame_histogram(frame_bgr)
        if self._previous_hist is None or is_cut(histogram_distance(self._previous_hist, hist), keyframe=keyframe):
            self.shot_index += 1
            self._end(self._open)
            self._open = []
        self._previous_hist = hist
        pairs = sorted(
            (
                (iou(track.last_box, det["box"]), t, d)
                for t, track in enumerate(self._open)
                for d, det in enumerate(detections)
            ),
            key=lambda p: -p[0],
        )
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for overlap, t, d in pairs:
            if overlap < TRACK_MIN_IOU:
                break
            if t in used_tracks or d in assigned:
                continue
            used_tracks.add(t)
            assigned[d] = self._open[t]
        height = frame_bgr.shape[0]
        result = []
        for d, det in enumerate(detections):
            track = assigned.get(d)
            if track is None:
                track = Track(
                    index=len(self.tracks),
                    shot_index=self.shot_index,
                    start_seconds=seconds,
                    end_seconds=seconds,
                    last_box=det["box"],
                )
                self.tracks.append(track)
            track.end_seconds, track.last_box = seconds, det["box"]
            track.samples += 1
            self._offer(track, frame_bgr, det, seconds, face_quality(det, height))
            result.append(track.index)
        continuing = {id(self.tracks[i]) for i in result}
        self._end([t for t in self._open if id(t) not in continuing])
        self._open = [self.tracks[i] for i in result]
        return result

    def finish(self) -> list[Track]:
        """End the open tracks and wait for their descriptors; returns every track of the clip."""
        self._end(self._open)
        self._open = []
        if self._descriptors is not None:
            self._descriptors.finish()
            self._descriptors = None
        return self.tracks

    def close(self) -> None:
        """Stop the descriptor thread without waiting for the faces still queued (an aborted clip)."""
        if self._descriptors is not None:
            self._descriptors.cancel()
            self._descriptors = None

    def _end(self, tracks: list[Track]) -> None:
        for track in tracks:
            if track.ended:
                continue
            track.ended = True
            wanted = min(self.best_faces, 1 + (track.samples - 1) // FACES_PER_DESCRIPTOR_STEP)
            best = sorted(track.faces, key=lambda f: -f.quality)[:wanted]
            kept = {id(face) for face in best}
            for face in track.faces:
                if id(face) not in kept:
                    face.chip = None  # free the pixels
            if best and self._descriptors is None:
                self._descriptors = DescriptorThread()
                self._descriptors.start()
            for face in best:
                self._descriptors.submit(face)  # type: ignore[union-attr]  # started just above
            track.faces = best

    def _offer(self, track: Track, frame_bgr: np.ndarray, det: dict, seconds: float, quality: float) -> None:
        if quality > track.best_quality:
            track.best_quality, track.best_seconds = quality, seconds
            track.best_box, track.best_pose = dict(det["box"]), det.get("pose") or "frontal"
        if len(track.faces) >= self.best_faces and quality <= min(f.quality for f in track.faces):
            return
        b = det["box"]
        chip = face_chip(frame_bgr, (b["x"], b["y"], b["width"], b["height"]))
        if chip is None:
            return
        track.faces.append(_Face(quality, seconds, chip[0], chip[1]))
        if len(track.faces) > self.best_faces:
            track.faces.remove(min(track.faces, key=lambda f: f.quality))
