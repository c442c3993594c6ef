"""Reads for stories, clips and candidate frames."""
from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, QuerySet

from .models import CandidateFrame, Clip, Story


def story_list() -> QuerySet[Story]:
    return Story.objects.select_related("created_by").annotate(clip_count=Count("clips")).order_by("-created_at")


def story_contributors(story: Story) -> QuerySet:
    """Everyone who contributed to the story: for now, who uploaded a clip (submitters join later)."""
    return get_user_model().objects.filter(clips__story=story).distinct().order_by("username")


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
