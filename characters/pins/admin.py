"""The pin panel: admin pages where staff scrub a clip frame by frame and pin characters (@Element1..N).

Built as Django's admin builds its own pages: URLs from the Clip and Story admins' `get_urls`, wrapped in
`admin_site.admin_view`, a permission check, `each_context`, and templates extending `admin/base_site.html`.
Every write goes through `characters.pins.services`, which also records it in the admin log.
"""

from __future__ import annotations

from functools import partial, update_wrapper
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from characters.models import PIN_MAX_ANGLES, Character, Clip, PinAngle, PinnedCharacter, PinningSettings, Story
from characters.pins import frames, selectors, services
from common.admin_html import thumbnail
from common.exceptions import ServiceError
from common.http import safe_next_url

PREVIEW_CACHE_SECONDS = 300


# --- The panel's form -----------------------------------------------------------------------------------


class PinActionForm(forms.Form):
    """One submit button says what to do and with which slot or pin: `pin:N`, `angle:PIN_ID`, each with
    `-last` for the clip's stored last frame (e.g. `pin-last:2`)."""

    do = forms.RegexField(regex=r"^(pin|angle)(-last)?:\d+$")
    frame_timestamp = forms.FloatField(required=False)
    label = forms.CharField(max_length=PinnedCharacter._meta.get_field("label").max_length, required=False)
    character = forms.ModelChoiceField(queryset=Character.objects.none(), required=False)
    confirm_other_character = forms.BooleanField(required=False)

    def __init__(self, *args, story: Story, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["character"].queryset = Character.objects.filter(story=story)  # type: ignore[attr-defined]  # a ModelChoiceField

    @property
    def action(self) -> tuple[str, bool, int]:
        """(pin | angle, from the last frame?, element index or pin id)."""
        verb, target = self.cleaned_data["do"].split(":")
        return verb.removesuffix("-last"), verb.endswith("-last"), int(target)


def _redirect_back(request, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_next_url(request) or fallback)


def _disabled_page(model_admin, request, title: str):
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "message": services.DISABLED_MESSAGE,
        "can_change_settings": request.user.has_perm("characters.change_pinningsettings"),
    }
    return TemplateResponse(request, "admin/characters/pin/disabled.html", context, status=403)


def _require_pin_permission(request) -> None:
    if not selectors.can_pin(request.user):
        raise PermissionDenied


def _panel_time(request, clip: Clip) -> float:
    """Where the panel opens: `?t=` (after a pin), else the clip's best candidate frame, else 0."""
    try:
        return frames.checked_timestamp(clip, request.GET["t"])
    except (KeyError, ServiceError):
        pass
    best = min(clip.candidates.all(), key=lambda f: f.rank, default=None)
    return best.seconds if best else 0.0


# --- Views ---------------------------------------------------------------------------------------------


def pin_panel_view(model_admin, request, object_id):
    """The panel. From a clip (`object_id` is a clip) or a story (`?clip=` picks one of its clips)."""
    _require_pin_permission(request)
    from_story = model_admin.model is Story
    if from_story:
        story = get_object_or_404(Story, pk=unquote(object_id))
        clips = list(story.clips.order_by("position", "created_at"))
        clip = next((c for c in clips if str(c.pk) == request.GET.get("clip")), clips[0] if clips else None)
    else:
        clip = get_object_or_404(Clip.objects.select_related("story"), pk=unquote(object_id))
        story = clip.story
        clips = list(story.clips.order_by("position", "created_at"))
    title = f"Pin characters · {story.title}"
    try:
        config = services.require_pinning_enabled()
    except services.PinningDisabled:
        return _disabled_page(model_admin, request, title)
    here = request.path + (f"?clip={clip.pk}" if from_story and clip else "")

    if request.method == "POST":
        if clip is None:
            raise Http404("This story has no clip to pin from.")
        form = PinActionForm(request.POST, story=story)
        if not form.is_valid():
            messages.error(
                request,
                "The pin request was not understood: "
                + "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()),
            )
            return HttpResponseRedirect(here)
        verb, from_last_frame, target = form.action
        timestamp = None if from_last_frame else form.cleaned_data["frame_timestamp"]
        if not from_last_frame and timestamp is None:
            messages.error(request, "Pick a time in the clip first.")
            return HttpResponseRedirect(here)
        try:
            if verb == "pin":
                pin = services.pin_create(
                    story=story,
                    source_clip=clip,
                    element_index=target,
                    label=form.cleaned_data["label"],
                    frame_timestamp=timestamp,
                    character=form.cleaned_data["character"],
                    user=request.user,
                )
                messages.success(request, f"Pinned {pin.element_tag}{' · ' + pin.label if pin.label else ''}.")
            else:
                pin = selectors.pin_get(target)
                angle = services.pin_add_angle(
                    pin=pin,
                    source_clip=clip,
                    frame_timestamp=timestamp,
                    user=request.user,
                    confirm_other_character=form.cleaned_data["confirm_other_character"],
                )
                messages.success(request, f"Added angle {angle.position} to {pin}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        query = {"clip": clip.pk} if from_story else {}
        if timestamp is not None:
            query["t"] = f"{timestamp:.3f}"
        return HttpResponseRedirect(request.path + (f"?{urlencode(query)}" if query else ""))

    pins = list(selectors.story_pins(story))
    free = selectors.free_element_indexes(story, config)
    slots = [
        {"index": n, "pin": next((p for p in pins if p.element_index == n), None)}
        for n in range(1, config.max_elements_per_season + 1)
    ]
    extra_pins = [p for p in pins if p.element_index > config.max_elements_per_season]
    candidates = sorted(clip.candidates.all(), key=lambda f: f.seconds) if clip else []
    start = _panel_time(request, clip) if clip else 0.0
    too_small = bool(clip and clip.width and min(clip.width, clip.height) < frames.ELEMENT_IMAGE_MIN_SIDE)
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": str(clip) if clip else None,
        "opts": opts,
        "from_story": from_story,
        "story": story,
        "clip": clip,
        "clips": clips,
        "candidates": candidates,
        "pins": pins,
        "slots": slots,
        "extra_pins": extra_pins,
        "free_indexes": free,
        "config": config,
        "max_angles": PIN_MAX_ANGLES,
        "characters": Character.objects.filter(story=story).order_by("name"),
        "start_time": start,
        "too_small": too_small,
        "min_side": frames.ELEMENT_IMAGE_MIN_SIDE,
        "here": here,
        "panel_config": {
            "fps": clip.fps if clip else 0,
            "duration": clip.duration_seconds if clip else 0,
            "frameCount": clip.frame_count if clip else 0,
            "start": start,
            "previewUrl": reverse("admin:characters_clip_pin_preview", args=[clip.pk]) if clip else "",
        },
        "story_change_url": reverse("admin:characters_story_change", args=[story.pk]),
        "clip_change_url": reverse("admin:characters_clip_change", args=[clip.pk]) if clip else "",
    }
    return TemplateResponse(request, "admin/characters/pin/panel.html", context)


