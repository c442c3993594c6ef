"""Shapes of the pinned-characters API, after the plan's bodies (`{ok, characters}`, `frontal_image_url`,
`reference_image_urls`, `source_frame_timestamp`)."""

from typing import cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from characters.models import PinAngle, PinnedCharacter
from common.absolute_urls import AbsoluteFileUrlField, absolute_file_url

# Read from the model, as voting/forms.py does (a CharField's max_length is always set).
PIN_LABEL_MAX = cast(int, PinnedCharacter._meta.get_field("label").max_length)

# --- Output ---------------------------------------------------------------------------------------------


class PinAngleSerializer(serializers.ModelSerializer):
    image_url = AbsoluteFileUrlField(source="image")
    source_clip_id = serializers.IntegerField(allow_null=True, read_only=True)
    source_frame_timestamp = serializers.FloatField(source="source_frame_seconds", allow_null=True, read_only=True)

    class Meta:
        model = PinAngle
        fields = ["position", "image_url", "width", "height", "source_clip_id", "source_frame_timestamp", "created_at"]
        read_only_fields = fields


class PinnedCharacterSerializer(serializers.ModelSerializer):
    """A pin as admins see it, active or not."""

    story_id = serializers.IntegerField(read_only=True)
    element_tag = serializers.CharField(read_only=True, help_text="The prompt tag, e.g. `@Element1`.")
    frontal_image_url = AbsoluteFileUrlField(source="frontal_image")
    reference_image_urls = serializers.SerializerMethodField(help_text="The angles' images, by position.")
    angles = PinAngleSerializer(many=True, read_only=True)
    source_clip_id = serializers.IntegerField(allow_null=True, read_only=True)
    source_frame_timestamp = serializers.FloatField(
        source="source_frame_seconds", allow_null=True, read_only=True, help_text="Seconds into the source clip."
    )
    pinned_by = serializers.CharField(source="pinned_by.username", allow_null=True, read_only=True)
    character_id = serializers.CharField(source="character.character_id", allow_null=True, read_only=True)

    class Meta:
        model = PinnedCharacter
        fields = [
            "id",
            "story_id",
            "element_index",
            "element_tag",
            "label",
            "frontal_image_url",
            "frontal_width",
            "frontal_height",
            "reference_image_urls",
            "angles",
            "source_clip_id",
            "source_frame_timestamp",
            "pinned_by",
            "character_id",
            "usage_count",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": {"type": "string", "format": "uri"}})
    def get_reference_image_urls(self, pin: PinnedCharacter) -> list[str]:
        request = self.context.get("request")
        return [absolute_file_url(request, angle.image) for angle in pin.angles.all()]  # type: ignore[misc]  # each has one


class PublicPinnedCharacterSerializer(serializers.ModelSerializer):
    """An active pin as contributors see it (the plan's public body)."""

    frontal_image_url = AbsoluteFileUrlField(source="frontal_image")
    reference_count = serializers.SerializerMethodField(help_text="How many extra angles the pin has.")

    class Meta:
        model = PinnedCharacter
        fields = ["element_index", "label", "frontal_image_url", "reference_count"]
        read_only_fields = fields

    def get_reference_count(self, pin: PinnedCharacter) -> int:
        return len(pin.angles.all())


class PinListSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=True)
    characters = PinnedCharacterSerializer(many=True)


class PinBodySerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=True)
    character = PinnedCharacterSerializer()


class PublicPinListSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=True)
    characters = PublicPinnedCharacterSerializer(many=True)


class PinDeletedSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=True)
    id = serializers.IntegerField(help_text="The deleted pin.")


# --- Input ----------------------------------------------------------------------------------------------


class PinListQuerySerializer(serializers.Serializer):
    story_id = serializers.IntegerField()


class PinDeleteQuerySerializer(serializers.Serializer):
    id = serializers.IntegerField()


_TIMESTAMP_HELP = "Seconds into the clip; null (or absent) pins the clip's stored last frame with no extraction."


class PinCreateSerializer(serializers.Serializer):
    story_id = serializers.IntegerField()
    source_clip_id = serializers.IntegerField(help_text="A clip of the same story.")
    frame_timestamp = serializers.FloatField(required=False, allow_null=True, default=None, help_text=_TIMESTAMP_HELP)
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=PIN_LABEL_MAX)  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
    element_index = serializers.IntegerField(help_text="N of @ElementN: 1 to the configured maximum (4).")
    character_id = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Optional: the canonical character shown."
    )


class PinAngleCreateSerializer(serializers.Serializer):
    source_clip_id = serializers.IntegerField(help_text="A clip of the pin's story.")
    frame_timestamp = serializers.FloatField(required=False, allow_null=True, default=None, help_text=_TIMESTAMP_HELP)
    confirm_other_character = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add the angle even though its face looks like another character than the pin's (logged).",
    )


class PinPatchSerializer(serializers.Serializer):
    is_active = serializers.BooleanField(required=False, help_text="false deactivates, true reactivates.")
    label = serializers.CharField(required=False, allow_blank=True, max_length=PIN_LABEL_MAX)  # type: ignore[assignment]  # a declared field; the stubs see Field's attribute
