"""Shapes of the Character DNA API: the seed's "Get Character DNA" body, field for field."""

from rest_framework import serializers

from characters.dna.images import RENDER_STYLES
from characters.dna.services import DESCRIPTION_MAX, NAME_MAX, reference_path
from characters.models import Character, ReferenceImage
from common.absolute_urls import AbsoluteFileUrlField, absolute_url


class CreatorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class CharacterDNASerializer(serializers.ModelSerializer):
    story_name = serializers.CharField(source="story.title")
    reference_images = serializers.SerializerMethodField()
    creator = CreatorSerializer(allow_null=True)
    created_from_clip = serializers.IntegerField(source="created_from_clip_id", allow_null=True)
    group_id = serializers.IntegerField(
        allow_null=True,
        read_only=True,
        help_text="The character group (GET /stories/{id}/character-groups) it was locked from; new clips whose "
        "appearances join that group show this character.",
    )
    model_sheet_url = AbsoluteFileUrlField(source="model_sheet")
    dna_url = AbsoluteFileUrlField(source="dna_file")
    coverage = serializers.SerializerMethodField(help_text="What each reference image really shows.")
    feature_sources = serializers.SerializerMethodField(help_text="Each locked feature: measured or stated.")
    measured = serializers.JSONField(
        read_only=True,
        help_text="Per region: color, pixels, region_pixels, share, frames; the render style; per face trait "
        "(glasses, facial_hair, hair_length): value, frames and each frame's figures.",
    )

    class Meta:
        model = Character
        fields = [
            "character_id",
            "name",
            "story_id",
            "story_name",
            "status",
            "style_description",
            "color_palette",
            "locked_features",
            "reference_images",
            "created_from_clip",
            "group_id",
            "total_votes",
            "clips_used",
            "creator",
            "created_at",
            "allow_licensing",
            "model_sheet_url",
            "dna_url",
            "lock_error",
            "coverage",
            "palette_sources",
            "feature_sources",
            "render_style",
            "render_style_source",
            "measured",
        ]

    def get_reference_images(self, character: Character) -> dict[str, str]:
        request = self.context.get("request")
        return {
            ref.kind: absolute_url(request, reference_path(character, ref.kind))
            for ref in character.reference_images.all()
            if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE
        }

    def get_coverage(self, character: Character) -> dict[str, str]:
        return {
            ref.kind: ref.coverage
            for ref in character.reference_images.all()
            if ref.kind != ReferenceImage.Kind.EXTRA_ANGLE and ref.coverage
        }

    def get_feature_sources(self, character: Character) -> list[dict]:
        return [r for r in character.feature_sources if r.get("source") != "dropped"]


class CharacterPatchSerializer(serializers.Serializer):
    color_palette = serializers.DictField(child=serializers.CharField(), required=False)
    style_description = serializers.CharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX)
    locked_features = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    allow_licensing = serializers.BooleanField(required=False)
    name = serializers.CharField(required=False, max_length=NAME_MAX)
    render_style = serializers.ChoiceField(
        choices=list(RENDER_STYLES),
        required=False,
        allow_blank=True,
        help_text="Blank goes back to the measured suggestion.",
    )
