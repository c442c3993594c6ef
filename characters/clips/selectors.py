"""Reads for stories, clips and candidate frames."""

from datetime import datetime
from typing import cast

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from characters.models import CandidateFrame, Clip, Story
from common.stale_work import StaleCutoffs, missing_messages


def story_list() -> QuerySet[Story]:
    return Story.objects.select_related("created_by").annotate(clip_count=Count("clips")).order_by("-created_at")


def story_list_with_covers() -> list[Story]:
    """Stories for the home page, each with `cover`: its best candidate frame, or None. Two queries."""
    best_frame = (
        CandidateFrame.objects.filter(clip__story=OuterRef("pk")).order_by("-quality", "rank", "pk").values("pk")[:1]
    )
    stories = list(story_list().annotate(cover_id=Subquery(best_frame)))
    covers = CandidateFrame.objects.in_bulk([story.cover_id for story in stories if story.cover_id])
    for story in stories:
        story.cover = covers.get(story.cover_id)  # type: ignore[attr-defined]  # for the page, not a field
    return cast(list[Story], stories)  # Stories with a cover_id annotation


def story_contributors(story: Story | int) -> QuerySet:
    """Everyone who contributed to the story (clips, designs...), in the order they joined."""
    return get_user_model().objects.filter(story_links__story=story).order_by("story_links__created_at")


def story_clips(story: Story) -> QuerySet[Clip]:
    return (
        story.clips.select_related("uploader")
        .prefetch_related(Prefetch("candidates", queryset=CandidateFrame.objects.order_by("rank")))
        .order_by("position", "created_at")
    )


def clip_with_candidates(clip_id: int) -> Clip:
    return (
        Clip.objects.select_related("story", "uploader")
        .prefetch_related(Prefetch("candidates", queryset=CandidateFrame.objects.order_by("rank")))
        .get(pk=clip_id)
    )


def _quiet_since(status: str, before: datetime) -> Q:
    """In `status`, with no sign of life since `before` (rows from before heartbeats count their last update)."""
    return Q(status=status) & (Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, updated_at__lt=before))


def stale_clips(cutoffs: StaleCutoffs) -> QuerySet[Clip]:
    """Clips whose extraction nobody is doing: the one rule for "stuck" (see common.stale_work).

    Running with no heartbeat since `running_before` (its worker died: a `kill -9`, a lost machine), queued
    with no sign of life since `queued_before`, or queued since `unsent_before` while the broker holds no
    message for its task (a FLUSHALL, a Redis that lost its data).
    """
    rule = _quiet_since(Clip.Status.EXTRACTING, cutoffs.running_before) | _quiet_since(
        Clip.Status.UPLOADED, cutoffs.queued_before
    )
    if cutoffs.unsent_before is not None:
        waiting = dict(
            Clip.objects.filter(_quiet_since(Clip.Status.UPLOADED, cutoffs.unsent_before))
            .exclude(rule)
            .values_list("pk", "extraction_task_id")
        )
        missing = missing_messages(waiting.values()) or set()
        rule |= Q(pk__in=[pk for pk, task_id in waiting.items() if task_id in missing])
    return Clip.objects.filter(rule)
