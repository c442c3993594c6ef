"""Request and response shapes of the stories/clips API. Output only describes; services decide."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from characters.clips import selectors
from characters.models import CandidateFrame, Clip, Story
from common.absolute_urls import AbsoluteFileUrlField, absolute_url

# --- Output ---------------------------------------------------------------------------------


class CandidateFrameSerializer(serializers.ModelSerializer):
    """A candidate frame as the seed's ExtractedFrame, with an integer `id` (`frame_ids` name it)."""

    clip_id = serializers.IntegerField(read_only=True)
    timestamp = serializers.CharField(read_only=True, help_text="mm:ss")
    detections = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="One object per face: box, confidence, landmarks, coverage, occlusion.",
    )
    image_url = AbsoluteFileUrlField(source="image")
    thumbnail_url = AbsoluteFileUrlField(source="thumbnail")
    low_quality = serializers.BooleanField(
        read_only=True,
        help_text=(
            "Under MIN_QUALITY_SCORE: offered only because a character in it has no frame at the floor in the clip; "
            "that character's faces in `detections` say `low_quality: true` and name its `group_id`."
        ),
    )

    class Meta:
        model = CandidateFrame
        fields = [
            "id",
            "clip_id",
            "timestamp",
            "seconds",
            "rank",
            "quality",
            "low_quality",
            "dominant",
            "pose",
            "full_body",
            "occluded",
            "detections",
            "sharpness_score",
            "lighting_score",
            "face_score",
            "composition_score",
            "width",
            "height",
            "image_url",
            "thumbnail_url",
        ]
        read_only_fields = fields


class BlankAsNullURLField(serializers.URLField):
    """A URL that may be missing: the model keeps "" (a blank URLField), the API says null, as its schema does
    (an empty string is no URI)."""

    def to_representation(self, value):
        return value or None


class ClipSerializer(serializers.ModelSerializer):
    """A clip and where its extraction stands. The pages poll this shape: keep it stable."""

    story_id = serializers.IntegerField(read_only=True)
    uploader = serializers.CharField(source="uploader.username", read_only=True)
    source_url = BlankAsNullURLField(
        read_only=True, allow_null=True, help_text="The link the clip was fetched from; null when uploaded as a file."
    )
    message = serializers.CharField(
        source="status_message",
        read_only=True,
        help_text="What is happening to the clip, in words (Clip.status_message).",
    )
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    finished = serializers.BooleanField(
        source="is_finished", read_only=True, help_text="True once ready or failed: nothing more will change by itself."
    )
    duration = serializers.FloatField(source="duration_seconds", read_only=True)
    video_url = AbsoluteFileUrlField(source="video", help_text="The file as it was uploaded.")
    playable_video_url = AbsoluteFileUrlField(
        source="playable_video", help_text="H.264 MP4 copy that browsers play; null until the extraction made it."
    )
    last_frame_url = AbsoluteFileUrlField(source="last_frame")
    status_url = serializers.SerializerMethodField()
    candidates = CandidateFrameSerializer(many=True, read_only=True)

    class Meta:
        model = Clip
        fields = [
            "id",
            "story_id",
            "position",
            "uploader",
            "original_filename",
            "source_url",
            "status",
            "status_label",
            "finished",
            "progress",
            "message",
            "error_message",
            "warning_message",
            "duration",
            "fps",
            "width",
            "height",
            "codec",
            "size_bytes",
            "container",
            "video_url",
            "playable_video_url",
            "last_frame_url",
            "last_frame_seconds",
            "frames_analysed",
            "people_found",
            "is_winner",
            "created_at",
            "status_url",
            "candidates",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, clip: Clip) -> str:
        return absolute_url(self.context.get("request"), reverse("api-clip-detail", args=[clip.pk]))


class StoryClipSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The clip resource: GET it for status and candidates.")

    class Meta:
        model = Clip
        fields = ["id", "position", "status", "progress", "url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, clip: Clip) -> str:
        return absolute_url(self.context.get("request"), reverse("api-clip-detail", args=[clip.pk]))


class StorySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    contributors = serializers.SerializerMethodField(help_text="Usernames of everyone who contributed.")
    clips = StoryClipSerializer(many=True, read_only=True)

    class Meta:
        model = Story
        fields = ["id", "title", "slug", "description", "created_by", "created_at", "contributors", "clips"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_contributors(self, story: Story) -> list[str]:
        return list(selectors.story_contributors(story).values_list("username", flat=True))


# --- Input ----------------------------------------------------------------------------------


class StoryCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class ClipUploadSerializer(serializers.Serializer):
    """Either the file itself or a link to it; the link is fetched by the server."""

    video = serializers.FileField(
        required=False,
        allow_empty_file=True,
        use_url=False,
        help_text="The clip: MP4, MOV or WebM, within the size, duration and resolution limits.",
    )
    source_url = serializers.CharField(
        required=False,
        max_length=2000,
        help_text="A public http(s) link to the clip, fetched by the server (instead of `video`).",
    )

    def validate(self, attrs):
        has_video = attrs.get("video") is not None
        has_url = bool(attrs.get("source_url", "").strip())
        if has_video == has_url:
            raise serializers.ValidationError(
                "Send the clip as a `video` file (multipart/form-data) or give its `source_url`, one of the two."
                if not has_video
                else "Send either a `video` file or a `source_url`, not both."
            )
        return attrs


class ClipFromUrlSerializer(serializers.Serializer):
    """The JSON form of an upload: only the link."""

    source_url = serializers.CharField(max_length=2000, help_text="A public http(s) link to the clip.")
