"""Exactly what each model is sent: one payload builder per model id, and each model's published schema. Pure code.

The field names differ between Kling versions on fal (v2.1 takes `image_url` and `cfg_scale`, v2.6 and v3
take `start_image_url` and no `aspect_ratio`, O1 takes `elements` and no audio...), so a payload is built
per MODEL, not per mode. `settings.GENERATION_MODEL_FOR_MODE` picks the model of each mode, and with it
the builder. Every builder's output must validate against the model's JSON Schema in
provider_schemas/fal/ (the fake fal server refuses anything else with fal's 422, and so would fal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import jsonschema
from django.conf import settings

SCHEMA_DIR = Path(__file__).resolve().parent / "provider_schemas"
# Kling O1 / O3 reference-to-video: at most 7 inputs in one request, and an element is ONE input whatever its
# frontal + 1-3 reference images. fal's schema text for both `elements` and `image_urls` of
# fal-ai/kling-video/o1/reference-to-video: "Maximum 7 total (elements + reference images + start image)"
# (https://fal.ai/models/fal-ai/kling-video/o1/reference-to-video/llms.txt and the model's API reference page,
# read 2026-12-04); its overview: "Up to 7 simultaneous inputs: ... tracked elements (characters/objects with
# frontal + reference angles), style reference images, and an optional start frame". O3 says the same, 4 when a
# video is used. The images inside an element are bounded by the schema (1-3 references).
MAX_INPUTS = 7
# Kling O3 reference-to-video with an element built from a video clip (`video_url`): fal's schema text for
# `image_urls` of fal-ai/kling-video/o3/pro/reference-to-video: "Maximum 4 total (elements + reference images) when
# using video" (fal's API reference page for the model, read 2026-12-04), and one video per request.
MAX_INPUTS_WITH_VIDEO = 4
MAX_VIDEO_ELEMENTS = 1
# The models whose elements may be a video (`video_url`) instead of an image set.
VIDEO_ELEMENT_MODELS = {"fal-ai/kling-video/o3/pro/reference-to-video"}
# The clip an element is built from. UNCONFIRMED: fal's pages give no length, size or resolution for `video_url`
# (searched 2026-12-04); these are Kling's own API specification for a reference video ("Only .mp4/.mov formats",
# ">= 3 seconds and <= 10 seconds", "between 720px and 2160px (inclusive) in both width and height", "not exceeding
# 200MB"; Kling AI Series 3.0 Model API Specification, as quoted in a public copy read 2026-12-04, and the same
# figures on a reseller's O3 reference page). We send the clip's H.264 MP4 copy, so the format holds; the rest is
# checked before spending.
VIDEO_ELEMENT_SECONDS = (3.0, 10.0)
VIDEO_ELEMENT_SIDE_PX = (720, 2160)
VIDEO_ELEMENT_MAX_BYTES = 200 * 1024 * 1024
# Style references: `image_urls`, named in the prompt as @Image1, @Image2... by their position in that list.
# fal's own example prompt for fal-ai/kling-video/o1/reference-to-video ends "Make sure to keep it as the style
# of @Image2." with the images in `image_urls` (https://fal.ai/docs/model-api-reference/video-generation-api/
# kling-video-o1-reference-to-video.md, read 2026-12-04); O3's API reference names `image_urls` the same way.
# They share the MAX_INPUTS budget with the elements; the pins are fitted first (prompts.fit_style_images).
IMAGE_TAG_FORMAT = "@Image{}"


class PayloadError(ValueError):
    """The request cannot be sent to this model as asked; the message says what to change."""


@dataclass(frozen=True)
class PayloadInput:
    """What a request wants, before it is spelled for one model."""

    prompt: str
    duration: int
    aspect_ratio: str
    with_audio: bool = False
    negative_prompt: str = ""
    image_url: str = ""  # image-to-video: the reference the clip starts from
    elements: list = field(default_factory=list)  # reference-to-video: [{frontal_image_url, reference_image_urls}]
    image_urls: list = field(default_factory=list)  # reference-to-video: style images, @Image1...


# --- the schemas --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schemas() -> dict[str, dict]:
    found = {}
    for path in sorted(SCHEMA_DIR.glob("*/*.json")):
        doc = json.loads(path.read_text())
        found[doc["x-model-id"]] = doc
    return found


def schema_for(model_id: str) -> dict | None:
    """The model's published input schema (its output schema is in `$defs.output`), or None if we have none."""
    return _schemas().get(model_id)


def known_schema_ids() -> list[str]:
    return sorted(_schemas())


