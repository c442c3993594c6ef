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
from characters.models import Clip, ReferenceImage, Story
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
        "characters": _with_cover(character_selectors.story_characters(story)),
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
        messages.error(request, f"Clip uploaded, but no frames could be taken from it: {clip.error_message}")
    elif clip.status == Clip.Status.READY:
        count = clip.candidates.count()
        found = f"{count} candidate frame{'s' if count != 1 else ''}" if count else "no person was found in it"
        messages.success(request, f"Clip uploaded and ready: {found}.")
    else:
        messages.success(request, "Clip uploaded; extracting frames — progress below.")


def _with_cover(characters) -> list:
    """Each character with `cover`: its face close-up, else its first reference image (or None)."""
    characters = list(characters)
    for character in characters:
        references = list(character.reference_images.all())
        character.cover = next(
            (r for r in references if r.kind == ReferenceImage.Kind.FACE_CLOSEUP), references[0] if references else None
        )
    return characters


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


def quality_chart(frames, *, duration: float, width: int = 1000, height: int = 220) -> dict:
    """Geometry of an SVG bar chart: one bar per candidate at its time, as tall as its quality."""
    left, right, top, bottom = 36, width - 12, 12, height - 26
    plot_w, plot_h = right - left, bottom - top
    span = max([duration, *(f.seconds for f in frames), 1.0])
    # About one bar slot per sampled frame, so neighbouring seconds never overlap.
    slot = plot_w / max(span * settings.EXTRACTION_FPS, 1)
    bar_w = round(min(max(slot * 0.6, 3), 28), 1)
    bars = []
    for frame in sorted(frames, key=lambda f: f.seconds):
        x_centre = left + frame.seconds / span * plot_w
        bar_h = max(plot_h * frame.quality / 100, 1)
        x = min(max(x_centre - bar_w / 2, left), right - bar_w)
        bars.append(
            {"frame": frame, "x": round(x, 1), "y": round(bottom - bar_h, 1), "width": bar_w, "height": round(bar_h, 1)}
        )
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60) if span / s <= 10), 60)
    x_ticks = [
        {"x": round(left + t / span * plot_w, 1), "label": f"{t // 60}:{t % 60:02d}"}
        for t in range(0, int(span) + 1, step)
    ]
    y_ticks = [{"y": round(bottom - plot_h * v / 100, 1), "value": v} for v in (0, 25, 50, 75, 100)]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "bottom": bottom,
        "y_label_x": left - 6,
        "axis_label_y": height - 8,
        "bars": bars,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
    }
