"""Writes of character groups: who is who across a story's clips. Extraction, the API and the pages call these.

Joining (`clip_record_tracks`, at the end of a clip's extraction, in the transaction that stores its frames)
    The clip's tracks (characters.vision.tracking) become Appearance rows. Each track with a descriptor,
    best first, joins the group whose centroid (the mean of its appearances' descriptors) is nearest, when
    that is under SAME_CHARACTER_DISTANCE (0.55, characters.vision.identity); otherwise it starts a new group
    ("Character A", "Character B"...). A group never takes two tracks of one shot that overlap in time:
    two faces on screen at once are two characters. Only descriptors are compared, so old clips are never
    decoded again. Re-extracting a clip replaces its appearances: the groups only that clip showed wait,
    by their last centroid, until its new tracks have joined, so the same people get their groups (ids,
    labels) back. A group left empty is deleted, unless something was decided about it (a locked
    character, a vote, a design: `_decided`); that one stays with its centroid, and the character's next
    clip joins it again.

Locks
    Every write takes the story's row lock first (`select_for_update` on characters_story), then touches
    groups, appearances and candidate frames of that story. Two clips of one story finishing at once
    therefore join one after the other and cannot both create "Character A" for the same person. Pins
    take the same story lock first, so the order story -> rows is the same everywhere.

Candidate frames
    Each face in a frame's `detections` carries `track` (from extraction), `appearance_id` and `group_id`;
    `_sync_frame_groups` rewrites the last two whenever appearances change group (join, merge, split).

Marks (`mark_create`, `mark_run`: characters that are not faces)
    A contributor draws a box on a frame of a ready clip; a task follows it through its shot and looks for
    it in the story's other ready clips (characters.vision.marking), with views of the followed frames on the
    subject's own pixels (GrabCut: characters.dna.images.marked_subject_view). Each sampled frame it is followed or
    found in becomes an Appearance of the mark's group (kind "marked"); the best few followed frames (and
    the best found frame per other clip) become candidate frames whose detection has `source: "mark"`,
    `mark_id`, `appearance_id` and `group_id`. Re-running a mark replaces what it wrote; a clip's
    re-extraction keeps marked appearances (its candidate frames, marked ones too, are replaced).

Marks' lifecycle (as a clip's extraction: common.stale_work)
    Each queueing gives the mark a new `task_id` (the task's id, so the broker can be asked about it) and
    counts an attempt; only the run carrying the current token starts, beats (`mark_keep_alive`, progress)
    and stores. The beat's sweep (`marks_resume_stale`, task characters.tasks.resume_stale_marks) queues
    a mark whose run went silent again, at most TASKS_MAX_ATTEMPTS times, then fails it saying why.
    `mark_rerun` (contributors; 409 while queued or running, staff may take over a stuck one) and
    `mark_fail` (staff) are what the API and the admin call.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import cast

import numpy as np  # centroids
from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.db.models.expressions import Combinable
from django.utils import timezone

from characters.clips.extraction import score_marked_region
from characters.dna.images import marked_subject_view
from characters.groups.joining import GroupIndex, Span
from characters.groups.selectors import can_edit_groups, stale_marks
from characters.models import (
    Appearance,
    CandidateFrame,
    Character,
    CharacterGroup,
    Clip,
    Mark,
    Story,
    format_timestamp,
    group_label_for,
)
from characters.vision import marking
from characters.vision.jpeg import encode_jpeg
from characters.vision.video import local_video_copy
from common.exceptions import NotFound, ServiceError
from common.stale_work import StaleCutoffs, keep_alive, stale_cutoffs
from common.typing import AnyUser, UserType

MARK_SOURCE = "mark"  # `source` of a marked subject's detection in a candidate frame

logger = logging.getLogger(__name__)


LABEL_MAX: int = CharacterGroup._meta.get_field("label").max_length or 100  # the API reads it from here too


def _lock_story(story_id: int) -> None:
    """Serialise a story's group writes (PostgreSQL row lock; SQLite serialises writers by itself)."""
    Story.objects.select_for_update().filter(pk=story_id).first()


