"""Shapes of the generation API: the seed's request and status bodies, plus mode and cost."""
from rest_framework import serializers

from characters.clips.api.serializers import AbsoluteFileUrlField
from generation.models import GenerationJob
from generation.prompts import ASPECT_RATIOS, DURATIONS


class GenerateRequestSerializer(serializers.Serializer):
    story_id = serializers.IntegerField()
    character_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    prompt = serializers.CharField(max_length=2500, trim_whitespace=True)
    duration = serializers.ChoiceField(choices=DURATIONS, default=5)
    aspect_ratio = serializers.ChoiceField(choices=ASPECT_RATIOS, default="16:9")
    use_pins = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="true: use the story's pinned characters (Kling O1 reference-to-video). false: generate without "
        "pinned character or Character DNA (text-to-video). Omitted or null: the story's setting decides; pins are "
        "used automatically unless an admin turned automatic model switching off, in which case they are used "
        "only when asked for (see `pins_on_request` in the quote).",
    )
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=100)


class GenerateAcceptedSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    status = serializers.CharField()
    estimated_time = serializers.IntegerField(help_text="Seconds.")
    mode = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=8, decimal_places=3)
    status_url = serializers.URLField()


class FrameScoreSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    score = serializers.IntegerField()


class GenerationResultSerializer(serializers.Serializer):
    video_url = AbsoluteFileUrlField(source="video")
    consistency_score = serializers.IntegerField(allow_null=True)
    frame_scores = FrameScoreSerializer(many=True)
    character_id = serializers.CharField(source="character.character_id", allow_null=True, default=None)
    prompt_used = serializers.CharField()
    reference_image_used = serializers.CharField()
    duration = serializers.IntegerField()
    generated_at = serializers.DateTimeField(source="completed_at")


class GenerationJobSerializer(serializers.ModelSerializer):
    estimated_time = serializers.IntegerField(source="estimated_seconds")
    model = serializers.CharField(source="model_id")
    story_id = serializers.IntegerField()
    pinned_character_ids = serializers.ListField(child=serializers.IntegerField())
    result = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = [
            "job_id", "status", "estimated_time", "queue_position", "progress", "story_id", "mode", "model",
            "cost_usd", "pinned_character_ids", "error", "created_at", "result",
        ]

    def get_result(self, job: GenerationJob) -> dict | None:
        if job.status != GenerationJob.Status.COMPLETE:
            return None
        return GenerationResultSerializer(job, context=self.context).data


class QuoteSerializer(serializers.Serializer):
    mode = serializers.CharField()
    model = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=8, decimal_places=3)
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
        max_digits=8, decimal_places=3, allow_null=True,
        help_text="What the request would cost with the pins, when they are offered but not used.",
    )
    character_id = serializers.CharField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())
