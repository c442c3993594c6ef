"""Quotes: what a generation request would send and cost, before anything is spent.

The create page, the quote API and `services.generation_create` all go through `generation_quote`: the story's
pins and the character become the plan's inputs (`prompts.plan_generation`, pure), and the quote says which model
and provider make the clip, what it costs and which pins it sends. `generation_target_story` is the story a
request that names none (the seed's body) is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import default_storage

from characters.dna.services import reference_url
from characters.models import Character, Clip, PinnedCharacter, ReferenceImage, Story
from characters.pins import selectors as pin_selectors
from common.exceptions import NotFound, ServiceError
from common.typing import AnyUser
from marketplace import services as marketplace

from . import payloads, prompts
from .providers import PROVIDERS, offered_models, price_note, provider_for
from .style_images import checked_style_upload, style_image_name

MODEL_SHEET = "model_sheet"
# A quote has no job yet: an upload's URL shows this where the job's id will be (the job's arguments have it).
QUOTE_JOB_PLACEHOLDER = "JOB_ID"


class GenerationError(ServiceError):
    code = "generation_error"


def _absolute(url: str) -> str:
    return url if urlsplit(url).scheme else settings.SITE_URL.rstrip("/") + url


def _pin_inputs(pins: list[PinnedCharacter]) -> list[prompts.PinInput]:
    return [
        prompts.PinInput(
            pin_id=pin.pk,
            element_index=pin.element_index,
            label=pin.label,
            frontal_url=_absolute(pin.frontal_image.url),
            angle_urls=tuple(_absolute(angle.image.url) for angle in pin.angles.all()),
        )
        for pin in pins
    ]


def _playable_size(clip: Clip) -> int | None:
    """Bytes of the clip's playable copy (the upload's recorded size when they are the same file), None if the
    storage cannot say."""
    if clip.playable_video.name == clip.video.name and clip.size_bytes:
        return clip.size_bytes
    try:
        return default_storage.size(clip.playable_video.name)
    except (OSError, NotImplementedError):
        return None


def _clip_video(clip: Clip | None, *, check_size: bool) -> tuple[str, str]:
    """The absolute URL of the clip's playable copy to send as a video element, or "" and why it cannot go.
    `check_size` reads the copy's size from storage (done for the pin asked for only)."""
    if clip is None:
        return "", "its source clip is no longer stored"
    if clip.status != Clip.Status.READY or not clip.playable_video:
        return "", "its source clip has no playable copy yet (it is still being processed, or failed)"
    problem = payloads.video_element_problem(
        seconds=clip.duration_seconds,
        width=clip.width,
        height=clip.height,
        size_bytes=_playable_size(clip) if check_size else None,
    )
    if problem:
        return "", problem
    return _absolute(clip.playable_video.url), ""


def _with_clip_videos(
    inputs: list[prompts.PinInput], pins: list[PinnedCharacter], asked: int | None
) -> list[prompts.PinInput]:
    """The pins' inputs with what each would send as a video element (its source clip), in one query."""
    clips = Clip.objects.in_bulk({p.source_clip_id for p in pins if p.source_clip_id})
    out = []
    for pin_input, pin in zip(inputs, pins, strict=True):
        url, problem = _clip_video(clips.get(pin.source_clip_id), check_size=pin.element_index == asked)
        out.append(replace(pin_input, video_url=url, video_problem=problem))
    return out


def _character_input(character: Character) -> prompts.CharacterInput:
    kinds = {ref.kind for ref in character.reference_images.all() if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE}
    return prompts.CharacterInput(
        character_id=character.character_id,
        style_description=character.style_description,
        locked_features=tuple(character.locked_features),
        palette=dict(character.color_palette),
        reference_urls={kind: reference_url(character, kind) for kind in kinds},
    )


def _story_character(story: Story | None, character_id: str | None, group_id: int | None = None) -> Character | None:
    """The character asked for (canonical); else the story's locked character of the character group asked for
    (`group_id`); else the story's own latest canonical character."""
    # With its story: the license check asks who contributed to it.
    canonical = (
        Character.objects.filter(status=Character.Status.CANONICAL)
        .select_related("story")
        .prefetch_related("reference_images")
    )
    if character_id:
        character = canonical.filter(character_id=character_id).first()
        if character is None:
            raise NotFound(f"There is no canonical character '{character_id}'.")
        return character
    if group_id is not None:
        character = canonical.filter(story=story, group_id=group_id).order_by("-created_at").first()
        if character is None:
            locked = ", ".join(
                f"{c.group.label} (group {c.group_id}): {c.name}"
                for c in canonical.filter(story=story, group__isnull=False).select_related("group").order_by("group_id")
                if c.group is not None
            )
            raise GenerationError(
                f"Character group {group_id} of this story has no locked character yet"
                + (f"; the story's locked characters are {locked}." if locked else "; the story has none.")
                + " Vote one in, or leave group_id out.",
                code="invalid_request",
            )
        return character
    return canonical.filter(story=story).order_by("-created_at").first()