def pin_preview_view(model_admin, request, object_id):
    """The exact JPEG that pinning this clip at `?t=` (or `?t=last`) would store; errors as the API's JSON."""
    _require_pin_permission(request)
    clip = get_object_or_404(Clip, pk=unquote(object_id))
    raw = request.GET.get("t", "last")
    try:
        services.require_pinning_enabled()
        frame = frames.pin_frame_for(clip=clip, frame_timestamp=None if raw == "last" else raw)
    except ServiceError as exc:
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        return JsonResponse(body, status=exc.status_code)
    response = HttpResponse(frame.jpeg, content_type="image/jpeg")
    response["Cache-Control"] = f"private, max-age={PREVIEW_CACHE_SECONDS}"
    response["X-Frame-Width"], response["X-Frame-Height"] = str(frame.width), str(frame.height)
    response["X-Frame-Index"] = "" if frame.frame_index is None else str(frame.frame_index)
    response["X-Frame-Seconds"] = "" if frame.seconds is None else f"{frame.seconds:.3f}"
    return response


def _panel_url_for(pin: PinnedCharacter) -> str:
    return reverse("admin:characters_story_pin", args=[pin.story_id])


def pin_set_active_view(model_admin, request, object_id):
    _require_pin_permission(request)
    pin = get_object_or_404(PinnedCharacter, pk=unquote(object_id))
    active = request.POST.get("is_active") == "1"
    try:
        services.pin_update(pin=pin, user=request.user, is_active=active)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{pin} is {'active again' if active else 'deactivated'}.")
    return _redirect_back(request, _panel_url_for(pin))


