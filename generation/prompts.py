"""Which generation mode a request gets, and exactly what is sent for it. One place, pure functions.

- Active pins (pinning on, not opted out) -> Kling O1 reference-to-video with the pins as `elements`,
  when the pinning settings let generation switch models automatically (`auto_switch_model`), or
  when the contributor asks for the pins. With automatic switching off, pins are only an offer:
  the request otherwise goes on as if nothing were pinned.
- A canonical character and no pins used -> image-to-video with the DNA prompt, a negative prompt
  against drift, and the reference image that suits the scene.
- Opted out, or nothing locked -> text-to-video.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from django.conf import settings

from characters.dna import images as dna

from . import payloads
from .payloads import PayloadError as PlanError  # noqa: F401 (the plan's refusals, re-exported)

ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MAX_REFS_PER_ELEMENT = 3
QUALITY_TAGS = "High quality, cinematic lighting, consistent character appearance"
DRIFT_NEGATIVES = [
    "different character",
    "different person",
    "changing appearance",
    "inconsistent features",
    "morphing face",
]

ACTION_WORDS = re.compile(r"\b(fight|run|ran|jump|battl|chas|swing|swung|throw|threw|climb|danc|kick|sprint)\w*", re.I)
DIALOGUE_WORDS = re.compile(
    r"\b(speak|spoke|talk|say|said|whisper|shout|emotion|react|cry|cries|smil|laugh|frown|tear)\w*", re.I
)
ELEMENT_TAG = re.compile(r"@Element(\d+)\b")
IMAGE_TAG = re.compile(r"@Image(\d+)\b")


@dataclass(frozen=True)
class PinInput:
    pin_id: int
    element_index: int
    label: str
    frontal_url: str
    angle_urls: tuple[str, ...] = ()
    # The pin as a video element (Kling O3): the absolute URL of its source clip's playable copy, or why it
    # cannot go as one (the quote checks the clip).
    video_url: str = ""
    video_problem: str = ""


@dataclass(frozen=True)
class StyleImageInput:
    """A style reference image asked for: one of the character's DNA images, or an upload."""

    url: str  # absolute: what the provider fetches
    label: str  # how the contributor knows it: "Mara's model sheet", "upload ship.png"
    source: str  # "dna" or "upload"
    kind: str = ""  # the DNA reference kind or "model_sheet"; "" for an upload


@dataclass(frozen=True)
class CharacterInput:
    character_id: str
    style_description: str
    locked_features: tuple[str, ...]
    palette: dict
    reference_urls: dict  # kind -> URL


@dataclass
class GenerationPlan:
    mode: str
    model_id: str
    arguments: dict
    prompt_used: str
    negative_prompt: str = ""
    reference_kind: str = ""
    elements: list = field(default_factory=list)
    pin_ids: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    duration: int = 5
    aspect_ratio: str = "16:9"
    with_audio: bool = False
    left_out: list = field(default_factory=list)  # pins not sent: {pin_id, element_index, label, reason}
    video_pin_id: int | None = None  # the pin sent as a video element (its source clip), if any
    style_images: list = field(default_factory=list)  # the StyleImageInputs sent, @Image1 first
    left_out_styles: list = field(default_factory=list)  # style images not sent: {position, label, source, reason}

    @property
    def cost_usd(self) -> Decimal:
        """What the provider bills for this request (with or without sound)."""
        return job_cost(self.model_id, self.duration, self.with_audio)

    @property
    def model_label(self) -> str:
        return cast(str, settings.GENERATION_MODELS[self.model_id]["label"])


def job_cost(model_id: str, duration: int, with_audio: bool = False) -> Decimal:
    return payloads.cost(model_id, duration, with_audio)


def model_id_for(mode: str, requested: str | None = None) -> str:
    """The model asked for, else the configured model of `mode` (GENERATION_MODEL_FOR_MODE); PlanError if it
    cannot be used for `mode`."""
    return payloads.model_for(mode, requested)[0]


def _check_common(prompt: str, duration: int, aspect_ratio: str) -> str:
    prompt = " ".join((prompt or "").split())
    if not prompt:
        raise PlanError("Describe the scene to generate.")
    if aspect_ratio not in ASPECT_RATIOS:
        raise PlanError(f"Aspect ratio must be one of {', '.join(ASPECT_RATIOS)}.")
    return prompt


