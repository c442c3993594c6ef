"""generation.prompts on its own: the mode decision and exactly what each mode sends (pure, no database)."""

import dataclasses
from decimal import Decimal

import pytest

from generation import payloads, prompts
from generation.prompts import CharacterInput, PinInput, PlanError

DRIFT = "different character, different person, changing appearance, inconsistent features, morphing face"
QUALITY = "High quality, cinematic lighting, consistent character appearance"


def pin_input(index: int, angles: int = 0) -> PinInput:
    return PinInput(
        pin_id=100 + index,
        element_index=index,
        label=f"Hero {index}",
        frontal_url=f"https://site/p{index}/front.jpg",
        angle_urls=tuple(f"https://site/p{index}/angle{k}.jpg" for k in range(1, angles + 1)),
    )


def character_input(
    *,
    hair: str | None = "#3B2A20",
    features=("short brown curly hair", "orange flight suit"),
    kinds=("full_body", "face_closeup"),
) -> CharacterInput:
    palette = {"skin": "#C89A7E"} | ({"hair": hair} if hair else {})
    return CharacterInput(
        character_id="mara_abc",
        style_description="Smiling astronaut in an orange flight suit.",
        locked_features=tuple(features),
        palette=palette,
        reference_urls={kind: f"https://site/ref/{kind}.jpg" for kind in kinds},
    )


def image_count(elements: list[dict]) -> int:
    return sum(1 + len(e["reference_image_urls"]) for e in elements)


# --- Elements ---------------------------------------------------------------------------------


def test_a_pin_without_angles_repeats_its_frontal_as_the_reference():
    fitting, elements, notes = prompts.build_elements([pin_input(1)])
    assert elements == [
        {"frontal_image_url": "https://site/p1/front.jpg", "reference_image_urls": ["https://site/p1/front.jpg"]}
    ]
    assert [p.pin_id for p in fitting] == [101] and notes == []


def test_angles_become_one_to_three_references_in_element_order():
    _, elements, _ = prompts.build_elements([pin_input(3, angles=1), pin_input(1, angles=5)])
    assert [e["frontal_image_url"] for e in elements] == ["https://site/p1/front.jpg", "https://site/p3/front.jpg"]
    assert elements[0]["reference_image_urls"] == [f"https://site/p1/angle{k}.jpg" for k in (1, 2, 3)]
    assert elements[1]["reference_image_urls"] == ["https://site/p3/angle1.jpg"]
    assert all(1 <= len(e["reference_image_urls"]) <= 3 for e in elements)


def test_an_element_is_one_input_so_every_pin_of_a_season_goes_out_with_three_references():
    pins = [pin_input(i, angles=6) for i in (1, 2, 3, 4)]
    fitting, elements, left_out = prompts.build_elements(pins)
    assert [p.element_index for p in fitting] == [1, 2, 3, 4] and left_out == []
    assert [len(e["reference_image_urls"]) for e in elements] == [3, 3, 3, 3]
    assert image_count(elements) == 16  # images are not what the budget counts


def test_pins_beyond_seven_inputs_are_left_out_and_named():
    pins = [pin_input(i) for i in range(1, 9)]
    fitting, elements, left_out = prompts.build_elements(pins)
    assert [p.element_index for p in fitting] == [1, 2, 3, 4, 5, 6, 7] and len(elements) == 7
    assert [(p["pin_id"], p["element_index"], p["label"]) for p in left_out] == [(108, 8, "Hero 8")]
    assert "@Element8 (Hero 8) is left out" in left_out[0]["reason"] and "at most 7 inputs" in left_out[0]["reason"]


def style_input(n: int) -> prompts.StyleImageInput:
    return prompts.StyleImageInput(url=f"https://site/style/{n}.jpg", label=f"style {n}", source="upload")


def reference_plan(pins, styles, prompt="They meet", **kwargs):
    return prompts.plan_generation(
        prompt=prompt,
        duration=5,
        aspect_ratio="16:9",
        use_pins=None,
        pins=pins,
        character=None,
        style_images=styles,
        **kwargs,
    )


