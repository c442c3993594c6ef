"""Writes of character groups: who is who across a story's clips. Extraction, the API and the pages call these.

Joining (`clip_record_tracks`, at the end of a clip's extraction, in the transaction that stores its frames)
    The clip's tracks (characters.vision.tracking) become Appearance rows. Each track with a descriptor,
    best first, joins the group whose centroid (the mean of its appearances' descriptors) is nearest, when
    that is under SAME_CHARACTER_DISTANCE (0.55, characters.vision.identity); otherwise it starts a new group
    ("Character A", "Character B"...). A group never takes two tracks of one shot that overlap in time:
    two faces on screen at once are two characters. Only descriptors are compared, so old clips are never
    decoded again. Re-extracting a clip replaces its appearances; groups left empty are deleted.

Locks
    Every write takes the story's row lock first (`select_for_update` on characters_story), then touches
    groups, appearances and candidate frames of that story. Two clips of one story finishing at once
    therefore join one after the other and cannot both create "Character A" for the same person. Pins
    take the same story lock first, so the order story -> rows is the same everywhere.

Candidate frames
    Each face in a frame's `detections` carries `track` (from extraction), `appearance_id` and `group_id`;
    `_sync_frame_groups` rewrites the last two whenever appearances change group (join, merge, split).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np  # centroids
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction
from django.db.models import Max

from characters.groups.joining import GroupIndex, Span
from characters.groups.selectors import can_edit_groups
from characters.models import Appearance, CandidateFrame, CharacterGroup, Clip, Story, group_label_for
from common.exceptions import NotFound, ServiceError
from common.typing import AnyUser, UserType

logger = logging.getLogger(__name__)


def _lock_story(story_id: int) -> None:
    """Serialise a story's group writes (PostgreSQL row lock; SQLite serialises writers by itself)."""
    Story.objects.select_for_update().filter(pk=story_id).first()


def _audit(user: UserType, obj: CharacterGroup, action_flag: int, message: str) -> None:
    logger.info("character group %s: %s (by %s)", obj.pk, message, getattr(user, "pk", None))
    if user is not None and user.pk is not None:
        LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj], action_flag=action_flag, change_message=message)


def _require_editor(user: AnyUser | None, story: Story) -> UserType:
    """The user, when they may edit the story's characters (can_edit_groups); else 403."""
    if not can_edit_groups(user, story):
        raise ServiceError(
            "Only contributors of this story can rename, merge or split its characters.",
            code="forbidden", status_code=403,
        )
    return cast("UserType", user)


# --- Joining tracks into groups ----------------------------------------------------------------


def _span(appearance: Appearance) -> Span:
    return (appearance.clip_id, appearance.shot_index, appearance.start_seconds, appearance.end_seconds)