def _limit(prompt: str) -> str:
    limit = settings.GENERATION_MAX_PROMPT_CHARS
    if len(prompt) > limit:
        raise PlanError(f"The prompt is {len(prompt)} characters with the character tags; the limit is {limit}.")
    return prompt


# --- reference-to-video ------------------------------------------------------------------------


def build_elements(pins: list[PinInput]) -> tuple[list[PinInput], list[dict], list[dict]]:
    """Elements for the pins that fit in the model's input budget (`payloads.MAX_INPUTS`), in element order.

    Each element is one input, whatever its images (see payloads.MAX_INPUTS for the source): its frontal image
    and 1-3 reference images, its first three angles (the frontal again when the pin has no angle: the provider
    refuses an empty list). The pins are fitted first; style images get what they leave (`fit_style_images`).
    Pins beyond the budget are returned with the reason, and the quote, the create page and the API name them
    before anything is spent.
    """
    ordered = sorted(pins, key=lambda p: p.element_index)
    fitting = ordered[: payloads.MAX_INPUTS]
    left_out = [
        {
            "pin_id": p.pin_id,
            "element_index": p.element_index,
            "label": p.label,
            "reason": f"@Element{p.element_index} ({p.label}) is left out: at most {payloads.MAX_INPUTS} inputs fit "
            f"in one request (each pinned character is one, whatever its number of images), so {len(fitting)} "
            "pins fit. Deactivate a pin to choose which ones are used.",
        }
        for p in ordered[len(fitting) :]
    ]
    elements = [
        {
            "frontal_image_url": p.frontal_url,
            "reference_image_urls": list(p.angle_urls[:MAX_REFS_PER_ELEMENT] or (p.frontal_url,)),
        }
        for p in fitting
    ]
    return fitting, elements, left_out


def _image_element(pin: PinInput) -> dict:
    return {
        "frontal_image_url": pin.frontal_url,
        "reference_image_urls": list(pin.angle_urls[:MAX_REFS_PER_ELEMENT] or (pin.frontal_url,)),
    }


def build_video_elements(
    pins: list[PinInput], video_element_index: int, style_images: int = 0
) -> tuple[list[PinInput], list[dict], list[dict]]:
    """Like `build_elements`, with the pin of `video_element_index` sent as its source clip (`video_url`).

    With a video the request's budget is `payloads.input_budget(True)`: the video pin always goes, then the other
    pins in element order while they fit; the rest are returned with the reason. PlanError when that pin is not
    active or its clip cannot be sent (the reason comes from the quote's check of the clip).
    """
    ordered = sorted(pins, key=lambda p: p.element_index)
    video_pin = next((p for p in ordered if p.element_index == video_element_index), None)
    if video_pin is None:
        active = ", ".join(f"@Element{p.element_index}" for p in ordered) or "none"
        raise PlanError(
            f"There is no active pinned character @Element{video_element_index} to send as a video (active: {active})."
        )
    if not video_pin.video_url:
        raise PlanError(
            f"@Element{video_pin.element_index} ({video_pin.label}) cannot go as a video: {video_pin.video_problem}. "
            "Send its images instead (leave the video element out)."
        )
    budget = payloads.input_budget(with_video=True)
    room = budget - style_images
    if room < 1:
        raise PlanError(
            f"With a video element at most {budget} inputs fit in one request, and the {style_images} style images "
            "take them all: send fewer style images, or no video."
        )
    others = [p for p in ordered if p is not video_pin]
    sent = {video_pin.pin_id, *(p.pin_id for p in others[: room - 1])}
    fitting = [p for p in ordered if p.pin_id in sent]
    left_out = [
        {
            "pin_id": p.pin_id,
            "element_index": p.element_index,
            "label": p.label,
            "reason": f"@Element{p.element_index} ({p.label}) is left out: with @Element{video_pin.element_index} "
            f"sent as a video, at most {budget} inputs fit in one request (each pinned character is one, and each "
            f"style image is one), so {len(fitting)} pins fit. Send the pins as images to use them all.",
        }
        for p in ordered
        if p.pin_id not in sent
    ]
    elements = [{"video_url": p.video_url} if p is video_pin else _image_element(p) for p in fitting]
    return fitting, elements, left_out