def test_pins_come_first_and_style_images_take_the_inputs_they_leave():
    """The one budget rule: 4 pins + 4 style images -> all 4 pins, 3 style images, the 4th named as left out."""
    plan = reference_plan([pin_input(i) for i in (1, 2, 3, 4)], [style_input(n) for n in (1, 2, 3, 4)])
    assert len(plan.arguments["elements"]) == 4 and plan.left_out == []
    assert plan.arguments["image_urls"] == [f"https://site/style/{n}.jpg" for n in (1, 2, 3)]
    assert payloads.reference_inputs(plan.arguments["elements"], plan.arguments["image_urls"]) == payloads.MAX_INPUTS
    (left,) = plan.left_out_styles
    assert (left["position"], left["label"], left["source"]) == (4, "style 4", "upload")
    assert "at most 7 inputs" in left["reason"] and "the 4 pinned characters come first" in left["reason"]
    assert left["reason"] in plan.notes


def test_with_a_video_element_style_images_take_what_the_smaller_budget_leaves():
    """Kling O3 with a pin sent as its clip: 4 inputs in all; two pins go, then two of three style images."""
    pins = [dataclasses.replace(pin_input(1), video_url="https://site/p1/clip.mp4"), pin_input(2)]
    plan = prompts.plan_reference_to_video(
        "Hero 1 waves",
        pins,
        5,
        "16:9",
        model_id="fal-ai/kling-video/o3/pro/reference-to-video",
        video_element_pin=1,
        style_images=[style_input(n) for n in (1, 2, 3)],
    )
    assert plan.arguments["elements"][0] == {"video_url": "https://site/p1/clip.mp4"} and plan.left_out == []
    assert plan.arguments["image_urls"] == ["https://site/style/1.jpg", "https://site/style/2.jpg"]
    assert payloads.reference_inputs(plan.arguments["elements"], plan.arguments["image_urls"]) == 4
    (left,) = plan.left_out_styles
    assert left["position"] == 3 and "at most 4 inputs" in left["reason"]


def test_seven_pins_leave_no_room_for_a_style_image():
    plan = reference_plan([pin_input(i) for i in range(1, 8)], [style_input(1)])
    assert len(plan.arguments["elements"]) == 7 and "image_urls" not in plan.arguments
    assert [s["position"] for s in plan.left_out_styles] == [1] and plan.style_images == []


def test_style_images_are_named_in_the_prompt_as_image_tags():
    plan = reference_plan([pin_input(1)], [style_input(1), style_input(2)], prompt="@Element1 sails")
    assert plan.prompt_used == "@Element1 sails Keep the style of @Image1 and @Image2."
    styles = [style_input(1), style_input(2)]
    tagged = reference_plan([pin_input(1)], styles, prompt="@Element1 sails, lit like @Image2")
    assert tagged.prompt_used == "@Element1 sails, lit like @Image2 Keep the style of @Image1."
    plain = reference_plan([pin_input(1)], [], prompt="@Element1 sails")
    assert plain.prompt_used == "@Element1 sails" and "image_urls" not in plain.arguments


def test_an_image_tag_beyond_the_style_images_sent_is_refused():
    with pytest.raises(PlanError, match="mentions @Image3, but it sends @Image1, @Image2"):
        reference_plan([pin_input(1)], [style_input(1), style_input(2)], prompt="like @Image3")


@pytest.mark.parametrize("with_character", [True, False])
def test_a_request_without_pins_refuses_style_images_naming_the_models_that_take_them(with_character):
    with pytest.raises(PlanError) as refused:
        prompts.plan_generation(
            prompt="A storm",
            duration=5,
            aspect_ratio="16:9",
            use_pins=None,
            pins=[],
            character=character_input() if with_character else None,
            style_images=[style_input(1)],
        )
    message = str(refused.value)
    assert "Kling O1 reference-to-video" in message and "Kling O3" in message
    assert ("image-to-video" if with_character else "text-to-video") in message