def generation_target_story(*, requester: AnyUser | None, character_id: str | None) -> Story:
    """The story a request that names no story_id is for (the seed's body): the character's own story.

    Only when the requester may generate there without a license (they created the character or
    contributed to its story); anyone else is licensing the character for a story of their own, which the
    request must name (400, saying so).
    """
    if not character_id:
        raise GenerationError(
            "Give story_id (the story the clip is for), or the character_id of a locked character.",
            code="invalid_request",
        )
    character = cast(Character, _story_character(None, character_id))  # with an id: found, or NotFound
    access = marketplace.license_check_access(requester, character, character.story)
    if access.allowed and access.reason in ("creator", "story_contributor"):
        return character.story
    raise GenerationError(
        f"Give story_id: the story the clip is for. {character.name} belongs to story {character.story_id} "
        f'("{character.story.title}"), which you have not contributed to; to use the character in one of your '
        f"stories, send that story's id (a license is needed).",
        code="story_required",
        details={"character_story_id": character.story_id},
    )


def _pin_characters(pins: list[PinnedCharacter]) -> list[Character]:
    """The canonical characters a reference-to-video request shows: those linked to the pins it sends, in element
    order, each once. Pins that link no character add none."""
    by_pk = {
        c.pk: c
        for c in Character.objects.filter(
            pk__in={p.character_id for p in pins if p.character_id}, status=Character.Status.CANONICAL
        )
        .select_related("story")
        .prefetch_related("reference_images")
    }
    shown: list[Character] = []
    for pin in pins:
        character = by_pk.get(pin.character_id) if pin.character_id else None
        if character is not None and character not in shown:
            shown.append(character)
    return shown


def style_reference_kinds() -> list[str]:
    """What `style_reference_kinds` may name: a DNA reference kind (one per character) or the model sheet."""
    return [k for k in ReferenceImage.Kind.values if k != ReferenceImage.Kind.EXTRA_ANGLE] + [MODEL_SHEET]


@dataclass(frozen=True)
class StyleReference:
    """A style image as the job records it: what it is, the URL sent, and the stored file it is (for the
    offline preview and for cleaning up); `jpeg` is an upload's bytes, written when the job is created."""

    source: str  # "dna" or "upload"
    kind: str
    label: str
    url: str
    name: str
    jpeg: bytes = b""

    def as_input(self) -> prompts.StyleImageInput:
        return prompts.StyleImageInput(url=self.url, label=self.label, source=self.source, kind=self.kind)


def style_choices(character: Character | None) -> list[dict]:
    """The character's images a contributor may pick as style references (the create page's thumbnails)."""
    if character is None:
        return []
    refs = {r.kind: r for r in character.reference_images.all() if r.kind != ReferenceImage.Kind.EXTRA_ANGLE}
    choices = [
        {"kind": kind, "label": ReferenceImage.Kind(kind).label, "thumbnail": refs[kind].image.url}
        for kind in sorted(refs)
    ]
    if character.model_sheet:
        choices.append({"kind": MODEL_SHEET, "label": "Model sheet", "thumbnail": character.model_sheet.url})
    return choices


def _dna_style_references(character: Character | None, kinds: list[str]) -> list[StyleReference]:
    if not kinds:
        return []
    if character is None:
        raise GenerationError(
            "Style references from the DNA need a character: give the character_id of a locked character.",
            code="invalid_request",
        )
    refs = {r.kind: r for r in character.reference_images.all() if r.kind != ReferenceImage.Kind.EXTRA_ANGLE}
    available = sorted(refs) + ([MODEL_SHEET] if character.model_sheet else [])
    chosen = []
    for kind in dict.fromkeys(kinds):  # each once, in the order asked
        if kind == MODEL_SHEET and character.model_sheet:
            url, name = _absolute(character.model_sheet.url), character.model_sheet.name
        elif kind in refs:
            url, name = reference_url(character, kind), refs[kind].image.name
        else:
            raise GenerationError(
                f"{character.name} has no {kind.replace('_', ' ')} to use as a style reference; it has: "
                f"{', '.join(available) or 'none'}.",
                code="invalid_request",
                details={"available_kinds": available},
            )
        label = f"{character.name}'s {'model sheet' if kind == MODEL_SHEET else kind.replace('_', ' ')}"
        chosen.append(StyleReference(source="dna", kind=kind, label=label, url=url, name=name))
    return chosen


