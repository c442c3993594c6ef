"""Reads for stories, clips and candidate frames."""
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from characters.models import CandidateFrame, Clip, Story


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
        story.cover = covers.get(story.cover_id)
    return stories


def story_contributors(story: Story) -> QuerySet:
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
