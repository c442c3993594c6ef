"""Shapes of the generation API: the seed's request and status bodies, plus mode and cost."""

from rest_framework import serializers

from common.absolute_urls import AbsoluteFileUrlField
from generation.models import GenerationJob
from generation.payloads import MAX_INPUTS
from generation.prompts import ASPECT_RATIOS
from generation.quotes import style_reference_kinds


class GenerateRequestSerializer(serializers.Serializer):
    story_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The story the clip is for. Omitted (the seed's body): the story of `character_id`, if you created "
        "the character or contributed to its story; otherwise a 400 says which story_id to give.",
    )
    character_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    group_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Without `character_id`: use the story's locked character of this character group (see "
        "`GET /stories/{id}/character-groups`). Neither given: the story's latest locked character. The quote's "
        "`character_choice` says which character is used and why.",
    )
    prompt = serializers.CharField(max_length=2500, trim_whitespace=True)
    duration = serializers.IntegerField(
        min_value=1,
        max_value=60,
        default=5,
        help_text="Seconds. Each model makes its own lengths (Kling O1: 3-10, Kling v2.6: 5 or 10); another is "
        "refused with the ones it makes.",
    )
    aspect_ratio = serializers.ChoiceField(choices=ASPECT_RATIOS, default="16:9")
    with_sound = serializers.BooleanField(
        default=False,
        help_text="Ask the model for native audio (priced higher, e.g. Kling v2.6 $0.14/s instead of $0.07/s). "
        "Sent explicitly as `generate_audio`; models without audio refuse it.",
    )
    use_pins = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: use the story's pinned characters (Kling O1 reference-to-video). false: generate without "
        "pinned character or Character DNA (text-to-video). Omitted or null: the story's setting decides; pins are "
        "used automatically unless an admin turned automatic model switching off, in which case they are used "
        "only when asked for (see `pins_on_request` in the quote).",
    )
    video_element_pin = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="The element index of a pinned character to send as its source clip (a video element) instead of "
        "its images. Kling O3 reference-to-video only (give its `model_id`): one video per request, and at most 4 "
        "inputs with it; the quote's `video_element_choices` says which pins' clips can go and why not.",
    )
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=100)
    model_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=120,
        help_text="One of the models GET /api/generate/models offers, of the mode the request gets (image-to-video "
        "for a character, reference-to-video with pins, text-to-video otherwise). Omitted: the mode's default model.",
    )
    style_reference_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=style_reference_kinds()),
        required=False,
        default=list,
        max_length=MAX_INPUTS,
        help_text="Style reference images from the character's DNA (its reference kinds, or `model_sheet`), sent as "
        "@Image1... in this order. Only reference-to-video models whose schema takes `image_urls` (Kling O1, O3) "
        "use them; others refuse them. The pins come first in the 7-input budget: style images that do not fit are "
        "left out, and the quote says which (`left_out_style_references`).",
    )
    style_images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        default=list,
        max_length=MAX_INPUTS,
        help_text="Multipart: uploaded style reference images, after the DNA ones. JPEG, PNG or WebP by content, at "
        "most 10 MB, each side at least 300 px; stored re-encoded as JPEG with the job.",
    )


class OfferedModelSerializer(serializers.Serializer):
    model_id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    provider = serializers.CharField(help_text="Whose model it is: fal, replicate, runway or luma.")
    runs_on = serializers.CharField(
        help_text="Who makes the clip here: the provider, or `offline` (no key: a free preview made on this machine)."
    )
    offline_preview = serializers.BooleanField()
    mode = serializers.CharField(source="capabilities.mode")
    references = serializers.IntegerField(
        source="capabilities.references", help_text="Reference images one request carries."
    )
    durations = serializers.ListField(child=serializers.IntegerField(), source="capabilities.durations")
    aspect_ratios = serializers.ListField(child=serializers.CharField(), source="capabilities.aspect_ratios")
    sound = serializers.BooleanField(source="capabilities.audio")
    webhooks = serializers.BooleanField(source="capabilities.webhooks")
    usd_per_second = serializers.DecimalField(
        max_digits=8, decimal_places=3, help_text="What the provider bills per second of video."
    )
    usd_per_second_audio = serializers.DecimalField(max_digits=8, decimal_places=3, allow_null=True)
    price_note = serializers.CharField(
        help_text="Why the price is not confirmed from the provider's own page; empty when it is."
    )


class GenerateAcceptedSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    status = serializers.CharField(help_text="`processing`, as in the seed, for every accepted job.")
    state = serializers.CharField(help_text="The finer state: queued, submitted, processing, ... (as GET shows).")
    estimated_time = serializers.IntegerField(help_text="Seconds.")
    mode = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=8, decimal_places=3)
    would_cost_usd = serializers.DecimalField(max_digits=8, decimal_places=3)
    provider = serializers.CharField()
    status_url = serializers.URLField()


class CharacterFrameScoreSerializer(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.IntegerField()
    basis = serializers.CharField()
    face_found = serializers.BooleanField()


class FrameScoreSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    score = serializers.IntegerField()
    basis = serializers.CharField(
        default="face",
        help_text="`face`, or `appearance` for a marked (non-face) character's keypoints and colours; `mixed` when "
        "several characters of both kinds were scored.",
    )
    characters = CharacterFrameScoreSerializer(
        many=True,
        required=False,
        help_text="When the job asked for several characters: each one's own score in this frame, against its own "
        "references; `score` is their mean.",
    )


class GenerationResultSerializer(serializers.Serializer):
    video_url = AbsoluteFileUrlField(source="video")
    consistency_score = serializers.IntegerField(allow_null=True)
    frame_scores = FrameScoreSerializer(many=True)
    character_id = serializers.CharField(source="character.character_id", allow_null=True, default=None)
    prompt_used = serializers.CharField()
    reference_image_used = serializers.CharField()
    duration = serializers.IntegerField()
    generated_at = serializers.DateTimeField(source="completed_at")


class StyleReferenceSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="N of @ImageN: the place in `image_urls`.")
    source = serializers.CharField(  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
        help_text="`dna` (the character's reference or model sheet) or `upload`."
    )
    kind = serializers.CharField(help_text="The DNA reference kind or `model_sheet`; empty for an upload.")
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    url = serializers.CharField(help_text="The absolute URL sent to the provider.")


class LeftOutStyleSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="Its place among the style images asked for.")
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    reason = serializers.CharField()


class GenerationJobSerializer(serializers.ModelSerializer):
    estimated_time = serializers.IntegerField(source="estimated_seconds")
    offline_preview = serializers.BooleanField(source="is_offline_preview")
    consistency_score_meaningful = serializers.SerializerMethodField()
    consistency_note = serializers.SerializerMethodField()
    model = serializers.CharField(source="model_id")
    finished = serializers.BooleanField(
        source="is_finished", read_only=True, help_text="True once complete, failed or cancelled."
    )
    story_id = serializers.IntegerField()
    pinned_character_ids = serializers.ListField(child=serializers.IntegerField())
    style_references = StyleReferenceSerializer(many=True, help_text="The style images the job sent, @Image1 first.")
    character_ids = serializers.SerializerMethodField(
        help_text="Every character the clip is attributed to (license uses, clips_used): with pins, those whose "
        "pins it sent."
    )
    result = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = [
            "job_id",
            "status",
            "finished",
            "estimated_time",
            "queue_position",
            "progress",
            "story_id",
            "mode",
            "model",
            "provider",
            "offline_preview",
            "with_audio",
            "cost_usd",
            "would_cost_usd",
            "pinned_character_ids",
            "style_references",
            "character_ids",
            "consistency_score_meaningful",
            "consistency_note",
            "error",
            "created_at",
            "result",
        ]

    def get_character_ids(self, job: GenerationJob) -> list[str]:
        return sorted(job.characters.values_list("character_id", flat=True))

    def get_consistency_score_meaningful(self, job: GenerationJob) -> bool:
        return not job.is_offline_preview

    def get_consistency_note(self, job: GenerationJob) -> str:
        return job.consistency_note

    def get_result(self, job: GenerationJob) -> dict | None:
        if job.status != GenerationJob.Status.COMPLETE:
            return None
        return GenerationResultSerializer(job, context=self.context).data


class LeftOutPinSerializer(serializers.Serializer):
    element_index = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    reason = serializers.CharField()


class VideoElementSerializer(serializers.Serializer):
    element_index = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    clip_id = serializers.IntegerField(help_text="The pin's source clip, whose playable copy is sent.")
    video_url = serializers.URLField()
    text = serializers.CharField(help_text="What goes as video, in words.")


class VideoChoiceSerializer(serializers.Serializer):
    element_index = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    usable = serializers.BooleanField(help_text="Its source clip can go as a video element.")
    reason = serializers.CharField(allow_blank=True, help_text="Why not, when it cannot.")


class QuoteSerializer(serializers.Serializer):
    mode = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField(
        help_text="Who makes the clip: `fal`, `replicate`, `runway`, `luma`, or `offline` (a local preview, free)."
    )
    model_id = serializers.CharField(help_text="The model the arguments are for.")
    arguments = serializers.DictField(help_text="The exact body that would be sent to the model.")
    offline_preview = serializers.BooleanField()
    summary = serializers.CharField(help_text="Who makes the clip and what it costs, in words.")
    with_sound = serializers.BooleanField()
    cost_usd = serializers.DecimalField(
        max_digits=8, decimal_places=3, help_text="What this request costs (0 for an offline preview)."
    )
    would_cost_usd = serializers.DecimalField(
        max_digits=8, decimal_places=3, help_text="What the same request costs at the model's provider."
    )
    left_out_elements = LeftOutPinSerializer(
        many=True, help_text="Active pins this request does not send, and why (said before anything is spent)."
    )
    style_references = StyleReferenceSerializer(
        many=True, help_text="The style images this request sends, @Image1 first (their URLs are `image_urls`)."
    )
    left_out_style_references = LeftOutStyleSerializer(
        many=True, help_text="Style images asked for that do not fit beside the pins, and why (pins come first)."
    )
    prompt_used = serializers.CharField()
    pinned_elements = serializers.ListField(child=serializers.DictField(), help_text="The pins this request sends.")
    available_pinned_elements = serializers.ListField(
        child=serializers.DictField(), help_text="The story's active pins, sent or not."
    )
    pins_on_request = serializers.BooleanField(
        help_text="The story has pins but automatic switching to reference-to-video is off: send `use_pins: true` "
        "to use them."
    )
    reference_cost_usd = serializers.DecimalField(
        max_digits=8,
        decimal_places=3,
        allow_null=True,
        help_text="What the request would cost with the pins, when they are offered but not used.",
    )
    character_id = serializers.CharField(allow_null=True)
    character_choice = serializers.CharField(help_text="Which character the clip uses and why, in words.")
    character_ids = serializers.ListField(
        child=serializers.CharField(),
        help_text="Every character the clip would be attributed to (a license use each, where one is needed).",
    )
    notes = serializers.ListField(child=serializers.CharField())
    video_element = VideoElementSerializer(
        allow_null=True, help_text="The pin sent as a video element (its source clip), or null."
    )
    video_element_choices = VideoChoiceSerializer(
        many=True, help_text="Each active pin as a possible video element (`video_element_pin`)."
    )