def _uploaded_style_references(story: Story, job_id: str, uploads: list, first_position: int) -> list[StyleReference]:
    chosen = []
    for position, upload in enumerate(uploads, start=first_position):
        checked = checked_style_upload(upload)  # a 400 naming the file, before anything is stored
        name = style_image_name(story.pk, job_id, position)
        chosen.append(
            StyleReference(
                source="upload",
                kind="",
                label=f"upload {checked.original_name}",
                url=_absolute(default_storage.url(name)),
                name=name,
                jpeg=checked.jpeg,
            )
        )
    return chosen


@dataclass(frozen=True)
class Quote:
    plan: prompts.GenerationPlan
    character: Character | None  # the job's character: the one asked for, else the first one shown
    pins: list[PinnedCharacter]  # the pins the plan sends
    available_pins: list[PinnedCharacter]  # the story's active pins, sent or not
    auto_switch: bool  # active pins switch a request to reference-to-video unless it opts out
    reference_cost_usd: Decimal | None = None  # what the pins would cost (shown when they are only offered)
    provider: str = "fal"  # who makes the clip: the model's provider, or "offline"
    # Every character the clip is attributed to (license check and use, clips_used): with pins, those linked to
    # the pins really sent (and the one asked for); otherwise the job's character.
    characters: tuple[Character, ...] = ()
    style_references: tuple[StyleReference, ...] = ()  # the style images sent, @Image1 first
    dna_character: Character | None = None  # whose DNA images `style_reference_kinds` name (the create page's picks)
    # Each active pin as a possible video element: {element_index, label, usable, reason}.
    video_choices: list[dict] = field(default_factory=list)

    @property
    def video_element(self) -> dict | None:
        """The pin this request sends as a video (its source clip's playable copy), or None."""
        if self.plan.video_pin_id is None:
            return None
        pin = next(p for p in self.pins if p.pk == self.plan.video_pin_id)
        video_url = next(e["video_url"] for e in self.plan.elements if e.get("video_url"))
        return {
            "element_index": pin.element_index,
            "label": pin.label,
            "clip_id": pin.source_clip_id,
            "video_url": video_url,
            "text": f"@Element{pin.element_index} ({pin.label}) goes as a video: its source clip {pin.source_clip_id}.",
        }

    # How `character` was chosen: "asked" (character_id), "group" (group_id), "latest" (the story's latest locked
    # character), "pins" (the pins' character), or "" (none).
    character_chosen_by: str = ""

    @property
    def character_choice(self) -> str:
        """Which character the clip uses and why, in words (empty without one)."""
        character = self.character
        if character is None:
            return ""
        why = {
            "asked": "the character asked for",
            "group": f"the locked character of {character.group.label}" if character.group is not None else "",
            "latest": "the story's latest locked character (give character_id or group_id to choose)",
            "pins": "the character of the pins sent",
        }.get(self.character_chosen_by, "")
        return f"Uses {character.name} ({character.character_id})" + (f", {why}." if why else ".")

    @property
    def offline_preview(self) -> bool:
        return self.provider == "offline"

    @property
    def model_provider_label(self) -> str:
        return PROVIDERS[settings.GENERATION_MODELS[self.plan.model_id]["provider"]].label

    @property
    def would_cost_usd(self) -> Decimal:
        """What the model's provider bills for this request."""
        return self.plan.cost_usd

    @property
    def cost_usd(self) -> Decimal:
        """What this request costs: nothing when the offline provider makes a preview."""
        return Decimal("0.000") if self.offline_preview else self.plan.cost_usd

    @property
    def left_out(self) -> list[dict]:
        return self.plan.left_out

    @property
    def summary(self) -> str:
        """Who makes the clip and what it costs, in the words every page and the API use."""
        sound = " with sound" if self.plan.with_audio else ""
        if self.offline_preview:
            return (
                f"Offline preview — made on this machine from the references, not by {self.plan.model_label}; "
                f"$0.00. On {self.model_provider_label} this would cost ${self.would_cost_usd:.2f}."
            )
        unconfirmed = price_note(self.plan.model_id)
        return (
            f"{self.plan.model_label} on {self.model_provider_label}, {self.plan.duration} s{sound}: "
            f"${self.cost_usd:.2f}." + (f" Price not confirmed: {unconfirmed}." if unconfirmed else "")
        )

    @property
    def pins_on_request(self) -> bool:
        """The story has pins, but automatic switching is off: they are used only when asked for."""
        return bool(self.available_pins) and not self.auto_switch