def pin_remove_angle_view(model_admin, request, object_id, position):
    _require_pin_permission(request)
    angle = get_object_or_404(PinAngle.objects.select_related("pin"), pin_id=unquote(object_id), position=position)
    try:
        services.pin_remove_angle(angle=angle, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed angle {position} of {angle.pin}.")
    return _redirect_back(request, _panel_url_for(angle.pin))


def pin_delete_view(model_admin, request, object_id):
    """Delete a pin after a confirmation page (the admin's delete link lands here too)."""
    _require_pin_permission(request)
    pin = get_object_or_404(PinnedCharacter.objects.select_related("story"), pk=unquote(object_id))
    if request.method == "POST":
        try:
            services.pin_delete(pin=pin, user=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Deleted {pin} and its images.")
        return _redirect_back(request, _panel_url_for(pin))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Delete {pin}?",
        "opts": PinnedCharacter._meta,
        "pin": pin,
        "angles": list(pin.angles.all()),
        "next": request.GET.get("next", ""),
        "panel_url": _panel_url_for(pin),
    }
    return TemplateResponse(request, "admin/characters/pin/delete_confirmation.html", context)


def _wrap(model_admin, view, *, post_only: bool = False, cacheable: bool = False):
    """`admin_site.admin_view` (staff login, CSRF, no caching unless asked) around a view given the model admin."""
    bound = update_wrapper(partial(view, model_admin), view)
    return model_admin.admin_site.admin_view(require_POST(bound) if post_only else bound, cacheable=cacheable)


def clip_pin_urls(model_admin) -> list:
    """For ClipAdmin.get_urls: the panel and its preview."""
    return [
        path("<path:object_id>/pin/", _wrap(model_admin, pin_panel_view), name="characters_clip_pin"),
        # A frame at a time never changes (clip files are never rewritten): the browser may keep it a while.
        path(
            "<path:object_id>/pin/preview/",
            _wrap(model_admin, pin_preview_view, cacheable=True),
            name="characters_clip_pin_preview",
        ),
    ]


def story_pin_urls(model_admin) -> list:
    """For StoryAdmin.get_urls: the panel choosing among the story's clips."""
    return [path("<path:object_id>/pin/", _wrap(model_admin, pin_panel_view), name="characters_story_pin")]


# --- Model admins ----------------------------------------------------------------------------------------


@admin.register(PinnedCharacter)
class PinnedCharacterAdmin(admin.ModelAdmin):
    """Pins are made in the pin panel; here they are listed, switched on and off, and opened in the panel."""

    list_display = (
        "element_tag_display",
        "label",
        "story",
        "frontal",
        "angle_count",
        "usage_count",
        "is_active",
        "pinned_by",
        "created_at",
    )
    list_display_links = ("element_tag_display", "label")
    list_filter = ("is_active", ("story", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("story", "pinned_by")
    search_fields = ("label", "story__title")
    ordering = ("story", "element_index")
    actions = ["deactivate", "reactivate"]
    fields = (
        "story",
        "element_tag_display",
        "label",
        "frontal_preview",
        "angles_preview",
        "source",
        "character",
        "usage_count",
        "is_active",
        "pinned_by",
        "created_at",
        "updated_at",
        "panel_link",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("angles")

    def has_add_permission(self, request):
        return False  # pins come from a clip frame: the pin panel

    def has_change_permission(self, request, obj=None):
        return selectors.can_pin(request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletion goes through the pin service and its confirmation page
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        return HttpResponseRedirect(reverse("admin:characters_pinnedcharacter_unpin", args=[object_id]))

    def get_urls(self):
        return [
            path("<path:object_id>/unpin/", _wrap(self, pin_delete_view), name="characters_pinnedcharacter_unpin"),
            path(
                "<path:object_id>/active/",
                _wrap(self, pin_set_active_view, post_only=True),
                name="characters_pinnedcharacter_active",
            ),
            path(
                "<path:object_id>/angles/<int:position>/remove/",
                _wrap(self, pin_remove_angle_view, post_only=True),
                name="characters_pinnedcharacter_remove_angle",
            ),
        ] + super().get_urls()

    @admin.display(description="Element", ordering="element_index")
    def element_tag_display(self, pin):
        return pin.element_tag

    @admin.display(description="Frontal")
    def frontal(self, pin):
        return thumbnail(pin.frontal_image, height=48)

    @admin.display(description="Angles")
    def angle_count(self, pin):
        return f"{len(pin.angles.all())}/{PIN_MAX_ANGLES}"

    @admin.display(description="Frontal image")
    def frontal_preview(self, pin):
        return thumbnail(pin.frontal_image, height=200)

    @admin.display(description="Angles")
    def angles_preview(self, pin):
        return (
            format_html_join(
                " ", "{}", ((thumbnail(a.image, f"Angle {a.position}", height=96),) for a in pin.angles.all())
            )
            or "—"
        )

    @admin.display(description="Source")
    def source(self, pin):
        if pin.source_clip_id is None:
            return "—"
        seconds = pin.source_frame_seconds
        when = "" if seconds is None else f" at {frames.format_precise_timestamp(seconds)}"
        url = reverse("admin:characters_clip_change", args=[pin.source_clip_id])
        return format_html('<a href="{}">Clip {}</a>{}', url, pin.source_clip_id, when)

    @admin.display(description="Pin panel")
    def panel_link(self, pin):
        return format_html('<a class="button" href="{}">Open the pin panel</a>', _panel_url_for(pin))

    def _set_active(self, request, queryset, active: bool):
        done = 0
        for pin in queryset:
            try:
                services.pin_update(pin=pin, user=request.user, is_active=active)
            except ServiceError as exc:
                self.message_user(request, f"{pin}: {exc.message}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"{done} pin(s) {'reactivated' if active else 'deactivated'}.", messages.SUCCESS)

    @admin.action(description="Deactivate selected pins", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Reactivate selected pins", permissions=["change"])
    def reactivate(self, request, queryset):
        self._set_active(request, queryset, True)


@admin.register(PinningSettings)
class PinningSettingsAdmin(admin.ModelAdmin):
    """The `character_pinning` flag: one row, edited in place."""

    fields = ("enabled", "max_elements_per_season", "auto_switch_model", "cost_premium_warning", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        config = selectors.pinning_settings()
        return HttpResponseRedirect(reverse("admin:characters_pinningsettings_change", args=[config.pk]))
