"""The joining rule for character groups, pure (no database): services.py and bench/identity.py use it."""

from __future__ import annotations

import numpy as np

from characters.vision.identity import SAME_CHARACTER_DISTANCE

Span = tuple[int, int, float, float]  # (clip, shot, start seconds, end seconds) of a track


class GroupIndex:
    """Groups as centroids of their members' descriptors, in memory; the one joining rule (also the bench's)."""

    def __init__(self) -> None:
        self.members: dict[int, list[np.ndarray]] = {}
        self.busy: dict[int, list[Span]] = {}

    def add(self, key: int, descriptor, span: Span) -> None:
        self.members.setdefault(key, [])
        self.busy.setdefault(key, []).append(span)
        if descriptor is not None:
            self.members[key].append(np.asarray(descriptor, dtype=np.float64))

    def add_centroid(self, key: int, centroid) -> None:
        """A group with no member left, matched by the centroid it had (it is never on screen anywhere)."""
        self.busy.setdefault(key, [])
        self.members.setdefault(key, []).append(np.asarray(centroid, dtype=np.float64))

    def _overlaps(self, key: int, span: Span) -> bool:
        clip, shot, start, end = span
        return any(c == clip and s == shot and a <= end and start <= b for c, s, a, b in self.busy[key])

    def match(self, descriptor, span: Span) -> int | None:
        """The group the track joins: the nearest centroid under SAME_CHARACTER_DISTANCE, never a group
        already on screen in the same shot at the same time; None to start a new one."""
        descriptor = np.asarray(descriptor, dtype=np.float64)
        best: tuple[float, int] | None = None
        for key, members in self.members.items():
            if not members or self._overlaps(key, span):
                continue
            d = float(np.linalg.norm(np.mean(members, axis=0) - descriptor))
            if best is None or d < best[0]:
                best = (d, key)
        return best[1] if best is not None and best[0] < SAME_CHARACTER_DISTANCE else None