def _fal_error(error: jsonschema.ValidationError) -> dict:
    """One schema violation in fal's 422 shape: {"loc": ["body", ...], "msg", "type"} (pydantic's words)."""
    loc = ["body", *[str(p) for p in error.absolute_path]]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return {"loc": [*loc, missing], "msg": "Field required", "type": "missing"}
    if error.validator == "additionalProperties":
        extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return {"loc": [*loc, *extras[:1]], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    if error.validator == "enum":
        allowed = " or ".join(repr(v) for v in error.validator_value)
        return {"loc": loc, "msg": f"Input should be {allowed}", "type": "enum"}
    return {"loc": loc, "msg": error.message, "type": "value_error"}


@lru_cache(maxsize=64)
def _validator(model_id: str, part: str) -> jsonschema.Draft202012Validator | None:
    doc = schema_for(model_id)
    if doc is None:
        return None
    schema = {"$ref": "#/$defs/output", "$defs": doc["$defs"]} if part == "output" else doc
    return jsonschema.Draft202012Validator(schema)


def validation_errors(model_id: str, arguments: Any, *, part: str = "input") -> list[dict] | None:
    """Where `arguments` break the model's schema, in fal's 422 `detail` shape; [] when they fit.

    None when we have no schema for the model. `part="output"` checks a result body instead.
    """
    validator = _validator(model_id, part)
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    return [_fal_error(e) for e in errors]


# --- the builders -------------------------------------------------------------------------------


def _no_sound(label: str, request: PayloadInput) -> None:
    if request.with_audio:
        raise PayloadError(f"{label} makes silent clips: generate without sound, or pick another model.")


def reference_inputs(elements: list, image_urls: list) -> int:
    """How many of the MAX_INPUTS a reference-to-video request uses: one per element, one per style image."""
    return len(elements) + len(image_urls)


def video_elements(elements: list) -> int:
    """How many of the elements are built from a video clip (`video_url`)."""
    return sum(1 for element in elements if element.get("video_url"))


def input_budget(with_video: bool) -> int:
    """How many inputs one reference-to-video request may carry: fewer when an element is a video."""
    return MAX_INPUTS_WITH_VIDEO if with_video else MAX_INPUTS


def _elements_within_budget(request: PayloadInput) -> None:
    used = reference_inputs(request.elements, request.image_urls)
    limit = input_budget(video_elements(request.elements) > 0)
    if used > limit:
        with_video = " with a video element" if limit != MAX_INPUTS else ""
        raise PayloadError(
            f"{used} inputs (elements and style images) do not fit in one request{with_video}: the limit is {limit}."
        )


def _video_elements_allowed(label: str, model_id: str, request: PayloadInput) -> None:
    count = video_elements(request.elements)
    if count and model_id not in VIDEO_ELEMENT_MODELS:
        raise PayloadError(f"{label} takes no element built from a video: send the pin's images, or pick Kling O3.")
    if count > MAX_VIDEO_ELEMENTS:
        raise PayloadError(
            f"{label} takes at most {MAX_VIDEO_ELEMENTS} element built from a video per request, not {count}."
        )


def video_element_problem(*, seconds: float, width: int, height: int, size_bytes: int | None) -> str | None:
    """Why a clip cannot be sent as a video element (its length, sides or size; see VIDEO_ELEMENT_*), or None.
    `size_bytes` None: not checked."""
    low, high = VIDEO_ELEMENT_SECONDS
    if not low <= seconds <= high:
        return f"the clip is {seconds:.1f} s long; a video element must be {low:g}–{high:g} s"
    small, large = VIDEO_ELEMENT_SIDE_PX
    if not (small <= width <= large and small <= height <= large):
        return f"the clip is {width}×{height}; a video element's sides must be {small}–{large} px"
    if size_bytes is not None and size_bytes > VIDEO_ELEMENT_MAX_BYTES:
        return (
            f"the clip's playable copy is {size_bytes / 1024 / 1024:.0f} MB; a video element may be at most "
            f"{VIDEO_ELEMENT_MAX_BYTES // 1024 // 1024} MB"
        )
    return None


def takes_style_images(model_id: str) -> bool:
    """Whether the model's published schema has `image_urls` (style reference images, @Image1...)."""
    schema = schema_for(model_id) or {}
    return "image_urls" in schema.get("properties", {})


def style_image_limit(model_id: str) -> int:
    """How many style images one request of the model may carry before the pins take their share: the schema's
    `image_urls.maxItems`, within the input budget. 0 for a model that takes none."""
    if not takes_style_images(model_id):
        return 0
    field = cast(dict, schema_for(model_id))["properties"]["image_urls"]
    return min(int(field.get("maxItems", MAX_INPUTS)), MAX_INPUTS)


def style_image_models() -> list[str]:
    """The labels of the configured models that take style images, for the refusal that names them."""
    return [
        spec["label"]
        for model_id, spec in sorted(settings.GENERATION_MODELS.items())
        if model_id in BUILDERS and takes_style_images(model_id)
    ]


def kling_o1_reference(request: PayloadInput) -> dict:
    _no_sound("Kling O1 reference-to-video", request)
    _video_elements_allowed("Kling O1 reference-to-video", "fal-ai/kling-video/o1/reference-to-video", request)
    _elements_within_budget(request)
    body = {
        "prompt": request.prompt,
        "elements": request.elements,
        "duration": str(request.duration),
        "aspect_ratio": request.aspect_ratio,
    }
    if request.image_urls:
        body["image_urls"] = request.image_urls
    return body


def kling_o3_reference(request: PayloadInput) -> dict:
    """O3: like O1, with sound said explicitly, and one element that may be a video clip (`video_url`)."""
    _video_elements_allowed("Kling O3 reference-to-video", "fal-ai/kling-video/o3/pro/reference-to-video", request)
    _elements_within_budget(request)
    body = {
        "prompt": request.prompt,
        "elements": request.elements,
        "duration": str(request.duration),
        "aspect_ratio": request.aspect_ratio,
        "generate_audio": request.with_audio,
    }
    if request.image_urls:
        body["image_urls"] = request.image_urls
    return body


def kling_start_image(request: PayloadInput) -> dict:
    """v2.6 / v3 image-to-video: `start_image_url`, no aspect ratio (the image decides), sound said explicitly
    (fal's default is on, at twice the price)."""
    return {
        "prompt": request.prompt,
        "start_image_url": request.image_url,
        "negative_prompt": request.negative_prompt,
        "duration": str(request.duration),
        "generate_audio": request.with_audio,
    }


def kling_v3_start_image(request: PayloadInput) -> dict:
    """v3 image-to-video: the v2.6 body, plus the story's pins as `elements` (image sets) when it has any.
    fal's pages give no maximum number of elements for this model (checked 2026-12-04)."""
    _video_elements_allowed("Kling v3 image-to-video", "fal-ai/kling-video/v3/pro/image-to-video", request)
    body = kling_start_image(request)
    if request.elements:
        body["elements"] = request.elements
    return body


def kling_v21_image(request: PayloadInput) -> dict:
    _no_sound("Kling v2.1 image-to-video", request)
    return {
        "prompt": request.prompt,
        "image_url": request.image_url,
        "negative_prompt": request.negative_prompt,
        "duration": str(request.duration),
        "cfg_scale": 0.5,
    }


def kling_v26_text(request: PayloadInput) -> dict:
    return {
        "prompt": request.prompt,
        "duration": str(request.duration),
        "aspect_ratio": request.aspect_ratio,
        "generate_audio": request.with_audio,
    }


# --- other providers' models ---------------------------------------------------------------------


def replicate_kling_v21(request: PayloadInput) -> dict:
    """kwaivgi/kling-v2.1 on Replicate: the prediction's `input`; standard mode (720p), integer seconds."""
    _no_sound("Kling v2.1 on Replicate", request)
    return {
        "prompt": request.prompt,
        "start_image": request.image_url,
        "negative_prompt": request.negative_prompt,
        "mode": "standard",
        "duration": request.duration,
    }


RUNWAY_RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960"}
RUNWAY_PROMPT_LIMIT = 1000


def runway_gen4_turbo(request: PayloadInput) -> dict:
    """Runway's POST /v1/image_to_video body for gen4_turbo: the ratio is a resolution, the prompt at most 1000."""
    _no_sound("Runway Gen-4 Turbo", request)
    if len(request.prompt) > RUNWAY_PROMPT_LIMIT:
        raise PayloadError(
            f"Runway Gen-4 Turbo takes prompts of at most {RUNWAY_PROMPT_LIMIT} characters; this one "
            f"is {len(request.prompt)} with the character's description. Shorten the scene, or pick "
            "another model."
        )
    return {
        "model": "gen4_turbo",
        "promptImage": request.image_url,
        "promptText": request.prompt,
        "ratio": RUNWAY_RATIOS[request.aspect_ratio],
        "duration": request.duration,
    }


def luma_ray2(request: PayloadInput) -> dict:
    """Luma's POST /generations/video body for ray-2: the reference as keyframe frame0, 720p, "5s"/"9s".
    (Luma's API takes no negative prompt.)"""
    _no_sound("Luma Ray 2", request)
    return {
        "model": "ray-2",
        "generation_type": "video",
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "duration": f"{request.duration}s",
        "resolution": "720p",
        "keyframes": {"frame0": {"type": "image", "url": request.image_url}},
    }


BUILDERS = {
    "fal-ai/kling-video/o1/reference-to-video": kling_o1_reference,
    "fal-ai/kling-video/o3/pro/reference-to-video": kling_o3_reference,
    "fal-ai/kling-video/v2.6/pro/image-to-video": kling_start_image,
    "fal-ai/kling-video/v3/pro/image-to-video": kling_v3_start_image,
    "fal-ai/kling-video/v2.1/pro/image-to-video": kling_v21_image,
    "fal-ai/kling-video/v2.6/pro/text-to-video": kling_v26_text,
    "kwaivgi/kling-v2.1": replicate_kling_v21,
    "gen4_turbo": runway_gen4_turbo,
    "ray-2": luma_ray2,
}
# Image-to-video models that also take the story's pins as `elements` beside the start image.
ELEMENT_IMAGE_MODELS = {"fal-ai/kling-video/v3/pro/image-to-video"}
# Models that take no aspect ratio: the clip has the shape of its start image.
SHAPE_FROM_IMAGE = {
    "fal-ai/kling-video/v2.6/pro/image-to-video",
    "fal-ai/kling-video/v3/pro/image-to-video",
    "kwaivgi/kling-v2.1",
}


# --- choosing the model -------------------------------------------------------------------------


def model_problem(mode: str, model_id: str) -> str | None:
    """Why `model_id` cannot run `mode` (not configured, no builder, no schema, another mode), or None."""
    spec = settings.GENERATION_MODELS.get(model_id)
    if spec is None:
        return (
            f"The model '{model_id}' chosen for {mode} is not in GENERATION_MODELS; known models: "
            f"{', '.join(sorted(settings.GENERATION_MODELS))}."
        )
    if spec["mode"] != mode:
        return f"The model '{model_id}' makes {spec['mode']}, not {mode}."
    if model_id not in BUILDERS:
        return f"There is no payload builder for '{model_id}' in generation/payloads.py."
    if schema_for(model_id) is None:
        return f"There is no schema for '{model_id}' in generation/provider_schemas/."
    return None


def model_for(mode: str, requested: str | None = None) -> tuple[str, dict]:
    """The model of `mode` (the one asked for, else the configured default) and its settings entry; PayloadError
    when it cannot be used."""
    if requested:
        spec = settings.GENERATION_MODELS.get(requested)
        if spec is None:
            raise PayloadError(
                f"There is no model '{requested}'; the models offered are listed by GET /api/generate/models."
            )
        if spec["mode"] != mode:
            raise PayloadError(
                f"{spec['label']} makes {spec['mode']}, but this request is {mode} (it follows from "
                "the pins and the character): pick a model of that mode, or leave the model out."
            )
    model_id = requested or settings.GENERATION_MODEL_FOR_MODE.get(mode, "")
    problem = model_problem(mode, model_id)
    if problem:
        raise PayloadError(problem)
    return model_id, settings.GENERATION_MODELS[model_id]


def durations(model_id: str) -> list[int]:
    return list(settings.GENERATION_MODELS[model_id]["durations"])


def supports_audio(model_id: str) -> bool:
    return settings.GENERATION_MODELS[model_id].get("usd_per_second_audio") is not None


def cost(model_id: str, duration: int, with_audio: bool = False) -> Decimal:
    """What the model's provider bills for the clip: its price per second (with or without sound) x seconds."""
    spec = settings.GENERATION_MODELS[model_id]
    per_second = (
        spec["usd_per_second_audio"] if with_audio and spec.get("usd_per_second_audio") else spec["usd_per_second"]
    )
    return (Decimal(per_second) * duration).quantize(Decimal("0.001"))


def build(model_id: str, request: PayloadInput) -> dict:
    """The body for `model_id`, checked against its schema before anything is sent."""
    label = settings.GENERATION_MODELS[model_id]["label"]
    allowed = durations(model_id)
    if request.duration not in allowed:
        span = f"{allowed[0]}–{allowed[-1]}" if len(allowed) > 2 else " or ".join(str(d) for d in allowed)
        raise PayloadError(f"{label} makes clips of {span} seconds, not {request.duration}.")
    body = BUILDERS[model_id](request)
    errors = validation_errors(model_id, body)
    if errors:  # a builder bug, or a schema that changed: never send what the model would refuse
        raise PayloadError(
            f"The request for {label} does not fit its schema: "
            + "; ".join(f"{'.'.join(e['loc'][1:])}: {e['msg']}" for e in errors)
        )
    return body


def all_durations() -> list[int]:
    """Every length some configured model makes (the forms offer these; the plan checks the model's own)."""
    chosen = {m for m in settings.GENERATION_MODEL_FOR_MODE.values() if m in settings.GENERATION_MODELS}
    return sorted({d for m in chosen for d in settings.GENERATION_MODELS[m]["durations"]})
