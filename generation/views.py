"""Pages: create a clip with the locked character, follow the job, see the video and its score."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from characters.models import Story
from common.charts import score_bar_chart
from common.exceptions import ServiceError
from marketplace import selectors as marketplace_selectors

from . import payloads, quotes, selectors, services
from .forms import GenerateForm
from .models import GenerationJob


@login_required
def create(request, story_id: int):
    story = get_object_or_404(Story, pk=story_id)
    # The same access rule the service applies when the job is created (it spends the license use then).
    usable = marketplace_selectors.usable_characters(request.user, story)
    form = GenerateForm(request.POST or None, request.FILES or None, story=story, usable=usable)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.generation_create(
                requester=request.user,
                story=story,
                prompt=data["prompt"],
                duration=data["duration"],
                aspect_ratio=data["aspect_ratio"],
                use_pins=form.use_pins,
                with_audio=data["with_sound"],
                character_id=data.get("character_id") or None,
                model_id=data.get("model_id") or None,
                video_element_pin=data.get("video_element_pin"),
                style_reference_kinds=data.get("style_reference_kinds") or [],
                style_images=data.get("style_images") or [],
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            _flash_created(request, GenerationJob.objects.get(pk=job.pk))
            return redirect(job)
    # What the story's default request with the character picked would run: the banner, the pin choice and
    # the cost follow from it.
    quote = quotes.generation_quote(story=story, prompt="scene", duration=5, character_id=form.chosen_character_id())
    context = {
        "story": story,
        "form": form,
        "pins": quote.available_pins,
        "character": quote.character,
        "style_character": quote.dna_character,
        "quote": quote,
        "style_choices": quotes.style_choices(quote.dna_character),
        "max_inputs": payloads.MAX_INPUTS,
    }
    return render(request, "generation/create.html", context, status=400 if request.method == "POST" else 200)


def _flash_created(request, job: GenerationJob) -> None:
    """Say what is true of the job now: queued in the background, or (run in the request) finished."""
    if job.status == GenerationJob.Status.COMPLETE:
        messages.success(request, f"Generation {job.job_id} is ready.")
    elif job.is_finished:
        messages.error(request, f"Generation {job.job_id} {job.get_status_display().lower()}: {job.error}")
    else:
        messages.success(request, f"Generation {job.job_id} queued; its progress is below.")


@login_required
def job_detail(request, job_id: str):
    job = selectors.job_visible_to(request.user, job_id)
    if job is None:
        raise Http404("No such generation job.")
    if services.generation_refresh(job=job) is not job:
        job = GenerationJob.objects.select_related("story", "character").get(pk=job.pk)
    chart = (
        score_bar_chart(
            [f["score"] for f in job.frame_scores], labels=[f"{f['seconds']:.1f}s" for f in job.frame_scores]
        )
        if job.frame_scores
        else None
    )
    return render(request, "generation/job_detail.html", {"job": job, "chart": chart})