def test_the_style_image_limit_comes_from_each_models_schema():
    assert payloads.style_image_limit("fal-ai/kling-video/o1/reference-to-video") == 7
    assert payloads.style_image_limit("fal-ai/kling-video/o3/pro/reference-to-video") == 7
    assert payloads.style_image_limit("fal-ai/kling-video/v2.6/pro/image-to-video") == 0
    assert payloads.takes_style_images("fal-ai/kling-video/o1/reference-to-video")
    assert not payloads.takes_style_images("fal-ai/kling-video/v2.6/pro/text-to-video")


def test_the_payload_refuses_more_than_seven_inputs_whatever_the_builder_asked():
    element = {"frontal_image_url": "https://site/f.jpg", "reference_image_urls": ["https://site/r.jpg"]}
    request = payloads.PayloadInput(prompt="x", duration=5, aspect_ratio="16:9", elements=[element] * 5)
    assert payloads.reference_inputs(request.elements, ["https://site/s.jpg"] * 2) == 7
    payloads.kling_o1_reference(request)  # 5 elements of 2 images each: 5 inputs, accepted
    too_many = dataclasses.replace(request, image_urls=["https://site/s.jpg"] * 3)
    with pytest.raises(payloads.PayloadError, match="8 inputs"):
        payloads.kling_o1_reference(too_many)


@pytest.mark.parametrize("angles", [(0, 0), (6, 0), (2, 2), (6, 6)])
def test_two_pins_each_get_one_to_three_references(angles):
    _, elements, _ = prompts.build_elements([pin_input(1, angles[0]), pin_input(2, angles[1])])
    assert len(elements) == 2
    assert [len(e["reference_image_urls"]) for e in elements] == [max(1, min(3, a)) for a in angles]


# --- @ElementN tags ------------------------------------------------------------------------------


def test_tags_for_pins_the_prompt_does_not_mention_are_prepended():
    assert prompts.tag_prompt("walks into the bar", [pin_input(1), pin_input(2)]) == (
        "@Element1 @Element2 walks into the bar"
    )
    assert prompts.tag_prompt("@Element2 greets @Element1", [pin_input(1), pin_input(2)]) == (
        "@Element2 greets @Element1"
    )


def test_tags_naming_a_slot_are_rewritten_to_the_element_position_sent():
    # Slots 1 and 3 (slot 2 deactivated) are sent as the first and second element.
    assert prompts.tag_prompt("@Element3 hands a map to someone", [pin_input(1), pin_input(3)]) == (
        "@Element1 @Element2 hands a map to someone"
    )


def test_a_tag_naming_no_active_pin_is_refused_with_the_tags_to_use():
    with pytest.raises(PlanError, match=r"@Element5.*@Element1, @Element3"):
        prompts.tag_prompt("@Element5 waves", [pin_input(1), pin_input(3)])


# --- Image-to-video ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scene", "kind"),
    [
        ("She runs across the hangar", "full_body"),
        ("A fight breaks out on deck", "full_body"),
        ("She whispers a secret", "face_closeup"),
        ("He smiles and says goodbye", "face_closeup"),
        ("The ship drifts past Saturn", "full_body"),
        ("She laughs while she jumps", "full_body"),  # action wins over dialogue
    ],
)
def test_the_reference_suits_the_scene(scene, kind):
    assert prompts.choose_reference(scene, {"full_body", "face_closeup"}) == kind


def test_dialogue_falls_back_to_full_body_without_a_close_up():
    assert prompts.choose_reference("She whispers a secret", {"full_body"}) == "full_body"


@pytest.mark.parametrize(
    ("hair", "features", "extra"),
    [
        ("#3B2A20", ("short brown curly hair",), "blonde hair, platinum hair"),
        ("#1C1A1A", ("tall",), "blonde hair, platinum hair"),
        ("#D8B87A", ("tall",), "black hair, dark brown hair"),
        ("#EDEBE8", ("tall",), "black hair, dark brown hair"),
        ("#A5462A", ("tall",), "black hair"),
        ("#3B2A20", ("clean shaven jaw",), "blonde hair, platinum hair, beard, stubble"),
        ("#3B2A20", ("long beard",), "blonde hair, platinum hair, clean shaven"),
        ("#3B2A20", ("trimmed beard",), "blonde hair, platinum hair, clean shaven, long beard"),
        (None, ("full beard",), "clean shaven"),
        (None, ("no glasses", "short hair"), "glasses, sunglasses, long hair"),
        (None, ("wears glasses", "long hair"), "short hair"),
        (None, ("glasses-free look", "short brown curly hair"), None),  # not the measured traits' words
    ],
)
def test_negative_prompt_has_drift_words_opposite_hair_and_beard_rules(hair, features, extra):
    expected = f"{DRIFT}, {extra}" if extra else DRIFT
    assert prompts.negative_prompt_for(character_input(hair=hair, features=features)) == expected


