"""Stories and clips over HTTP: parse, call a service or selector, describe the result."""

from django.db.models import Prefetch
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from characters.clips import selectors, services
from characters.clips.api.serializers import (
    ClipFromUrlSerializer,
    ClipSerializer,
    ClipUploadSerializer,
    StoryCreateSerializer,
    StorySerializer,
)
from characters.models import Clip, Story
from common.api_schema import error_responses
from common.exceptions import NotFound
from common.pagination import MAX_PAGE_SIZE, PAGE_SIZE, LimitPagination
from common.parsers import JSONParser
from common.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from common.upload_size import exceeds_clip_size, too_large_message

# Room for the multipart envelope around the file when judging a request by its Content-Length.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _stories():
    clips = Clip.objects.only("id", "story_id", "position", "status", "progress").order_by("position", "created_at")
    return selectors.story_list().prefetch_related(Prefetch("clips", queryset=clips))


def _get_story(story_id: int) -> Story:
    try:
        return _stories().get(pk=story_id)
    except Story.DoesNotExist:
        raise NotFound(f"Story {story_id} does not exist.") from None


def _get_clip(clip_id: int) -> Clip:
    try:
        return selectors.clip_with_candidates(clip_id)
    except Clip.DoesNotExist:
        raise NotFound(f"Clip {clip_id} does not exist.") from None


def _clip_accepted(request, clip: Clip) -> Response:
    """202 with the clip as it is now and where to follow it (Location and `status_url`)."""
    body = ClipSerializer(_get_clip(clip.pk), context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


PaginatedStorySerializer = inline_serializer(
    "PaginatedStoryList",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": StorySerializer(many=True),
    },
)


class StoryListCreateApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="stories_list",
        summary="List stories, newest first",
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter(
                "limit", int, description=f"Stories per page (default {PAGE_SIZE}, at most {MAX_PAGE_SIZE})."
            ),
        ],
        responses={200: PaginatedStorySerializer, **error_responses(404)},
    )
    def get(self, request):
        paginator = LimitPagination()
        page = paginator.paginate_queryset(_stories(), request, view=self)
        return paginator.get_paginated_response(StorySerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="stories_create",
        summary="Create a story",
        request=StoryCreateSerializer,
        responses={201: StorySerializer, **error_responses(400, 401)},
    )
    def post(self, request):
        data = StoryCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        story = services.story_create(created_by=request.user, **data.validated_data)
        body = StorySerializer(_get_story(story.pk), context={"request": request}).data
        location = reverse("api-story-detail", args=[story.pk], request=request)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


class StoryDetailApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="stories_retrieve",
        summary="A story with its contributors and clips",
        responses={200: StorySerializer, **error_responses(404)},
    )
    def get(self, request, story_id: int):
        return Response(StorySerializer(_get_story(story_id), context={"request": request}).data)


class StoryClipUploadApi(APIView):
    """Add a clip to a story; any signed-in user may (contributors join a story by uploading)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    # Each upload costs a pipeline run: limited per user by the service (CLIP_UPLOAD_RATE), for pages and API alike.

    @extend_schema(
        operation_id="stories_clips_create",
        summary="Upload a clip (file or link) and queue its frame extraction",
        description=(
            "Send the file as multipart/form-data field `video`, or give `source_url` (JSON or form) for the "
            "server to fetch from a public http(s) host. The file is checked before anything is kept: really a "
            "video (any file ffmpeg reads with a video stream: MP4, MOV, WebM, MKV, AVI...) with a decodable frame "
            "and a measured duration, within the size, duration and resolution limits. The original is kept and an "
            "H.264 MP4 copy (`playable_video_url`) is made by the extraction run. "
            "A refused file leaves no clip behind. The answer is 202 with the clip; follow `status_url` "
            "(also the `Location` header) for progress and candidate frames."
        ),
        request={
            "multipart/form-data": ClipUploadSerializer,
            "application/x-www-form-urlencoded": ClipFromUrlSerializer,
            "application/json": ClipFromUrlSerializer,
        },
        responses={
            202: OpenApiResponse(ClipSerializer, description="Stored and queued for extraction."),
            **error_responses(400, 401, 404, 413, 415, 429, 502, 504),
        },
        examples=[
            OpenApiExample(
                "By link",
                value={"source_url": "https://example.com/clip.mp4"},
                request_only=True,
                media_type="application/json",
            )
        ],
    )
    def post(self, request, story_id: int):
        story = _get_story(story_id)
        self._refuse_oversized_body(request)
        data = ClipUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data.get("video") is not None:
            clip = services.clip_create(story=story, uploader=request.user, upload=data.validated_data["video"])
        else:
            url = data.validated_data["source_url"].strip()
            clip = services.clip_create_from_url(story=story, uploader=request.user, url=url)
        return _clip_accepted(request, clip)

    @staticmethod
    def _refuse_oversized_body(request) -> None:
        """Refuse a body far over the clip limit from its Content-Length, before reading any of it."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        if exceeds_clip_size(length - MULTIPART_OVERHEAD_BYTES):
            raise services.InvalidClip(
                too_large_message("The upload"), status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )


class ClipDetailApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="clips_retrieve",
        summary="A clip: extraction status, progress, a message in words, and its candidate frames",
        responses={200: ClipSerializer, **error_responses(404)},
    )
    def get(self, request, clip_id: int):
        return Response(ClipSerializer(_get_clip(clip_id), context={"request": request}).data)


class ClipExtractApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AnonRateThrottle, UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "extractions"

    @extend_schema(
        operation_id="clips_extract",
        summary="Run the clip's frame extraction again (replaces its candidates)",
        description="Allowed to the story's creator, the clip's uploader and staff.",
        request=None,
        responses={
            202: OpenApiResponse(ClipSerializer, description="Queued for extraction."),
            **error_responses(401, 403, 404, 409, 429),
        },
    )
    def post(self, request, clip_id: int):
        clip = services.clip_request_extraction(clip=_get_clip(clip_id), user=request.user)
        return _clip_accepted(request, clip)
