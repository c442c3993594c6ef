"""Server-rendered pages (placeholder; the pages work fills these in)."""
from django.shortcuts import get_object_or_404, render

from . import selectors
from .models import Clip, Story


def story_detail(request, pk):
    story = get_object_or_404(Story, pk=pk)
    return render(request, "characters/story_detail.html", {"story": story, "clips": selectors.story_clips(story)})


def clip_detail(request, pk):
    clip = get_object_or_404(Clip, pk=pk)
    return render(request, "characters/clip_detail.html", {"clip": clip})