def test_image_to_video_prompt_is_style_then_features_then_scene_then_quality():
    character = character_input(features=("short brown curly hair", "orange flight suit", "silver watch", "scar"))
    plan = prompts.plan_generation(
        prompt="  She runs   across the hangar. ",
        duration=10,
        aspect_ratio="9:16",
        use_pins=None,
        pins=[],
        character=character,
    )
    assert plan.mode == "image-to-video" and plan.reference_kind == "full_body"
    assert plan.prompt_used == (
        "Smiling astronaut in an orange flight suit. "
        # the top three locked features, less the one the style already says ("scar" is fourth)
        "Character has short brown curly hair, silver watch. "
        f"She runs across the hangar. {QUALITY}"
    )
    assert plan.arguments == {
        # v2.6: start_image_url, no aspect_ratio (the image's shape decides), sound said explicitly
        "prompt": plan.prompt_used,
        "start_image_url": "https://site/ref/full_body.jpg",
        "negative_prompt": f"{DRIFT}, blonde hair, platinum hair",
        "duration": "10",
        "generate_audio": False,
    }
    assert plan.model_id == "fal-ai/kling-video/v2.6/pro/image-to-video"


def test_features_the_style_already_names_are_not_repeated():
    character = character_input(features=("orange flight suit",))
    plan = prompts.plan_generation(
        prompt="She waves", duration=5, aspect_ratio="16:9", use_pins=None, pins=[], character=character
    )
    assert plan.prompt_used == f"Smiling astronaut in an orange flight suit. She waves. {QUALITY}"


# --- The mode decision ---------------------------------------------------------------------------


def test_pins_win_over_the_character_and_send_elements():
    plan = prompts.plan_generation(
        prompt="@Element2 looks up",
        duration=5,
        aspect_ratio="1:1",
        use_pins=None,
        pins=[pin_input(1), pin_input(2, angles=1)],
        character=character_input(),
    )
    assert plan.mode == "reference-to-video" and plan.model_id == "fal-ai/kling-video/o1/reference-to-video"
    assert plan.arguments == {
        "prompt": "@Element1 @Element2 looks up",
        "elements": [
            {"frontal_image_url": "https://site/p1/front.jpg", "reference_image_urls": ["https://site/p1/front.jpg"]},
            {"frontal_image_url": "https://site/p2/front.jpg", "reference_image_urls": ["https://site/p2/angle1.jpg"]},
        ],
        "duration": "5",
        "aspect_ratio": "1:1",
    }
    assert plan.pin_ids == [101, 102] and plan.negative_prompt == ""


@pytest.mark.parametrize(
    ("use_pins", "with_pins", "with_character"),
    [(False, True, True), (False, False, True), (None, False, False), (True, False, False), (False, False, False)],
)
def test_opting_out_or_nothing_locked_is_text_to_video(use_pins, with_pins, with_character):
    plan = prompts.plan_generation(
        prompt="A storm over the harbour",
        duration=5,
        aspect_ratio="16:9",
        use_pins=use_pins,
        pins=[pin_input(1)] if with_pins else [],
        character=character_input() if with_character else None,
    )
    assert plan.mode == "text-to-video" and plan.model_id == "fal-ai/kling-video/v2.6/pro/text-to-video"
    assert plan.arguments == {
        "prompt": "A storm over the harbour",
        "duration": "5",
        "aspect_ratio": "16:9",
        "generate_audio": False,
    }
    assert plan.pin_ids == [] and plan.elements == [] and plan.reference_kind == ""