def fit_style_images(
    styles: list[StyleImageInput], *, elements: int, limit: int, budget: int = payloads.MAX_INPUTS
) -> tuple[list[StyleImageInput], list[dict]]:
    """The style images that fit beside `elements` pins, in the order asked, and those left out with why.

    The one rule: pins come first. A pin is the character the clip must keep, a style image only its look, so
    style images take the inputs the pins leave (`budget` in all: `payloads.input_budget`, fewer with a video
    element), and at most `limit` (the model's `image_urls` bound).
    """
    room = max(0, min(limit, budget - elements))
    fitting = styles[:room]
    left_out = [
        {
            "position": position,
            "label": style.label,
            "source": style.source,
            "reason": f"Style image {position} ({style.label}) is left out: at most {budget} inputs fit "
            f"in one request and the {elements} pinned character{'s' if elements != 1 else ''} come first, so "
            f"{len(fitting)} style image{'s' if len(fitting) != 1 else ''} fit. Send fewer style images to choose.",
        }
        for position, style in enumerate(styles[room:], start=room + 1)
    ]
    return fitting, left_out


def tag_style_prompt(prompt: str, styles: list[StyleImageInput]) -> str:
    """Name the style images in the prompt as fal's O1 docs do (@Image1 is the first of `image_urls`).

    A tag the prompt already has is kept; the images it does not name are appended as "Keep the style of
    @Image1 and @Image2." A tag beyond the images sent is refused rather than sent to fail at the provider.
    """
    tags = [payloads.IMAGE_TAG_FORMAT.format(n) for n in range(1, len(styles) + 1)]
    mentioned = {int(n) for n in IMAGE_TAG.findall(prompt)}
    unknown = sorted(n for n in mentioned if not 1 <= n <= len(styles))
    if unknown:
        sent = f"it sends {', '.join(tags)}" if tags else "it sends no style image"
        raise PlanError(f"The prompt mentions @Image{unknown[0]}, but {sent}.")
    missing = [tag for n, tag in enumerate(tags, start=1) if n not in mentioned]
    if not missing:
        return prompt
    named = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    return f"{prompt.rstrip()} Keep the style of {named}."


def tag_prompt(prompt: str, pins: list[PinInput]) -> str:
    """Point the prompt's @ElementN tags at the elements as sent, and prepend the tags it lacks.

    The provider numbers elements by their position in the request, while admins pin into slots
    1..N that may have gaps (a deactivated pin): a tag naming a pin's slot is rewritten to its
    position. A tag naming no active pin is refused rather than sent to fail at the provider.
    """
    position_of = {p.element_index: pos for pos, p in enumerate(pins, start=1)}
    unknown = sorted({int(n) for n in ELEMENT_TAG.findall(prompt)} - set(position_of))
    if unknown:
        raise PlanError(
            f"The prompt mentions @Element{unknown[0]}, but no active pinned character has that element. "
            f"Use {', '.join(f'@Element{i}' for i in sorted(position_of))}."
        )
    mentioned = {int(n) for n in ELEMENT_TAG.findall(prompt)}
    rewritten = ELEMENT_TAG.sub(lambda m: f"@Element{position_of[int(m.group(1))]}", prompt)
    missing = [f"@Element{position_of[p.element_index]}" for p in pins if p.element_index not in mentioned]
    return " ".join([*missing, rewritten]) if missing else rewritten


def plan_reference_to_video(
    prompt: str,
    pins: list[PinInput],
    duration: int,
    aspect_ratio: str,
    with_audio: bool = False,
    model_id: str | None = None,
    video_element_pin: int | None = None,
    style_images: list[StyleImageInput] | None = None,
) -> GenerationPlan:
    """`video_element_pin`: the element index of the pin to send as its source clip (models that take one).
    `style_images`: style references (@Image1...), fitted after the pins (`fit_style_images`)."""
    model_id = model_id_for("reference-to-video", model_id)
    if style_images and not payloads.takes_style_images(model_id):
        raise PlanError(_no_style_images(settings.GENERATION_MODELS[model_id]["label"]))
    video_pin_id = None
    if video_element_pin is None:
        fitting, elements, left_out = build_elements(pins)
    else:
        if model_id not in payloads.VIDEO_ELEMENT_MODELS:
            takes = ", ".join(sorted(payloads.VIDEO_ELEMENT_MODELS))
            raise PlanError(
                f"{settings.GENERATION_MODELS[model_id]['label']} takes no element built from a video; "
                f"ask for model_id {takes}, or leave the video element out."
            )
        fitting, elements, left_out = build_video_elements(pins, video_element_pin)
        video_pin_id = next(p.pin_id for p in fitting if p.element_index == video_element_pin)
    styles, left_out_styles = fit_style_images(
        list(style_images or []),
        elements=len(elements),
        limit=payloads.style_image_limit(model_id),
        budget=payloads.input_budget(with_video=video_pin_id is not None),
    )
    prompt_used = _limit(tag_style_prompt(tag_prompt(prompt, fitting), styles))
    arguments = payloads.build(
        model_id,
        payloads.PayloadInput(
            prompt=prompt_used,
            duration=duration,
            aspect_ratio=aspect_ratio,
            with_audio=with_audio,
            elements=elements,
            image_urls=[style.url for style in styles],
        ),
    )
    return GenerationPlan(
        mode="reference-to-video",
        model_id=model_id,
        arguments=arguments,
        prompt_used=prompt_used,
        elements=elements,
        pin_ids=[p.pin_id for p in fitting],
        notes=[p["reason"] for p in [*left_out, *left_out_styles]],
        duration=duration,
        aspect_ratio=aspect_ratio,
        with_audio=with_audio,
        left_out=left_out,
        video_pin_id=video_pin_id,
        style_images=styles,
        left_out_styles=left_out_styles,
    )


