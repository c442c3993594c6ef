"""Server-rendered pages for stories and clips. Thin: forms collect input, services act, selectors read."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from characters.clips import selectors, services
from characters.clips.forms import ClipUploadForm, StoryForm
from characters.dna import selectors as character_selectors
from characters.groups import selectors as group_selectors
from characters.models import Clip, Story
from common.charts import score_bar_chart
from common.exceptions import ServiceError


def home(request):
    context = {"stories": selectors.story_list_with_covers(), "story_form": StoryForm()}
    return render(request, "characters/home.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def story_create(request):
    form = StoryForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                story = services.story_create(created_by=request.user, **form.cleaned_data)
            except ServiceError as exc:
                form.add_error("title", exc.message)
            else:
                messages.success(request, f"Story “{story.title}” created. Upload its first clip.")
                return redirect(story)
        return render(request, "characters/story_form.html", {"form": form}, status=400)
    return render(request, "characters/story_form.html", {"form": form})


@require_http_methods(["GET", "HEAD", "POST"])
def story_detail(request, pk):
    story = get_object_or_404(Story.objects.select_related("created_by"), pk=pk)
    form = ClipUploadForm()
    refused_name = ""
    status, retry_after = 200, None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        form = ClipUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                clip = services.clip_create(story=story, uploader=request.user, upload=form.cleaned_data["video"])
            except ServiceError as exc:
                refused_name = form.cleaned_data["video"].name
                form.add_error("video", exc.message)
                status, retry_after = exc.status_code, exc.retry_after
            else:
                _flash_uploaded(request, Clip.objects.get(pk=clip.pk))
                return redirect(story)
        else:
            status = 400
    context = {
        "story": story,
        "clips": list(selectors.story_clips(story)),
        "contributors": selectors.story_contributors(story),
        "characters": character_selectors.story_characters(story),  # each with .cover (Character.cover)
        "character_groups": group_selectors.story_group_views(story),
        "form": form,
        "refused_name": refused_name,  # a file input cannot be refilled, so say which file was refused
    }
    response = render(request, "characters/story_detail.html", context, status=status)
    if retry_after is not None:  # over the upload limit: say when, as the API does
        response["Retry-After"] = str(retry_after)
    return response


def _flash_uploaded(request, clip: Clip) -> None:
    """Say what is true of the new clip now: its extraction runs in the background, or (run in the request) is done."""
    if clip.status == Clip.Status.FAILED:
        messages.error(request, f"Clip uploaded, but no frames could be taken from it: {clip.status_message}")
    elif clip.status == Clip.Status.READY:
        count = clip.candidates.count()
        found = f"{count} candidate frame{'s' if count != 1 else ''}" if count else "no person was found in it"
        messages.success(request, f"Clip uploaded and ready: {found}.")
    else:
        messages.success(request, "Clip uploaded; extracting frames — progress below.")


@require_http_methods(["GET", "HEAD"])
def clip_detail(request, pk):
    try:
        clip = selectors.clip_with_candidates(pk)
    except Clip.DoesNotExist:
        raise Http404("No such clip.") from None
    frames = list(clip.candidates.all())
    extraction_seconds = None
    if clip.extraction_started_at and clip.extraction_finished_at:
        extraction_seconds = (clip.extraction_finished_at - clip.extraction_started_at).total_seconds()
    context = {
        "clip": clip,
        "frames": frames,
        "chart": quality_chart(frames, duration=clip.duration_seconds),
        "extraction_seconds": extraction_seconds,
        "character_groups": group_selectors.story_group_views(clip.story, clip_id=clip.pk),
        "can_mark": clip.status == Clip.Status.READY and group_selectors.can_edit_groups(request.user, clip.story),
    }
    if context["can_mark"]:
        context["marked_groups"] = group_selectors.story_marked_groups(clip.story)
        context["marks"] = group_selectors.clip_recent_marks(clip)
    return render(request, "characters/clip_detail.html", context)


def quality_chart(frames, *, duration: float) -> dict:
    """One bar per candidate frame at its time, as tall as its quality (the geometry: common.charts)."""
    frames = sorted(frames, key=lambda f: f.seconds)
    return score_bar_chart(
        [f.quality for f in frames],
        items=frames,
        at=[f.seconds for f in frames],
        span=duration,
        slots_per_second=settings.EXTRACTION_FPS,  # about one bar slot per sampled frame
        width=1000,
        height=220,
    )
