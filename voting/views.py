"""Server-rendered pages for submissions and votes. Thin: forms collect input, voting.services decide."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from characters.clips import selectors as story_selectors
from characters.groups import selectors as group_selectors
from characters.models import Story
from common.exceptions import ServiceError

from . import services
from .forms import SubmissionForm
from .models import CharacterSubmission, VotingSession


def _story_page(story: Story) -> str:
    # The top of the page, not an anchor: the message is shown there, and the voting section follows the header.
    return story.get_absolute_url()


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def submission_create(request, story_id):
    story = get_object_or_404(Story, pk=story_id)
    groups = group_selectors.story_group_views(story)
    form = SubmissionForm(request.POST or None, groups=groups)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                submission = services.submission_create(story=story, submitter=request.user, **form.service_arguments())
            except ServiceError as exc:
                form.add_service_error(exc.code, exc.message, exc.details)
                status = exc.status_code
            else:
                messages.success(request, _created_message(submission))
                return redirect(_story_page(story))
        else:
            status = 400
    picked = form.submitted_frame_ids()
    # A character first, then its frames: with a group chosen the picker shows only frames of it.
    chosen = _chosen_group(request, groups)
    shown = {item.frame_id for item in chosen.frames} if chosen else None
    clips = []
    for clip in story_selectors.story_clips(story):
        clip.picker_frames = [f for f in clip.candidates.all() if shown is None or f.pk in shown]
        if clip.picker_frames:
            clips.append(clip)
    context = {
        "story": story,
        "form": form,
        "clips": clips,
        "picked": {fid: position for position, fid in enumerate(picked, start=1)},
        "picked_order": ",".join(map(str, picked)),
        "groups": groups,
        "chosen_group": chosen,
        "max_frames": settings.VOTING_MAX_FRAMES,
        "voting_hours": settings.VOTING_DURATION_HOURS,
    }
    return render(request, "voting/submission_form.html", context, status=status)


def _chosen_group(request, groups):
    raw = request.POST.get("group_id") or request.GET.get("group") or ""
    return next((view for view in groups if str(view.group.pk) == raw), None)


def _created_message(submission: CharacterSubmission) -> str:
    name = submission.character_name or "Your design"
    session = submission.voting_sessions.filter(status=VotingSession.Status.ACTIVE).first()
    if session is not None:
        return (
            f"“{name}” was submitted for {submission.slot_label}, and the vote is open: "
            f"it runs until {session.ends_at:%d %b %Y, %H:%M} UTC."
        )
    return (
        f"“{name}” was submitted for {submission.slot_label}. "
        "The vote opens once another design is submitted for this character."
    )


@require_POST
def vote(request, submission_id):
    submission = get_object_or_404(CharacterSubmission.objects.select_related("story"), pk=submission_id)
    story = submission.story
    if not request.user.is_authenticated:
        messages.info(request, "Log in to vote; you will come back to the story.")
        return redirect_to_login(_story_page(story))
    try:
        result = services.vote_cast(submission_id=submission.pk, voter=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(_story_page(story))
    name = submission.character_name or f"design #{submission.pk}"
    messages.success(
        request,
        f"Your vote for “{name}” is counted ({result.new_vote_count} "
        f"vote{'s' if result.new_vote_count != 1 else ''} so far).",
    )
    return redirect(_story_page(story))


@login_required
@require_POST
def submission_withdraw(request, submission_id):
    submission = get_object_or_404(CharacterSubmission.objects.select_related("story"), pk=submission_id)
    try:
        services.submission_withdraw(submission=submission, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{submission.character_name or f'Design #{submission.pk}'}” was withdrawn.")
    return redirect(_story_page(submission.story))