def _no_style_images(what: str) -> str:
    takers = payloads.style_image_models()
    return (
        f"Style reference images (@Image1...) go only to {' and '.join(takers) or 'no configured model'} "
        f"(reference-to-video, with the story's pinned characters); {what} takes none. Leave the style images out, "
        "or generate with the pins."
    )


# --- image-to-video ----------------------------------------------------------------------------


def choose_reference(prompt: str, available: set[str]) -> str:
    """Action scenes use the full body shot, dialogue and emotion the face close-up; default full body."""
    if ACTION_WORDS.search(prompt):
        return "full_body"
    if DIALOGUE_WORDS.search(prompt) and "face_closeup" in available:
        return "face_closeup"
    return "full_body"


_DARK_HAIR = {"black", "dark brown", "brown", "auburn"}
_LIGHT_HAIR = {"blonde", "platinum blonde", "strawberry blonde", "white", "grey", "light brown"}


def negative_prompt_for(character: CharacterInput) -> str:
    """Drift words, the opposite hair colour, and the beard, glasses and hair-length rules from the locked
    features."""
    negatives = list(DRIFT_NEGATIVES)
    hair = character.palette.get("hair")
    if hair:
        name = dna.nearest_name(hair, dna.HAIR_NAMES)
        if name in _DARK_HAIR:
            negatives += ["blonde hair", "platinum hair"]
        elif name in _LIGHT_HAIR:
            negatives += ["black hair", "dark brown hair"]
        if name == "red":
            negatives += ["black hair"]
    features = " ".join(character.locked_features).lower()
    if "clean shaven" in features or "clean-shaven" in features:
        negatives += ["beard", "stubble"]
    elif "beard" in features:
        negatives.append("clean shaven")
        if re.search(r"\b(short|trimmed|stubble)\b", features):
            negatives.append("long beard")
    # The measured traits (characters.dna.traits) are whole features: "no glasses", "short hair".
    listed = {feature.strip().lower() for feature in character.locked_features}
    if "no glasses" in listed:
        negatives += ["glasses", "sunglasses"]
    if "short hair" in listed:
        negatives.append("long hair")
    elif "long hair" in listed:
        negatives.append("short hair")
    return ", ".join(dict.fromkeys(negatives))


def plan_image_to_video(
    prompt: str,
    character: CharacterInput,
    duration: int,
    aspect_ratio: str,
    with_audio: bool = False,
    model_id: str | None = None,
    pins: list[PinInput] | None = None,
) -> GenerationPlan:
    """`pins`: the story's pins, sent as `elements` beside the start image by the models that take them
    (payloads.ELEMENT_IMAGE_MODELS, Kling v3); the prompt gets their @Element tags."""
    model_id = model_id_for("image-to-video", model_id)
    fitting, elements, left_out = (
        build_elements(pins) if pins and model_id in payloads.ELEMENT_IMAGE_MODELS else ([], [], [])
    )
    if fitting:
        prompt = tag_prompt(prompt, fitting)
    reference = choose_reference(prompt, set(character.reference_urls))
    parts = [character.style_description.rstrip(". ")]
    # The top locked features, for emphasis, unless the style description already says them.
    style = character.style_description.lower()
    emphasis = [f for f in character.locked_features[:3] if f.lower() not in style]
    if emphasis:
        parts.append("Character has " + ", ".join(emphasis))
    parts += [prompt.rstrip(". "), QUALITY_TAGS]
    prompt_used = _limit(". ".join(p for p in parts if p))
    negative = negative_prompt_for(character)
    arguments = payloads.build(
        model_id,
        payloads.PayloadInput(
            prompt=prompt_used,
            duration=duration,
            aspect_ratio=aspect_ratio,
            with_audio=with_audio,
            negative_prompt=negative,
            image_url=character.reference_urls[reference],
            elements=elements,
        ),
    )
    return GenerationPlan(
        mode="image-to-video",
        model_id=model_id,
        arguments=arguments,
        prompt_used=prompt_used,
        negative_prompt=negative,
        reference_kind=reference,
        duration=duration,
        aspect_ratio=aspect_ratio,
        with_audio=with_audio,
        elements=elements,
        pin_ids=[p.pin_id for p in fitting],
        notes=[p["reason"] for p in left_out],
        left_out=left_out,
    )