class _Joining:
    """The story's face groups while a clip's tracks join them."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.index = GroupIndex()
        self.groups = {g.pk: g for g in CharacterGroup.objects.filter(story=story, kind=CharacterGroup.Kind.FACE)}
        for key in self.groups:
            self.index.members[key], self.index.busy[key] = [], []
        for appearance in Appearance.objects.filter(group__in=list(self.groups)).only(
            "group_id", "clip_id", "shot_index", "start_seconds", "end_seconds", "descriptor"
        ):
            self.index.add(appearance.group_id, appearance.descriptor or None, _span(appearance))  # type: ignore[arg-type]  # grouped appearances only
        self.next_number = (CharacterGroup.objects.filter(story=story).aggregate(n=Max("number"))["n"] or 0) + 1

    def place(self, appearance: Appearance) -> CharacterGroup:
        key = self.index.match(appearance.descriptor, _span(appearance))
        if key is None:
            group = CharacterGroup.objects.create(
                story=self.story, number=self.next_number, label=group_label_for(self.next_number),
                kind=CharacterGroup.Kind.FACE,
            )
            self.next_number += 1
            self.groups[group.pk] = group
            key = group.pk
        self.index.add(key, appearance.descriptor, _span(appearance))
        return self.groups[key]


def clip_record_tracks(*, clip: Clip, tracks: Sequence, frames: Iterable[CandidateFrame]) -> list[Appearance]:
    """Replace the clip's appearances with its extraction's `tracks` and join them into the story's groups.

    Call inside the transaction that stores the clip's candidate `frames` (saved rows, whose detections
    carry `track`); takes the story's lock.
    """
    frames = list(frames)
    with transaction.atomic():
        _lock_story(clip.story_id)
        touched = set(
            Appearance.objects.filter(clip=clip, group__isnull=False).values_list("group_id", flat=True)
        )
        Appearance.objects.filter(clip=clip).delete()
        best_frame: dict[int, CandidateFrame] = {}
        for frame in sorted(frames, key=lambda f: (-f.quality, f.rank)):
            for detection in frame.detections:
                if "track" in detection:
                    best_frame.setdefault(detection["track"], frame)
        appearances = Appearance.objects.bulk_create([
            Appearance(
                clip=clip, shot_index=track.shot_index, track_index=track.index, descriptor=track.descriptor,
                start_seconds=round(track.start_seconds, 3), end_seconds=round(track.end_seconds, 3),
                samples=track.samples, best_seconds=round(track.best_seconds, 3),
                best_frame=best_frame.get(track.index), box=track.best_box, pose=track.best_pose,
                quality=round(max(0.0, track.best_quality), 4),
            )
            for track in tracks
        ])
        if touched:
            _refresh_groups(touched)  # before joining: the old tracks' descriptors are gone from the centroids
        joining = _Joining(clip.story)
        for appearance in sorted(appearances, key=lambda a: -a.quality):
            if appearance.descriptor:
                appearance.group = joining.place(appearance)
                touched.add(appearance.group_id)  # type: ignore[arg-type]  # it had a group a moment ago
        Appearance.objects.bulk_update([a for a in appearances if a.group_id], ["group"])
        _refresh_groups(touched)
        _sync_frame_groups([clip.pk])
    return appearances


# --- Keeping groups and frames in step ---------------------------------------------------------


def _refresh_groups(group_ids: Iterable[int]) -> None:
    """Recompute centroid and cover of each group from its appearances; delete the groups left empty."""
    for group in CharacterGroup.objects.filter(pk__in=list(group_ids)):
        members = list(group.appearances.order_by("-quality", "pk"))
        if not members:
            group.delete()
            continue
        descriptors = [m.descriptor for m in members if m.descriptor]
        group.centroid = [round(float(v), 6) for v in np.mean(descriptors, axis=0)] if descriptors else []
        group.cover_frame_id = next((m.best_frame_id for m in members if m.best_frame_id), None)
        group.save(update_fields=["centroid", "cover_frame", "updated_at"])


def _sync_frame_groups(clip_ids: Iterable[int]) -> None:
    """Write each face's `appearance_id` and `group_id` into the candidate frames of these clips."""
    clip_ids = list(set(clip_ids))
    by_track = {
        (a.clip_id, a.track_index): a
        for a in Appearance.objects.filter(clip_id__in=clip_ids).only("pk", "clip_id", "track_index", "group_id")
    }
    changed = []
    for frame in CandidateFrame.objects.filter(clip_id__in=clip_ids).only("pk", "clip_id", "detections"):
        dirty = False
        for detection in frame.detections:
            if "track" not in detection:
                continue
            appearance = by_track.get((frame.clip_id, detection["track"]))
            wanted = (appearance.pk, appearance.group_id) if appearance else (None, None)
            if (detection.get("appearance_id"), detection.get("group_id")) != wanted:
                detection["appearance_id"], detection["group_id"] = wanted
                dirty = True
        if dirty:
            changed.append(frame)
    CandidateFrame.objects.bulk_update(changed, ["detections"])


# --- Edits by contributors ---------------------------------------------------------------------


def _locked_group(group_id: int, story_id: int | None = None) -> CharacterGroup:
    group = CharacterGroup.objects.select_related("story").filter(pk=group_id).first()
    if group is None or (story_id is not None and group.story_id != story_id):
        raise NotFound(f"Character group {group_id} does not exist.")
    return group


