"""Shapes of the character-groups API. Output only describes; services decide."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from characters.clips.api.serializers import AbsoluteFileUrlField
from characters.groups.services import LABEL_MAX
from common.pagination import PAGE_SIZE as APPEARANCES_PAGE_SIZE  # the list shows the first page of .../appearances


class BoxSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class GroupAppearanceSerializer(serializers.Serializer):
    """One candidate frame showing the character; the box is in pixels of the original frame."""

    frame_id = serializers.IntegerField()
    appearance_id = serializers.IntegerField(allow_null=True, help_text="The track; `split` takes these.")
    clip_id = serializers.IntegerField(source="frame.clip_id")
    seconds = serializers.FloatField(source="frame.seconds")
    box = BoxSerializer()
    pose = serializers.CharField()
    thumbnail_url = AbsoluteFileUrlField(source="frame.thumbnail")


class CharacterGroupSerializer(serializers.Serializer):
    group_id = serializers.IntegerField(source="group.pk")
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; the stubs see Field\'s attribute
    kind = serializers.CharField(source="group.kind", help_text="face | marked")
    character_id = serializers.CharField(
        allow_null=True,
        help_text="The locked character of this group (GET /characters/{character_id}); null until a design of "
        "it wins a vote and is locked.",
    )
    cover_url = AbsoluteFileUrlField(source="cover.image", allow_null=True)
    clips = serializers.ListField(child=serializers.IntegerField(), source="clip_ids")
    seconds_by_clip = serializers.DictField(child=serializers.FloatField(), help_text="Time on screen per clip.")
    appearance_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Every track of the group.")
    appearances = serializers.SerializerMethodField(
        help_text=f"Best first: the first {APPEARANCES_PAGE_SIZE}; the rest page by page at `appearances_next`."
    )
    appearances_count = serializers.SerializerMethodField(help_text="Candidate frames showing the character.")
    appearances_next = serializers.SerializerMethodField(
        help_text="GET /character-groups/{id}/appearances?page=2 when there are more, else null."
    )

    @extend_schema_field(GroupAppearanceSerializer(many=True))
    def get_appearances(self, view) -> list:
        shown = GroupAppearanceSerializer(view.frames[:APPEARANCES_PAGE_SIZE], many=True, context=self.context)
        return list(shown.data)

    def get_appearances_count(self, view) -> int:
        return len(view.frames)

    def get_appearances_next(self, view) -> str | None:
        if len(view.frames) <= APPEARANCES_PAGE_SIZE:
            return None
        url = reverse("api-character-group-appearances", args=[view.group.pk]) + "?page=2"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class GroupAppearancePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = GroupAppearanceSerializer(many=True)


class CharacterGroupListSerializer(serializers.Serializer):
    groups = CharacterGroupSerializer(many=True)


class GroupPatchSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=LABEL_MAX, trim_whitespace=True)  # type: ignore[assignment]  # a declared field; the stubs see Field\'s attribute


class GroupMergeSerializer(serializers.Serializer):
    other_group_id = serializers.IntegerField()


class GroupSplitSerializer(serializers.Serializer):
    appearance_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


class MarkCreateSerializer(serializers.Serializer):
    seconds = serializers.FloatField(help_text="The time of the frame the box is drawn on.")
    box = BoxSerializer(help_text="Pixels of the original frame; inside it, at least 16 px a side.")
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=LABEL_MAX)  # type: ignore[assignment]  # a declared field; the stubs see Field\'s attribute
    group_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A marked group of the story to feed; none: a new group.",
    )


class MarkSerializer(serializers.Serializer):
    mark_id = serializers.IntegerField(source="pk")
    clip_id = serializers.IntegerField()
    group_id = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField()
    box = BoxSerializer()
    status = serializers.CharField(help_text="queued | running | done | failed")
    progress = serializers.IntegerField(help_text="0-100")
    error_message = serializers.CharField()
    followed_samples = serializers.IntegerField(help_text="Sampled frames of its shot it was followed in.")
    found_samples = serializers.IntegerField(help_text="Sampled frames of the story's other clips it was found in.")
    clips_searched = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class MarkWithGroupSerializer(serializers.Serializer):
    mark = MarkSerializer()
    group = CharacterGroupSerializer(allow_null=True)
