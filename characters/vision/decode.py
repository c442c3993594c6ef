"""Decoding a clip's sampled frames: one decoder for extraction, pins and the consistency score.

OpenCV `grab()`s every frame (demux + decode, no colour conversion) and `retrieve()`s (converts to
BGR) only the frame nearest each sampling instant and the frames at the tail, so the last decodable
frame is kept too. Decoding runs in a background thread (OpenCV releases the GIL) while the caller
analyses the previous sample. It also notes the I pictures the encoder started off its schedule (at cuts
it noticed), which the shot-cut rule takes as a hint (characters.vision.tracking).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from characters.vision.video import open_capture

END_OF_CLIP = object()
TAIL_FRAMES = 2
INTRA_PICTURE = ord("I")  # CAP_PROP_FRAME_TYPE is FFmpeg's picture type letter


class SampledDecoder(threading.Thread):
    """Decodes a clip in a background thread and hands over the sampled frames.

    OpenCV releases the GIL while it decodes, so the caller analyses one frame while the next
    ones decode. The queue holds at most two frames (4K frames are 24 MB each). Besides the
    samples it keeps the last frame it could convert, and how far the file decoded.
    """

    def __init__(self, path: Path | str, fps: float) -> None:
        super().__init__(name="clip-decoder", daemon=True)
        self.path = path
        self.interval = 1.0 / fps
        self.cap = open_capture(path)  # raises InvalidVideo in the caller's thread
        self.video_fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0
        self.announced = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frames_decoded = 0
        self.last_frame: np.ndarray | None = None
        self.last_seconds: float | None = None
        self.last_index = -1
        self.error: BaseException | None = None
        self.samples: queue.Queue = queue.Queue(maxsize=2)
        self.stopping = threading.Event()
        # Seconds of the intra-coded (I) pictures off the encoder's schedule: encoders start one at a cut they
        # notice (x264's scenecut), so a shot-cut rule may take one between two samples as a hint. An I picture
        # as many frames (+-1) after the previous one as that one was after its own is the regular GOP (phones
        # and hardware encoders put one every second or two, cut or not): no hint. Appended by this thread only.
        self.keyframe_seconds: list[float] = []
        self._last_keyframe = 0
        self._previous_gap = -2

    def run(self) -> None:
        try:
            self._decode()
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self.cap.release()
            self._hand_over(END_OF_CLIP)

    def _hand_over(self, item) -> bool:
        while not self.stopping.is_set():
            try:
                self.samples.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        cap, half_frame, next_sample, index = self.cap, 0.5 / self.video_fps, 0.0, -1
        while not self.stopping.is_set() and cap.grab():
            index += 1
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            seconds = index / self.video_fps if index > 0 and msec <= 0 else msec / 1000.0
            if index > 0 and cap.get(cv2.CAP_PROP_FRAME_TYPE) == INTRA_PICTURE:
                self._note_keyframe(index, seconds)
            take_sample = seconds >= next_sample - half_frame
            # Convert the frames at the announced end too (headers may be a frame or two off), so the
            # last one is at hand without decoding again.
            at_tail = self.announced <= 0 or index >= self.announced - 1 - TAIL_FRAMES
            if take_sample or at_tail:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                self.last_frame, self.last_seconds, self.last_index = frame, seconds, index
                if take_sample:
                    while next_sample <= seconds + half_frame:
                        next_sample += self.interval
                    if not self._hand_over((seconds, frame)):
                        return
            self.frames_decoded = index + 1

    def _note_keyframe(self, index: int, seconds: float) -> None:
        gap, self._last_keyframe = index - self._last_keyframe, index
        if abs(gap - self._previous_gap) > 1:
            self.keyframe_seconds.append(seconds)
        self._previous_gap = gap

    def keyframe_between(self, after: float, until: float) -> bool:
        """An I picture off the encoder's schedule was decoded after `after` and at or before `until` (seconds)."""
        return any(after < s <= until for s in reversed(self.keyframe_seconds))

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def read_frame_at(path: Path | str, index: int) -> np.ndarray | None:
    """Decode up to frame `index` again (only for files that end early) and return it."""
    cap = open_capture(path)
    try:
        for _ in range(index):
            if not cap.grab():
                return None
        ok, frame = cap.read()
        return frame if ok else None
    finally:
        cap.release()
