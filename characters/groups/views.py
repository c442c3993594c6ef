"""Pages for editing character groups: rename, merge ("the same as ..."), split. Thin: the services decide
and log; refusals come back as messages on the page the form was on."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from characters.groups import selectors, services
from characters.models import CharacterGroup
from common.exceptions import ServiceError


def _group_or_404(group_id: int) -> CharacterGroup:
    group = CharacterGroup.objects.select_related("story").filter(pk=group_id).first()
    if group is None:
        raise Http404("No such character.")
    return group


def _back(request, group: CharacterGroup, fallback: str | None = None):
    """Where the form was (a page of this site), else the story's "Who is who"."""
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = fallback or f"{group.story.get_absolute_url()}#who-is-who"
    return redirect(target)


@require_http_methods(["GET", "HEAD"])
def group_detail(request, group_id):
    group = _group_or_404(group_id)
    views = selectors.story_group_views(group.story)
    view = next(v for v in views if v.group.pk == group.pk)
    context = {
        "story": group.story,
        "view": view,
        "appearances": selectors.group_appearances(group),
        "merge_choices": [v for v in views if v.group.pk != group.pk and v.group.kind == group.kind],
        "can_edit": selectors.can_edit_groups(request.user, group.story),
    }
    return render(request, "characters/group_detail.html", context)


@login_required
@require_POST
def group_rename(request, group_id):
    group = _group_or_404(group_id)
    old = group.label
    try:
        group = services.group_rename(group=group, user=request.user, label=request.POST.get("label", ""))
    except ServiceError as exc:
        messages.error(request, f"“{old}” was not renamed: {exc.message}")
    else:
        if group.label == old:
            messages.info(request, f"“{old}” already has that name.")
        else:
            messages.success(request, f"“{old}” is now called “{group.label}”.")
    return _back(request, group)


@login_required
@require_POST
def group_merge(request, group_id):
    group = _group_or_404(group_id)
    other_id = request.POST.get("other_group_id", "")
    other = CharacterGroup.objects.filter(pk=other_id).first() if other_id.isdigit() else None
    try:
        if other is None:
            raise ServiceError("Pick the character this one is the same as.", code="invalid_group")
        other_label = other.label
        group = services.group_merge(group=group, other_group_id=other.pk, user=request.user)
    except ServiceError as exc:
        messages.error(request, f"Nothing was merged: {exc.message}")
    else:
        messages.success(request, f"“{other_label}” was merged into “{group.label}”: they are one character now.")
    return _back(request, group)


@login_required
@require_POST
def group_split(request, group_id):
    group = _group_or_404(group_id)
    picked = request.POST.getlist("appearance_ids")
    page = reverse("character-group-detail", args=[group.pk])  # where the split form is
    try:
        if not picked:
            raise ServiceError("Tick the appearances that show another character.", code="invalid_appearances")
        new = services.group_split(group=group, appearance_ids=picked, user=request.user)
    except ServiceError as exc:
        messages.error(request, f"Nothing was split: {exc.message}")
        return _back(request, group, fallback=page)
    count = len(set(picked))
    messages.success(
        request,
        f"{count} appearance{'s' if count != 1 else ''} of “{group.label}” {'is' if count == 1 else 'are'} now "
        f"a character of its own, “{new.label}”. Rename it below.",
    )
    return redirect("character-group-detail", group_id=new.pk)