def _audit(user: UserType, obj: CharacterGroup, action_flag: int, message: str) -> None:
    logger.info("character group %s: %s (by %s)", obj.pk, message, getattr(user, "pk", None))
    if user is not None and user.pk is not None:
        LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj], action_flag=action_flag, change_message=message)


def _require_editor(user: AnyUser | None, story: Story, *, doing: str = "rename, merge or split") -> UserType:
    """The user, when they may edit the story's characters (can_edit_groups); else 403."""
    if not can_edit_groups(user, story):
        raise ServiceError(
            f"Only contributors of this story can {doing} its characters.",
            code="forbidden",
            status_code=403,
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
        for key, group in self.groups.items():
            if not self.index.members[key] and group.centroid:  # emptied (a re-extraction, or kept as decided)
                self.index.add_centroid(key, group.centroid)
        self.next_number = (CharacterGroup.objects.filter(story=story).aggregate(n=Max("number"))["n"] or 0) + 1

    def place(self, appearance: Appearance) -> CharacterGroup:
        key = self.index.match(appearance.descriptor, _span(appearance))
        if key is None:
            group = CharacterGroup.objects.create(
                story=self.story,
                number=self.next_number,
                label=group_label_for(self.next_number),
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
        # Only the extraction's own tracks: appearances that marks followed or found stay.
        tracks_of_clip = Appearance.objects.filter(clip=clip, mark__isnull=True)
        touched = set(tracks_of_clip.filter(group__isnull=False).values_list("group_id", flat=True))
        tracks_of_clip.delete()
        best_frame: dict[int, CandidateFrame] = {}
        for frame in sorted(frames, key=lambda f: (-f.quality, f.rank)):
            for detection in frame.detections:
                if "track" in detection:
                    best_frame.setdefault(detection["track"], frame)
        appearances = Appearance.objects.bulk_create(
            [
                Appearance(
                    clip=clip,
                    shot_index=track.shot_index,
                    track_index=track.index,
                    descriptor=track.descriptor,
                    start_seconds=round(track.start_seconds, 3),
                    end_seconds=round(track.end_seconds, 3),
                    samples=track.samples,
                    best_seconds=round(track.best_seconds, 3),
                    best_frame=best_frame.get(track.index),
                    box=track.best_box,
                    pose=track.best_pose,
                    quality=round(max(0.0, track.best_quality), 4),
                )
                for track in tracks
            ]
        )
        # The old tracks are gone, so groups join by their other members; one this clip alone showed by its
        # stored centroid (refreshed below, once the new tracks are in).
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


def _decided(group: CharacterGroup) -> bool:
    """Something people decided rests on the group: a locked character, a vote or a design of it."""
    return group.locked_characters.exists() or group.voting_sessions.exists() or group.submissions.exists()


def _refresh_groups(group_ids: Iterable[int]) -> None:
    """Recompute centroid and cover of each group from its appearances. A group left empty is deleted, unless
    it is `_decided`: then it keeps its centroid (who the character is), so their next clip joins it."""
    for group in CharacterGroup.objects.filter(pk__in=list(group_ids)):
        members = list(group.appearances.order_by("-quality", "pk"))
        if not members:
            if not _decided(group):
                group.delete()
            elif group.cover_frame_id is not None:
                group.cover_frame = None
                group.save(update_fields=["cover_frame", "updated_at"])
            continue
        descriptors = [m.descriptor for m in members if m.descriptor]
        group.centroid = [round(float(v), 6) for v in np.mean(descriptors, axis=0)] if descriptors else []
        group.cover_frame_id = next((m.best_frame_id for m in members if m.best_frame_id), None)
        group.save(update_fields=["centroid", "cover_frame", "updated_at"])


def _sync_frame_groups(clip_ids: Iterable[int]) -> None:
    """Write each face's (and each marked subject's) `appearance_id` and `group_id` into the candidate
    frames of these clips."""
    clip_ids = list(set(clip_ids))
    appearances = list(
        Appearance.objects.filter(clip_id__in=clip_ids).only("pk", "clip_id", "track_index", "group_id", "mark_id")
    )
    by_track = {(a.clip_id, a.track_index): a for a in appearances if a.mark_id is None}
    by_pk = {a.pk: a for a in appearances if a.mark_id is not None}
    changed = []
    for frame in CandidateFrame.objects.filter(clip_id__in=clip_ids).only("pk", "clip_id", "detections"):
        dirty = False
        for detection in frame.detections:
            if detection.get("source") == MARK_SOURCE:
                appearance = by_pk.get(detection.get("appearance_id"))
            elif "track" in detection:
                appearance = by_track.get((frame.clip_id, detection["track"]))
            else:
                continue
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
    if not label or len(label) > LABEL_MAX:
        raise ServiceError(f"A label needs 1 to {LABEL_MAX} characters.", code="invalid_label")
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
        _refuse_merging_two_of(group, other)
        clip_ids = set(other.appearances.values_list("clip_id", flat=True))
        other.appearances.update(group=group)
        other.marks.update(group=group)
        # What was decided about the other one now belongs to the merged character.
        other.locked_characters.update(group=group)
        other.submissions.update(character_group=group)
        other.voting_sessions.update(group=group)
        _audit(user, group, CHANGE, f"Merged “{other.label}” (group {other.pk}) into this group.")
        _audit(user, other, DELETION, f"Merged into “{group.label}” (group {group.pk}).")
        other.delete()
        _refresh_groups([group.pk])
        _sync_frame_groups(clip_ids)
    group.refresh_from_db()
    return group


def _refuse_merging_two_of(group: CharacterGroup, other: CharacterGroup) -> None:
    """Two locked characters, or two open votes, cannot become one group: a person decides which stays."""
    locked = {
        g.pk: list(
            Character.objects.filter(group=g).exclude(status=Character.Status.ARCHIVED).values_list("name", flat=True)
        )
        for g in (group, other)
    }
    if locked[group.pk] and locked[other.pk]:
        raise ServiceError(
            f"“{group.label}” and “{other.label}” are both locked characters ({locked[group.pk][0]}, "
            f"{locked[other.pk][0]}): an admin archives one of them first.",
            code="both_locked",
        )
    # The voting app's open statuses (voting, or a tie waiting for an admin); characters does not import voting.
    open_votes = [g for g in (group, other) if g.voting_sessions.filter(status__in=["active", "tied"]).exists()]
    if len(open_votes) == 2:
        raise ServiceError(
            f"“{group.label}” and “{other.label}” each have an open vote: merge them once one of the votes has ended.",
            code="both_in_vote",
        )


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
                code="appearance_of_another_group",
                details={"appearance_ids": foreign},
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


# --- Marks: characters that are not faces ------------------------------------------------------

MARK_BEST_FRAMES = 3  # followed frames kept as candidate frames (and as views to search other clips with)
MARK_MIN_INSIDE_FOR_FRAME = 0.98  # a candidate frame shows the whole subject, not one cut by the edge
MARK_MIN_SIDE = 16  # px: smaller boxes have too few keypoints to find anything with
MARK_MAX_CLIPS_SEARCHED = 20  # the story's other ready clips, in story order


def _parse_box(box: object, clip: Clip) -> dict:
    try:
        parsed = {k: int(box[k]) for k in ("x", "y", "width", "height")}  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise ServiceError("box needs integer x, y, width and height.", code="invalid_box") from None
    if parsed["width"] < MARK_MIN_SIDE or parsed["height"] < MARK_MIN_SIDE:
        raise ServiceError(
            f"The box must be at least {MARK_MIN_SIDE} px wide and high.", code="invalid_box", details={"box": parsed}
        )
    if (
        parsed["x"] < 0
        or parsed["y"] < 0
        or parsed["x"] + parsed["width"] > clip.width
        or (parsed["y"] + parsed["height"] > clip.height)
    ):
        raise ServiceError(
            f"The box must lie inside the frame ({clip.width} x {clip.height} px).",
            code="invalid_box",
            details={"box": parsed, "frame": {"width": clip.width, "height": clip.height}},
        )
    return parsed


def _new_mark_task_id() -> str:
    return f"mark-{uuid.uuid4().hex}"


def _enqueue_mark(mark_id: int, token: str) -> None:
    """Send the task; its id is the mark's token, so the broker can be asked whether the message is still there."""
    from characters.groups.tasks import follow_mark

    follow_mark.apply_async((mark_id, token), task_id=token)


def _queue_mark(mark_id: int, rows: QuerySet[Mark], *, attempts: int | Combinable) -> int:
    """Queue the mark's run, if it is still in `rows` (a conditional update: 0 when not), with a new token.

    The new token supersedes any message or run still around for the mark: only the task carrying it writes."""
    token = _new_mark_task_id()
    updated = rows.filter(pk=mark_id).update(
        status=Mark.Status.QUEUED,
        progress=0,
        error_message="",
        task_id=token,
        attempts=attempts,
        heartbeat_at=timezone.now(),
        started_at=None,
        finished_at=None,
    )
    if updated:
        transaction.on_commit(lambda: _enqueue_mark(mark_id, token), robust=True)
    return updated


def mark_create(
    *, clip: Clip, user: AnyUser | None, seconds: object, box: object, label: object = "", group_id: object = None
) -> Mark:
    """Mark a character that is not a face: a box on the clip's frame at `seconds`. Feeds a new marked group,
    or the marked group `group_id`; the following and finding run in a task (202 at the API)."""
    story = clip.story
    user = _require_editor(user, story, doing="mark")
    if clip.status != Clip.Status.READY or not clip.width or not clip.height:
        raise ServiceError(
            "The clip's extraction has to finish before a character can be marked in it.",
            code="clip_not_ready",
            status_code=409,
        )
    try:
        at = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ServiceError("seconds must be a number.", code="invalid_seconds") from None
    if not 0 <= at <= clip.duration_seconds:
        raise ServiceError(
            f"seconds must be between 0 and the clip's {clip.duration_seconds:.2f} s.", code="invalid_seconds"
        )
    parsed = _parse_box(box, clip)
    label = (label if isinstance(label, str) else "").strip()
    if len(label) > LABEL_MAX:
        raise ServiceError(f"A label has at most {LABEL_MAX} characters.", code="invalid_label")
    with transaction.atomic():
        _lock_story(story.pk)
        if group_id not in (None, ""):
            try:
                group = _locked_group(int(group_id))  # type: ignore[call-overload]  # checked by the except
            except (TypeError, ValueError):
                raise ServiceError("group_id must be a group id.", code="invalid_group") from None
            if group.story_id != story.pk:
                raise ServiceError("The group belongs to another story.", code="group_of_another_story")
            if group.kind != CharacterGroup.Kind.MARKED:
                raise ServiceError("Marks feed marked groups; this one is joined by faces.", code="invalid_group")
            if label and label != group.label:
                group.label = label
                group.save(update_fields=["label", "updated_at"])
        else:
            number = (CharacterGroup.objects.filter(story=story).aggregate(n=Max("number"))["n"] or 0) + 1
            group = CharacterGroup.objects.create(
                story=story, number=number, label=label or group_label_for(number), kind=CharacterGroup.Kind.MARKED
            )
            _audit(user, group, ADDITION, f"Marked in clip {clip.pk} at {at:.2f} s.")
        token = _new_mark_task_id()
        mark = Mark.objects.create(
            clip=clip,
            group=group,
            created_by=user,
            seconds=round(at, 3),
            box=parsed,
            task_id=token,
            attempts=1,
            heartbeat_at=timezone.now(),
        )
        _audit(user, group, CHANGE, f"Mark {mark.pk}: clip {clip.pk} at {at:.2f} s, box {parsed}.")
        transaction.on_commit(lambda: _enqueue_mark(mark.pk, token), robust=True)
    return mark


def mark_rerun(*, mark: Mark, user: AnyUser | None) -> Mark:
    """Queue a finished or failed mark again; the new run replaces what the last one stored.

    Refused (409) while a run is queued or under way, so two runs never write one mark at once; staff may
    re-run a mark whose run is stuck (selectors.stale_marks: its worker died, its message was lost).
    """
    clip = Clip.objects.select_related("story").get(pk=mark.clip_id)
    user = _require_editor(user, clip.story, doing="re-run marks of")
    if clip.status != Clip.Status.READY:
        raise ServiceError(
            "The clip's extraction has to finish before its marks can be re-run.",
            code="clip_not_ready",
            status_code=409,
        )
    with transaction.atomic():
        queued = _queue_mark(mark.pk, Mark.objects.exclude(status__in=Mark.IN_PROGRESS_STATUSES), attempts=1)
        if not queued and user.is_staff:
            queued = _queue_mark(mark.pk, stale_marks(stale_cutoffs()), attempts=1)
        if queued and mark.group_id and (group := CharacterGroup.objects.filter(pk=mark.group_id).first()):
            _audit(user, group, CHANGE, f"Mark {mark.pk} re-run.")
    if not queued:
        raise ServiceError(
            "This mark is being followed and searched for already; wait for the run to finish."
            + (" It is not stuck: it showed signs of life recently." if user.is_staff else ""),
            code="mark_in_progress",
            status_code=409,
        )
    mark.refresh_from_db()
    return mark


def mark_fail(*, mark: Mark, user: AnyUser | None, reason: str = "") -> Mark:
    """Staff end a queued or running mark as failed (a run they know is dead); a run still going stops
    writing, as its token no longer holds. What an earlier run stored stays."""
    if user is None or not user.is_authenticated or not user.is_staff:
        raise ServiceError("Only staff can mark a mark failed.", code="forbidden", status_code=403)
    message = reason.strip() or f"Marked failed by {user.get_username()}."
    if not Mark.objects.filter(pk=mark.pk, status__in=Mark.IN_PROGRESS_STATUSES).update(
        status=Mark.Status.FAILED, error_message=message, task_id="", finished_at=timezone.now()
    ):
        raise ServiceError(
            "Only a queued or running mark can be marked failed.", code="mark_not_running", status_code=409
        )
    logger.warning("mark %s: marked failed by %s", mark.pk, user.pk)
    mark.refresh_from_db()
    return mark


def mark_interrupted_message(attempts: int) -> str:
    return (
        f"The mark's run was interrupted {attempts} time{'s' if attempts != 1 else ''} (its worker stopped, or its "
        "task was lost) and is not tried again automatically. Re-run it to try again."
    )


def marks_resume_stale(*, cutoffs: StaleCutoffs | None = None, mark_ids: Iterable[int] | None = None) -> dict:
    """Queue again each stuck mark (selectors.stale_marks), at most TASKS_MAX_ATTEMPTS times; then fail it,
    saying why. The beat's sweep and the embedded mode's start-up call this; each mark is taken with a
    conditional update on what was seen, so two sweeps at once queue it once."""
    stale = stale_marks(cutoffs or stale_cutoffs())
    if mark_ids is not None:
        stale = stale.filter(pk__in=list(mark_ids))
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    for pk, status, token, attempts, heartbeat in stale.values_list(
        "pk", "status", "task_id", "attempts", "heartbeat_at"
    ):
        unchanged = Mark.objects.filter(pk=pk, status=status, task_id=token, heartbeat_at=heartbeat)
        if attempts >= settings.TASKS_MAX_ATTEMPTS:
            if unchanged.update(
                status=Mark.Status.FAILED, error_message=mark_interrupted_message(attempts), finished_at=timezone.now()
            ):
                logger.warning("mark %s: run lost %s times, failed", pk, attempts)
                outcome["failed"].append(pk)
        elif _queue_mark(pk, unchanged, attempts=F("attempts") + 1):
            logger.warning("mark %s: run lost while %s, queued again (attempt %s)", pk, status, attempts + 1)
            outcome["requeued"].append(pk)
    return outcome


def mark_heartbeat(*, mark_id: int, token: str = "") -> None:
    """The running mark is alive (only the run holding the mark's token counts)."""
    rows = Mark.objects.filter(pk=mark_id, status=Mark.Status.RUNNING)
    if token:
        rows = rows.filter(task_id=token)
    rows.update(heartbeat_at=timezone.now())


@contextlib.contextmanager
def mark_keep_alive(*, mark_id: int, token: str = "") -> Iterator[None]:
    """Beat for the mark while the block runs, also through steps that report no progress (storing frames)."""
    with keep_alive(lambda: mark_heartbeat(mark_id=mark_id, token=token)):
        yield


class MarkSuperseded(Exception):
    """The mark was queued again or failed by staff while this run worked: it must not write."""


class _MarkProgress:
    def __init__(self, mark_id: int, token: str) -> None:
        self.mark_id, self.token, self.last = mark_id, token, -1

    def __call__(self, percent: float) -> None:
        value = max(0, min(99, int(percent)))
        if value != self.last:
            self.last = value
            rows = Mark.objects.filter(pk=self.mark_id, status=Mark.Status.RUNNING)
            if self.token:
                rows = rows.filter(task_id=self.token)
            rows.update(progress=value, heartbeat_at=timezone.now())  # progress is a sign of life

    def part(self, start: float, width: float) -> Callable[[float], None]:
        """A fraction 0-1 of one step, reported as start..start + width percent."""
        return lambda fraction: self(start + width * fraction)


def mark_run(*, mark_id: int, token: str = "") -> Mark | None:
    """Follow a queued mark through its shot, look for it in the story's other clips, and store what was
    found (replacing what an earlier run of this mark stored). Failing, the mark ends `failed` with the
    reason and nothing half-written.

    With `token` (the task's), it runs only while the mark is queued or running under that token (running:
    the same message handed out again after its worker died); a message that comes back after the mark was
    queued again, finished or failed does nothing.
    """
    rows = Mark.objects.filter(pk=mark_id)
    if token:
        rows = rows.filter(task_id=token, status__in=Mark.IN_PROGRESS_STATUSES)
    else:
        rows = rows.filter(status__in=[Mark.Status.QUEUED, Mark.Status.FAILED])
    now = timezone.now()
    if not rows.update(
        status=Mark.Status.RUNNING, progress=0, error_message="", started_at=now, finished_at=None, heartbeat_at=now
    ):
        logger.info("mark %s: not queued under this task (superseded, done already, or gone); nothing to do", mark_id)
        return Mark.objects.filter(pk=mark_id).first()
    mark = Mark.objects.select_related("clip", "clip__story").get(pk=mark_id)
    progress = _MarkProgress(mark_id, token)
    fps = settings.EXTRACTION_FPS
    try:
        path, is_temp = local_video_copy(mark.clip.playback_video)
        try:
            followed = marking.follow(path, mark.seconds, mark.box, fps=fps, progress=progress.part(0, 30))
            by_index = {s.frame_index: s for s in followed.sightings}
            scored: list[tuple[dict, marking.Sighting, np.ndarray]] = []  # (scores, sighting, frame)
            for index, frame in marking.read_frames(path, list(by_index)):
                sighting = by_index[index]
                scores = score_marked_region(frame, sighting.box)
                sighting.quality = scores["quality"]
                if sighting.marked or sighting.inside >= MARK_MIN_INSIDE_FOR_FRAME:
                    scored.append((scores, sighting, frame))
                    scored.sort(key=lambda item: (not item[1].marked, -item[0]["quality"]))
                    del scored[MARK_BEST_FRAMES + 1 :]  # the marked frame and the best few others
        finally:
            if is_temp:
                path.unlink(missing_ok=True)
        # On the subject's own pixels: more inliers on it, fewer from the set behind it (bench/marks.py).
        views = [v for _, s, frame in scored if (v := marked_subject_view(frame, s.box))]
        kept = sorted(scored, key=lambda item: -item[0]["quality"])[:MARK_BEST_FRAMES]
        progress(35)
        others = list(
            Clip.objects.filter(story_id=mark.clip.story_id, status=Clip.Status.READY)
            .exclude(pk=mark.clip_id)
            .order_by("position", "created_at")[:MARK_MAX_CLIPS_SEARCHED]
        )
        found: list[tuple[Clip, marking.FindResult]] = []
        for n, other in enumerate(others):
            other_path, other_temp = local_video_copy(other.playback_video)
            share = 60 / max(1, len(others))
            try:
                result = marking.find(other_path, views, fps=fps, progress=progress.part(35 + n * share, share))
            finally:
                if other_temp:
                    other_path.unlink(missing_ok=True)
            found.append((other, result))
        _store_mark(mark, followed, kept, found, token=token)
    except MarkSuperseded:
        logger.info("mark %s: queued again or failed while this run worked; its results are dropped", mark_id)
        return Mark.objects.filter(pk=mark_id).first()
    except Exception as exc:
        logger.exception("mark %s failed", mark_id)
        failed = Mark.objects.filter(pk=mark_id, status=Mark.Status.RUNNING)
        if token:
            failed = failed.filter(task_id=token)
        failed.update(
            status=Mark.Status.FAILED, error_message=str(exc) or exc.__class__.__name__, finished_at=timezone.now()
        )
        raise
    mark.refresh_from_db()
    return mark


def _mark_detection(mark: Mark, box: dict, width: int, height: int) -> dict:
    return {
        "box": box,
        "source": MARK_SOURCE,
        "mark_id": mark.pk,
        "group_id": mark.group_id,
        "appearance_id": None,
        "box_relative": {
            "x": round(box["x"] / width, 4),
            "y": round(box["y"] / height, 4),
            "width": round(box["width"] / width, 4),
            "height": round(box["height"] / height, 4),
        },
        "inside_frame": round(marking.inside_fraction(box, width, height), 4),
        "confidence": 0.0,  # no detector saw it: never taken for a face by face rules
    }


def _store_mark(mark: Mark, followed: marking.FollowResult, kept: list, found: list, *, token: str = "") -> None:
    """Write a mark's frames to storage, then swap its rows in one transaction (story lock); files of a
    failed swap are deleted again."""
    from characters.clips.services import THUMBNAIL_MAX_SIDE  # clips.services imports this module

    frames: list[tuple[CandidateFrame, int, float]] = []  # (frame, clip id, seconds)
    stored: list[str] = []
    storage = CandidateFrame._meta.get_field("image").storage

    def new_frame(clip: Clip, sighting: marking.Sighting, image: np.ndarray, scores: dict) -> None:
        h, w = image.shape[:2]
        frame = CandidateFrame(
            clip=clip,
            seconds=round(sighting.seconds, 3),
            timestamp=format_timestamp(sighting.seconds),
            width=w,
            height=h,
            quality=scores["quality"],
            sharpness_score=scores["sharpness_score"],
            lighting_score=scores["lighting_score"],
            face_score=scores["face_score"],
            composition_score=scores["composition_score"],
            full_body=True,
            detections=[_mark_detection(mark, sighting.box, w, h)],
        )
        stem = f"mark{mark.pk}_{int(sighting.seconds * 1000):07d}ms"
        frame.image.save(f"{stem}.jpg", ContentFile(encode_jpeg(image)), save=False)
        stored.append(frame.image.name)
        frame.thumbnail.save(
            f"{stem}_thumb.jpg", ContentFile(encode_jpeg(image, max_side=THUMBNAIL_MAX_SIDE)), save=False
        )
        stored.append(frame.thumbnail.name)
        frames.append((frame, clip.pk, round(sighting.seconds, 3)))

    try:
        for scores, sighting, image in kept:
            new_frame(mark.clip, sighting, image, scores)
        for clip, result in found:
            if result.best_frame is not None:
                best = result.sightings[result.best_index]
                new_frame(clip, best, result.best_frame, score_marked_region(result.best_frame, best.box))
        with transaction.atomic():
            _lock_story(mark.clip.story_id)
            mark = Mark.objects.select_for_update().get(pk=mark.pk)
            if mark.status != Mark.Status.RUNNING or (token and mark.task_id != token):
                raise MarkSuperseded(mark.pk)
            if mark.group_id is None:  # its group was emptied and deleted meanwhile: start a new one
                number = (
                    CharacterGroup.objects.filter(story_id=mark.clip.story_id).aggregate(n=Max("number"))["n"] or 0
                ) + 1
                mark.group = CharacterGroup.objects.create(
                    story_id=mark.clip.story_id,
                    number=number,
                    label=group_label_for(number),
                    kind=CharacterGroup.Kind.MARKED,
                )
            old_frames = list(
                CandidateFrame.objects.filter(
                    clip__story_id=mark.clip.story_id, detections__contains=[{"mark_id": mark.pk}]
                )
            )
            Appearance.objects.filter(mark=mark).delete()
            CandidateFrame.objects.filter(pk__in=[f.pk for f in old_frames]).delete()
            # What other marks of the group already hold is not taken twice (half a sampling interval apart).
            near = 0.5 / float(settings.EXTRACTION_FPS)
            held = [(a.clip_id, a.best_seconds) for a in Appearance.objects.filter(group_id=mark.group_id)]
            last_rank = {
                row["clip_id"]: row["n"] or 0
                for row in CandidateFrame.objects.filter(clip_id__in={c for _, c, _ in frames})
                .values("clip_id")
                .annotate(n=Max("rank"))
            }
            for frame, clip_id, _seconds in frames:  # ranked after the clip's other frames
                last_rank[clip_id] = frame.rank = last_rank.get(clip_id, 0) + 1
                frame.detections[0]["group_id"] = mark.group_id
            CandidateFrame.objects.bulk_create([f for f, _, _ in frames])
            frame_at = {(clip_id, seconds): frame for frame, clip_id, seconds in frames}
            rows: list[Appearance] = []
            entries = [(mark.clip, s, s.quality / 100) for s in followed.sightings]
            for clip, result in found:
                entries += [(clip, s, min(1.0, s.inliers / 200)) for s in result.sightings]
            counters: dict[int, int] = {}
            for clip, sighting, quality in entries:
                seconds = round(sighting.seconds, 3)
                if any(c == clip.pk and abs(t - seconds) < near for c, t in held):
                    continue
                track = counters.get(clip.pk, 0)
                counters[clip.pk] = track + 1
                rows.append(
                    Appearance(
                        group_id=mark.group_id,
                        mark=mark,
                        clip=clip,
                        shot_index=0,
                        track_index=track,
                        start_seconds=seconds,
                        end_seconds=seconds,
                        samples=1,
                        best_seconds=seconds,
                        best_frame=frame_at.get((clip.pk, seconds)),
                        box=sighting.box,
                        quality=round(quality, 4),
                    )
                )
            Appearance.objects.bulk_create(rows)
            by_frame = {a.best_frame.pk: a for a in rows if a.best_frame is not None}
            for frame, _, _ in frames:
                appearance = by_frame.get(frame.pk)
                frame.detections[0]["appearance_id"] = appearance.pk if appearance else None
            CandidateFrame.objects.bulk_update([f for f, _, _ in frames], ["detections"])
            _refresh_groups([mark.group_id])  # type: ignore[list-item]  # set just above
            in_mark_clip = sum(1 for a in rows if a.clip_id == mark.clip_id)
            Mark.objects.filter(pk=mark.pk).update(
                group=mark.group,
                status=Mark.Status.DONE,
                progress=100,
                finished_at=timezone.now(),
                followed_samples=in_mark_clip,
                found_samples=len(rows) - in_mark_clip,
                clips_searched=len(found),
            )
    except BaseException:
        for name in stored:
            storage.delete(name)
        raise
    for frame in old_frames:
        for name in (frame.image.name, frame.thumbnail.name):
            if name:
                storage.delete(name)