@pytest.mark.parametrize(
    ("auto_switch", "use_pins", "pins_sent"),
    [
        (True, None, True),
        (True, True, True),
        (True, False, False),
        (False, None, False),
        (False, True, True),
        (False, False, False),
    ],
)
def test_pins_apply_when_switching_is_automatic_or_when_asked_for(auto_switch, use_pins, pins_sent):
    assert prompts.pins_apply(pins_offered=True, auto_switch=auto_switch, use_pins=use_pins) is pins_sent
    assert prompts.pins_apply(pins_offered=False, auto_switch=auto_switch, use_pins=use_pins) is False


def test_without_automatic_switching_pins_wait_to_be_asked_for_and_the_dna_drives_the_clip():
    pins, character = [pin_input(1, angles=1)], character_input()
    default = prompts.plan_generation(
        prompt="She runs",
        duration=5,
        aspect_ratio="16:9",
        use_pins=None,
        auto_switch=False,
        pins=pins,
        character=character,
    )
    assert default.mode == "image-to-video" and default.pin_ids == [] and default.elements == []
    assert default.arguments["start_image_url"] == "https://site/ref/full_body.jpg"
    assert "@Element" not in default.prompt_used

    nothing_locked = prompts.plan_generation(
        prompt="She runs", duration=5, aspect_ratio="16:9", use_pins=None, auto_switch=False, pins=pins, character=None
    )
    assert nothing_locked.mode == "text-to-video" and nothing_locked.pin_ids == []

    asked = prompts.plan_generation(
        prompt="She runs",
        duration=5,
        aspect_ratio="16:9",
        use_pins=True,
        auto_switch=False,
        pins=pins,
        character=character,
    )
    assert asked.mode == "reference-to-video" and asked.pin_ids == [101]
    assert asked.arguments["prompt"] == "@Element1 She runs"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"prompt": "   "}, "Describe the scene"),
        ({"duration": 7}, "5 or 10 seconds, not 7"),
        ({"duration": 11, "pins": [pin_input(1)]}, "3–10 seconds, not 11"),
        ({"with_audio": True, "pins": [pin_input(1)]}, "Kling O1 reference-to-video makes silent clips"),
        ({"aspect_ratio": "4:3"}, "16:9, 9:16, 1:1"),
    ],
)
def test_requests_the_provider_would_refuse_are_refused_first(kwargs, words):
    request = {
        "prompt": "A storm",
        "duration": 5,
        "aspect_ratio": "16:9",
        "use_pins": None,
        "pins": [],
        "character": None,
    } | kwargs
    with pytest.raises(PlanError, match=words):
        prompts.plan_generation(**request)


def test_the_prompt_limit_counts_the_injected_tags(settings):
    limit = settings.GENERATION_MAX_PROMPT_CHARS
    fits = "x" * (limit - len("@Element1 "))
    assert (
        len(
            prompts.plan_generation(
                prompt=fits, duration=5, aspect_ratio="16:9", use_pins=None, pins=[pin_input(1)], character=None
            ).prompt_used
        )
        == limit
    )
    with pytest.raises(PlanError, match=f"limit is {limit}"):
        prompts.plan_generation(
            prompt=fits + "y", duration=5, aspect_ratio="16:9", use_pins=None, pins=[pin_input(1)], character=None
        )


O1 = "fal-ai/kling-video/o1/reference-to-video"
I2V = "fal-ai/kling-video/v2.6/pro/image-to-video"
T2V = "fal-ai/kling-video/v2.6/pro/text-to-video"


@pytest.mark.parametrize(
    ("model_id", "duration", "with_audio", "cost"),
    [
        (O1, 3, False, "0.336"),
        (O1, 5, False, "0.560"),
        (O1, 10, False, "1.120"),
        (I2V, 5, False, "0.350"),
        (I2V, 5, True, "0.700"),
        (T2V, 10, False, "0.700"),
        (T2V, 10, True, "1.400"),
    ],
)
def test_cost_is_what_fal_bills_per_second_with_or_without_sound(model_id, duration, with_audio, cost):
    assert prompts.job_cost(model_id, duration, with_audio) == Decimal(cost)