# --- text-to-video -----------------------------------------------------------------------------


def plan_text_to_video(
    prompt: str, duration: int, aspect_ratio: str, with_audio: bool = False, model_id: str | None = None
) -> GenerationPlan:
    model_id = model_id_for("text-to-video", model_id)
    prompt_used = _limit(prompt)
    arguments = payloads.build(
        model_id,
        payloads.PayloadInput(
            prompt=prompt_used,
            duration=duration,
            aspect_ratio=aspect_ratio,
            with_audio=with_audio,
        ),
    )
    return GenerationPlan(
        mode="text-to-video",
        model_id=model_id,
        arguments=arguments,
        prompt_used=prompt_used,
        duration=duration,
        aspect_ratio=aspect_ratio,
        with_audio=with_audio,
    )


def pins_apply(*, pins_offered: bool, auto_switch: bool, use_pins: bool | None) -> bool:
    """Whether a request goes to reference-to-video with the story's active pins.

    `use_pins`: True, the contributor asked for the pins; False, they opted out of every lock;
    None, they said nothing, and the story's setting decides (`auto_switch`).
    """
    return pins_offered and (use_pins is True or (use_pins is None and auto_switch))


def plan_generation(
    *,
    prompt: str,
    duration: int,
    aspect_ratio: str,
    use_pins: bool | None,
    pins: list[PinInput],
    character: CharacterInput | None,
    auto_switch: bool = True,
    with_audio: bool = False,
    model_id: str | None = None,
    video_element_pin: int | None = None,
    style_images: list[StyleImageInput] | None = None,
) -> GenerationPlan:
    """The one decision of which mode a request gets (see the module docstring); the model of that mode
    (settings.GENERATION_MODEL_FOR_MODE), or the model asked for (`model_id`, which must make that mode), spells the
    payload. `with_audio`: the contributor asked for sound. `video_element_pin`: send that pin as its source clip
    (reference-to-video on a model that takes a video element). `style_images`: style references (@Image1...),
    taken only by the reference-to-video models whose schema has `image_urls`; any other request with them is
    refused.

    Pins that apply go to reference-to-video, unless the model asked for is an image-to-video model that takes
    them as elements beside the character's start image (Kling v3)."""
    prompt = _check_common(prompt, duration, aspect_ratio)
    use_locks = use_pins is not False
    if pins_apply(pins_offered=bool(pins), auto_switch=auto_switch, use_pins=use_pins):
        if character is not None and model_id in payloads.ELEMENT_IMAGE_MODELS and video_element_pin is None:
            plan = plan_image_to_video(prompt, character, duration, aspect_ratio, with_audio, model_id, pins=pins)
            if style_images:
                raise PlanError(_no_style_images(f"this request is {plan.mode}: {plan.model_label}, which"))
            return plan
        return plan_reference_to_video(
            prompt,
            pins,
            duration,
            aspect_ratio,
            with_audio,
            model_id,
            video_element_pin=video_element_pin,
            style_images=style_images,
        )
    if video_element_pin is not None:
        raise PlanError(
            "A video element goes with the story's pinned characters (reference-to-video), and this request uses "
            "none: ask for the pins, or leave the video element out."
        )
    if use_locks and character is not None:
        plan = plan_image_to_video(prompt, character, duration, aspect_ratio, with_audio, model_id)
    else:
        plan = plan_text_to_video(prompt, duration, aspect_ratio, with_audio, model_id)
    if style_images:
        raise PlanError(_no_style_images(f"this request is {plan.mode}: {plan.model_label}, which"))
    return plan