def group_rename(*, group: CharacterGroup, user: AnyUser | None, label: object) -> CharacterGroup:
    user = _require_editor(user, group.story)
    label = (label if isinstance(label, str) else "").strip()
    max_length = CharacterGroup._meta.get_field("label").max_length or 100
    if not label or len(label) > max_length:
        raise ServiceError(f"A label needs 1 to {max_length} characters.", code="invalid_label")
    if label != group.label:
        old, group.label = group.label, label
        with transaction.atomic():
            group.save(update_fields=["label", "updated_at"])
            _audit(user, group, CHANGE, f"Renamed “{old}” to “{label}”.")
    return group


def group_merge(*, group: CharacterGroup, other_group_id: int | str, user: AnyUser | None) -> CharacterGroup:
    """Move every appearance of the other group into `group` and delete the other one."""
    user = _require_editor(user, group.story)
    try:
        other_id = int(other_group_id)
    except (TypeError, ValueError):
        raise ServiceError("other_group_id must be a group id.", code="invalid_group") from None
    if other_id == group.pk:
        raise ServiceError("A group cannot be merged with itself.", code="invalid_group")
    with transaction.atomic():
        _lock_story(group.story_id)
        group = _locked_group(group.pk)
        other = _locked_group(other_id)
        if other.story_id != group.story_id:
            raise ServiceError("Both groups must belong to the same story.", code="group_of_another_story")
        if other.kind != group.kind:
            raise ServiceError("A face group and a marked group cannot be merged.", code="invalid_group")
        clip_ids = set(other.appearances.values_list("clip_id", flat=True))
        other.appearances.update(group=group)
        _audit(user, group, CHANGE, f"Merged “{other.label}” (group {other.pk}) into this group.")
        _audit(user, other, DELETION, f"Merged into “{group.label}” (group {group.pk}).")
        other.delete()
        _refresh_groups([group.pk])
        _sync_frame_groups(clip_ids)
    group.refresh_from_db()
    return group


def group_split(*, group: CharacterGroup, appearance_ids: object, user: AnyUser | None) -> CharacterGroup:
    """Move the given appearances of `group` into a new group of their own; returns the new group."""
    user = _require_editor(user, group.story)
    if not isinstance(appearance_ids, list) or not appearance_ids:
        raise ServiceError("Give the appearance ids to split off, as a non-empty list.", code="invalid_appearances")
    try:
        wanted = {int(a) for a in appearance_ids}
    except (TypeError, ValueError):
        raise ServiceError("Appearance ids must be integers.", code="invalid_appearances") from None
    with transaction.atomic():
        _lock_story(group.story_id)
        group = _locked_group(group.pk)
        mine = set(group.appearances.values_list("pk", flat=True))
        foreign = sorted(wanted - mine)
        if foreign:
            raise ServiceError(
                f"Appearance(s) {', '.join(map(str, foreign))} are not in “{group.label}”.",
                code="appearance_of_another_group", details={"appearance_ids": foreign},
            )
        if wanted == mine:
            raise ServiceError(
                "That is every appearance of the group: nothing would be left to split from.",
                code="invalid_appearances",
            )
        number = (CharacterGroup.objects.filter(story_id=group.story_id).aggregate(n=Max("number"))["n"] or 0) + 1
        new = CharacterGroup.objects.create(
            story_id=group.story_id, number=number, label=group_label_for(number), kind=group.kind
        )
        moved = Appearance.objects.filter(pk__in=wanted)
        clip_ids = set(moved.values_list("clip_id", flat=True))
        moved.update(group=new)
        _audit(user, group, CHANGE, f"Split {len(wanted)} appearance(s) off into “{new.label}” (group {new.pk}).")
        _audit(user, new, ADDITION, f"Split off “{group.label}” (group {group.pk}).")
        _refresh_groups([group.pk, new.pk])
        _sync_frame_groups(clip_ids)
    new.refresh_from_db()
    return new