def generation_quote(
    *,
    story: Story,
    prompt: str,
    duration: int = 5,
    aspect_ratio: str = "16:9",
    use_pins: bool | None = None,
    character_id: str | None = None,
    with_audio: bool = False,
    model_id: str | None = None,
    video_element_pin: int | None = None,
    style_reference_kinds: list[str] | None = None,
    style_images: list | None = None,
    job_id: str | None = None,
    group_id: int | None = None,
) -> Quote:
    """What a request would run and cost, before anything is spent (the create page shows this).

    `use_pins`: True asks for the story's pinned characters (Kling O1 reference-to-video), False
    opts out of every lock (text-to-video), None leaves it to the pinning settings: pins are used
    when `auto_switch_model` is on, and only offered when it is off. `with_audio`: ask for sound. `model_id`: one of
    the offered models (`providers.offered_models()`) of the mode the request gets; None takes the mode's default.
    `video_element_pin`: the element index of a pin to send as its source clip (Kling O3); its clip is checked here.
    `group_id` (without `character_id`): the story's locked character of that character group.
    `style_reference_kinds` (the character's DNA references / "model_sheet") and `style_images` (uploaded files)
    are style references, @Image1... in that order; uploads are checked here (a 400 before anything is stored)
    and get their URL under `job_id` (the job being created; a quote shows QUOTE_JOB_PLACEHOLDER instead).
    """
    model_id = (model_id or "").strip() or None
    if model_id is not None and model_id not in {m.model_id for m in offered_models()}:
        offered = ", ".join(m.model_id for m in offered_models())
        raise GenerationError(
            f"The model '{model_id}' is not offered here (its provider has no key, or it is "
            f"unknown). Offered: {offered}.",
            code="invalid_request",
        )
    config = pin_selectors.pinning_settings()  # read once per request
    character = _story_character(story, character_id, group_id)
    pins = pin_selectors.story_pins_for_generation(story, config) if use_pins is not False else []
    pin_inputs = _with_clip_videos(_pin_inputs(pins), pins, video_element_pin)
    styles = _dna_style_references(character, list(style_reference_kinds or []))
    dna_character = character  # whose DNA the style references are (before the pins may change `character`)
    styles += _uploaded_style_references(
        story, job_id or QUOTE_JOB_PLACEHOLDER, list(style_images or []), first_position=len(styles) + 1
    )
    try:
        plan = prompts.plan_generation(
            prompt=prompt,
            duration=duration,
            aspect_ratio=aspect_ratio,
            use_pins=use_pins,
            auto_switch=config.auto_switch_model,
            pins=pin_inputs,
            with_audio=with_audio,
            character=_character_input(character) if character else None,
            model_id=model_id,
            video_element_pin=video_element_pin,
            style_images=[style.as_input() for style in styles],
        )
    except prompts.PlanError as exc:
        raise GenerationError(str(exc), code="invalid_request") from None
    used_pins = [p for p in pins if p.pk in plan.pin_ids]
    sent_styles = styles[: len(plan.style_images)]
    style_character = dna_character if any(style.source == "dna" for style in sent_styles) else None
    shown = _pin_characters(used_pins) if used_pins else []
    chosen_by = "asked" if character_id else "group" if group_id is not None else "latest" if character else ""
    if shown and not character_id:
        character, chosen_by = shown[0], "pins"
    if character is not None and character not in shown:
        shown.insert(0, character)
    # A character whose DNA images go out as style references is shown too: its license is checked and used.
    if style_character is not None and style_character not in shown:
        shown.append(style_character)
    reference_cost = None
    if pins and not used_pins and config.cost_premium_warning:
        try:
            reference_cost = prompts.job_cost(prompts.model_id_for("reference-to-video"), plan.duration)
        except prompts.PlanError:
            reference_cost = None
    return Quote(
        plan=plan,
        character=character if plan.mode != "text-to-video" else None,
        characters=tuple(shown) if plan.mode != "text-to-video" else (),
        pins=used_pins,
        available_pins=pins,
        auto_switch=config.auto_switch_model,
        reference_cost_usd=reference_cost,
        provider=provider_for(plan.model_id),
        video_choices=[
            {"element_index": p.element_index, "label": p.label, "usable": bool(p.video_url), "reason": p.video_problem}
            for p in pin_inputs
        ],
        style_references=tuple(sent_styles),
        dna_character=dna_character,
        character_chosen_by=chosen_by if plan.mode != "text-to-video" else "",
    )
