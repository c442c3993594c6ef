"""Reads of character groups: the story's characters with their best frames, clips and screen time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet

from characters.models import (
    Appearance,
    CandidateFrame,
    Character,
    CharacterGroup,
    Clip,
    Mark,
    Story,
    StoryContributor,
)
from common.stale_work import StaleCutoffs, missing_messages
from common.typing import AnyUser


def can_edit_groups(user: AnyUser | None, story: Story) -> bool:
    """Contributors of the story (anyone who uploaded, designed...), its creator and staff."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff or user.pk == story.created_by_id:
        return True
    return StoryContributor.objects.filter(story=story, user=user).exists()


@dataclass
class GroupFrame:
    """One candidate frame showing the group's character, and where in it."""

    frame: CandidateFrame
    appearance_id: int | None
    box: dict
    pose: str

    @property
    def frame_id(self) -> int:
        return self.frame.pk


@dataclass
class GroupView:
    group: CharacterGroup
    frames: list[GroupFrame] = field(default_factory=list)  # best first
    clip_ids: list[int] = field(default_factory=list)  # in story order
    seconds_by_clip: dict[int, float] = field(default_factory=dict)  # time on screen, from the tracks
    appearance_ids: list[int] = field(default_factory=list)
    # The character locked from a design of this group (Character.group): new clips of the group show it.
    character: Character | None = None

    @property
    def character_id(self) -> str | None:
        return self.character.character_id if self.character is not None else None

    @property
    def cover(self) -> CandidateFrame | None:
        if self.group.cover_frame is not None:
            return self.group.cover_frame
        return self.frames[0].frame if self.frames else None

    def best_by_pose(self) -> dict[str, GroupFrame]:
        """The best frontal, left and right frame, when there is one."""
        best: dict[str, GroupFrame] = {}
        for item in self.frames:
            best.setdefault(item.pose, item)
        return best

    @property
    def label(self) -> str:
        return self.group.label


def story_group_views(story: Story, *, clip_id: int | None = None) -> list[GroupView]:
    """The story's groups (or only those seen in `clip_id`), each with its frames best first and its locked
    character. Four queries (one when the story has no groups)."""
    groups = list(CharacterGroup.objects.filter(story=story).select_related("cover_frame").order_by("number"))
    if not groups:
        return []
    views = {group.pk: GroupView(group) for group in groups}
    for character in group_characters(views):
        views[character.group_id].character = views[character.group_id].character or character  # type: ignore[index]  # filtered on the groups
    appearances = (
        Appearance.objects.filter(group__story=story)
        .select_related("clip")
        .order_by("clip__position", "clip__created_at", "start_seconds")
    )
    for appearance in appearances:
        view = views[appearance.group_id]  # type: ignore[index]  # the query keeps grouped appearances only
        view.appearance_ids.append(appearance.pk)
        if appearance.clip_id not in view.seconds_by_clip:
            view.clip_ids.append(appearance.clip_id)
            view.seconds_by_clip[appearance.clip_id] = 0.0
        # A track seen in one sample still shows for about the sampling interval; count at least 1 s.
        view.seconds_by_clip[appearance.clip_id] += max(1.0, appearance.duration_seconds)
    frames = CandidateFrame.objects.filter(clip__story=story).order_by("-quality", "rank", "pk")
    for frame in frames:
        seen = set()
        for detection in frame.detections:
            group_id = detection.get("group_id")
            if group_id in views and group_id not in seen:  # one entry per frame: its biggest face of the group
                seen.add(group_id)
                views[group_id].frames.append(
                    GroupFrame(
                        frame=frame,
                        appearance_id=detection.get("appearance_id"),
                        box=detection["box"],
                        pose=detection.get("pose") or frame.pose,
                    )
                )
    result = list(views.values())
    if clip_id is not None:
        result = [view for view in result if clip_id in view.seconds_by_clip]
    return result


def group_characters(group_ids: Iterable[int]) -> list[Character]:
    """The characters locked from these groups, the one to show first: canonical before the rest, then newest.
    (A group normally has one; a re-run vote or a merge of two groups may leave two.)"""
    rank: dict[str, int] = {Character.Status.CANONICAL: 0}
    characters = list(Character.objects.filter(group_id__in=list(group_ids)).exclude(status=Character.Status.ARCHIVED))
    return sorted(characters, key=lambda c: (rank.get(c.status, 1), -c.created_at.timestamp(), -c.pk))


def group_appearances(group: CharacterGroup) -> list[Appearance]:
    """Every appearance (track) of the group in story order, with its clip and best frame: what a split picks from."""
    return list(
        group.appearances.select_related("clip", "best_frame").order_by(
            "clip__position", "clip__created_at", "start_seconds", "pk"
        )
    )


def group_frame_ids(group_id: int) -> set[int]:
    """Ids of the candidate frames that show the group's character."""
    return {
        frame.pk
        for frame in CandidateFrame.objects.filter(clip__appearances__group_id=group_id).distinct()
        if any(d.get("group_id") == group_id for d in frame.detections)
    }


def frame_group_ids(frame: CandidateFrame) -> list[int]:
    """The groups of the faces in a frame, main face first (no duplicates)."""
    ids: list[int] = []
    for detection in frame.detections:
        group_id = detection.get("group_id")
        if group_id is not None and group_id not in ids:
            ids.append(group_id)
    return ids


def mark_group_view(mark: Mark) -> GroupView | None:
    """The group a mark feeds, as the story lists it (None once the group is gone)."""
    if mark.group_id is None:
        return None
    return next((v for v in story_group_views(mark.clip.story) if v.group.pk == mark.group_id), None)


def story_marked_groups(story: Story) -> list[CharacterGroup]:
    """The story's marked groups (a new mark may feed one of them)."""
    return list(CharacterGroup.objects.filter(story=story, kind=CharacterGroup.Kind.MARKED).order_by("number"))


def clip_recent_marks(clip: Clip, limit: int = 10) -> list[Mark]:
    """The clip's latest marks with their groups, newest first."""
    return list(clip.marks.select_related("group").order_by("-created_at", "-pk")[:limit])


def _quiet_since(status: str, before: datetime) -> Q:
    """In `status`, with no sign of life since `before` (marks from before heartbeats count their creation)."""
    return Q(status=status) & (Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, created_at__lt=before))


def stale_marks(cutoffs: StaleCutoffs) -> QuerySet[Mark]:
    """Marks whose run nobody is doing, by the rule clips' extraction follows (common.stale_work): running
    with no heartbeat since `running_before`, queued with no sign of life since `queued_before`, or queued
    since `unsent_before` while the broker holds no message for its task."""
    rule = _quiet_since(Mark.Status.RUNNING, cutoffs.running_before) | _quiet_since(
        Mark.Status.QUEUED, cutoffs.queued_before
    )
    if cutoffs.unsent_before is not None:
        waiting = dict(
            Mark.objects.filter(_quiet_since(Mark.Status.QUEUED, cutoffs.unsent_before))
            .exclude(rule)
            .values_list("pk", "task_id")
        )
        missing = missing_messages(waiting.values()) or set()
        rule |= Q(pk__in=[pk for pk, task_id in waiting.items() if task_id in missing])
    return Mark.objects.filter(rule)