def test_o1_takes_three_to_ten_seconds():
    for seconds in range(3, 11):
        plan = prompts.plan_generation(
            prompt="She runs", duration=seconds, aspect_ratio="16:9", use_pins=None, pins=[pin_input(1)], character=None
        )
        assert plan.arguments["duration"] == str(seconds) and plan.cost_usd == Decimal("0.112") * seconds


def test_sound_is_sent_and_priced_only_when_asked_for():
    plan = prompts.plan_generation(
        prompt="She sings",
        duration=5,
        aspect_ratio="16:9",
        use_pins=None,
        pins=[],
        character=character_input(),
        with_audio=True,
    )
    assert plan.arguments["generate_audio"] is True and plan.cost_usd == Decimal("0.700")


def test_a_model_switch_in_settings_picks_that_models_payload(settings):
    settings.GENERATION_MODEL_FOR_MODE = {
        **settings.GENERATION_MODEL_FOR_MODE,
        "image-to-video": "fal-ai/kling-video/v2.1/pro/image-to-video",
    }
    plan = prompts.plan_generation(
        prompt="She waves", duration=5, aspect_ratio="9:16", use_pins=None, pins=[], character=character_input()
    )
    # v2.1 spells it the old way: image_url and cfg_scale, no generate_audio
    assert set(plan.arguments) == {"prompt", "image_url", "negative_prompt", "duration", "cfg_scale"}
    assert plan.cost_usd == Decimal("0.490")
    with pytest.raises(PlanError, match="makes silent clips"):
        prompts.plan_generation(
            prompt="She waves",
            duration=5,
            aspect_ratio="9:16",
            use_pins=None,
            pins=[],
            character=character_input(),
            with_audio=True,
        )


def test_an_unknown_model_id_is_refused_with_the_known_ones(settings):
    settings.GENERATION_MODEL_FOR_MODE = {**settings.GENERATION_MODEL_FOR_MODE, "text-to-video": "fal-ai/made-up"}
    with pytest.raises(PlanError, match="'fal-ai/made-up' chosen for text-to-video is not in GENERATION_MODELS"):
        prompts.plan_generation(
            prompt="A storm", duration=5, aspect_ratio="16:9", use_pins=None, pins=[], character=None
        )
    from generation.apps import check_generation_models

    assert [e.id for e in check_generation_models()] == ["generation.E001"]


@pytest.mark.parametrize("model_id", sorted(payloads.BUILDERS))
def test_every_builder_output_fits_its_models_published_schema(model_id):
    request = payloads.PayloadInput(
        prompt="@Element1 walks",
        duration=5,
        aspect_ratio="16:9",
        negative_prompt="blur",
        image_url="https://site/ref/full_body.jpg",
        elements=[
            {"frontal_image_url": "https://site/p1/front.jpg", "reference_image_urls": ["https://site/p1/a.jpg"]}
        ],
    )
    assert payloads.validation_errors(model_id, payloads.build(model_id, request)) == []
    schema = payloads.schema_for(model_id)
    if schema["x-provider"] == "fal":
        assert schema["$comment"].startswith(f"Input of {model_id} on fal, from https://fal.ai/")
    else:  # the other providers' schemas say where they come from and when they were checked, too
        assert "from " in schema["$comment"] and "checked 20" in schema["$comment"]


def test_a_payload_for_the_wrong_version_breaks_the_schema_in_fals_words():
    # the v2.1 spelling sent to v2.6: fal answers 422, missing start_image_url and the extra fields named
    wrong = {"prompt": "x", "image_url": "https://site/a.jpg", "aspect_ratio": "16:9", "duration": "7"}
    errors = payloads.validation_errors(I2V, wrong)
    assert {"loc": ["body", "start_image_url"], "msg": "Field required", "type": "missing"} in errors
    assert {"loc": ["body", "duration"], "msg": "Input should be '5' or '10'", "type": "enum"} in errors
    assert any(e["type"] == "extra_forbidden" for e in errors)
    assert payloads.validation_errors("fal-ai/made-up", wrong) is None
