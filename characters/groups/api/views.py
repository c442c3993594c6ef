"""Character groups over HTTP: parse, call `characters.groups.services`, describe the result."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.groups import selectors, services
from characters.groups.api.serializers import (
    CharacterGroupListSerializer,
    CharacterGroupSerializer,
    GroupAppearancePageSerializer,
    GroupAppearanceSerializer,
    GroupMergeSerializer,
    GroupPatchSerializer,
    GroupSplitSerializer,
    MarkCreateSerializer,
    MarkWithGroupSerializer,
)
from characters.models import CharacterGroup, Clip, Mark, Story
from common.api_schema import error_responses
from common.exceptions import NotFound
from common.pagination import MAX_PAGE_SIZE, PAGE_SIZE, LimitPagination

TAGS = ["character groups"]


def _story(story_id: int) -> Story:
    story = Story.objects.filter(pk=story_id).first()
    if story is None:
        raise NotFound(f"Story {story_id} does not exist.")
    return story


def _group(group_id: int) -> CharacterGroup:
    group = CharacterGroup.objects.select_related("story").filter(pk=group_id).first()
    if group is None:
        raise NotFound(f"Character group {group_id} does not exist.")
    return group


def _group_view(group: CharacterGroup) -> selectors.GroupView:
    return next(v for v in selectors.story_group_views(group.story) if v.group.pk == group.pk)


def _group_body(request, group: CharacterGroup) -> dict:
    return CharacterGroupSerializer(_group_view(group), context={"request": request}).data


def _mark(mark_id: int) -> Mark:
    mark = Mark.objects.filter(pk=mark_id).first()
    if mark is None:
        raise NotFound(f"Mark {mark_id} does not exist.")
    return mark


def _mark_body(request, mark: Mark) -> dict:
    view = selectors.mark_group_view(mark)
    return MarkWithGroupSerializer({"mark": mark, "group": view}, context={"request": request}).data


class StoryCharacterGroupListApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="stories_character_groups_list",
        tags=TAGS,
        summary="Who is who: the story's characters as found across its clips, each with its frames best first",
        responses={200: CharacterGroupListSerializer, **error_responses(404)},
    )
    def get(self, request, story_id: int):
        views = selectors.story_group_views(_story(story_id))
        return Response(CharacterGroupListSerializer({"groups": views}, context={"request": request}).data)


class CharacterGroupDetailApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="character_groups_retrieve",
        tags=TAGS,
        summary="One character group",
        responses={200: CharacterGroupSerializer, **error_responses(404)},
    )
    def get(self, request, group_id: int):
        return Response(_group_body(request, _group(group_id)))

    @extend_schema(
        operation_id="character_groups_update",
        tags=TAGS,
        summary="Rename a character group (contributors)",
        request=GroupPatchSerializer,
        responses={200: CharacterGroupSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, group_id: int):
        group = _group(group_id)
        data = GroupPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = services.group_rename(group=group, user=request.user, label=data.validated_data["label"])
        return Response(_group_body(request, group))


class CharacterGroupAppearanceListApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="character_groups_appearances_list",
        tags=TAGS,
        summary="A group's appearances (candidate frames showing the character), best first, page by page",
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter(
                "limit", int, description=f"Appearances per page (default {PAGE_SIZE}, at most {MAX_PAGE_SIZE})."
            ),
        ],
        responses={200: GroupAppearancePageSerializer, **error_responses(404)},
    )
    def get(self, request, group_id: int):
        view = _group_view(_group(group_id))
        paginator = LimitPagination()
        page: list[selectors.GroupFrame] | None = paginator.paginate_queryset(view.frames, request, view=self)  # type: ignore[arg-type]  # a list pages too
        body = GroupAppearanceSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(body)


class CharacterGroupMergeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="character_groups_merge",
        tags=TAGS,
        summary="Merge another group of the story into this one (contributors; logged)",
        request=GroupMergeSerializer,
        responses={200: CharacterGroupSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, group_id: int):
        group = _group(group_id)
        data = GroupMergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = services.group_merge(
            group=group, other_group_id=data.validated_data["other_group_id"], user=request.user
        )
        return Response(_group_body(request, group))


class CharacterGroupSplitApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="character_groups_split",
        tags=TAGS,
        summary="Move some appearances of this group into a new group (contributors; logged)",
        request=GroupSplitSerializer,
        responses={201: CharacterGroupSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, group_id: int):
        group = _group(group_id)
        data = GroupSplitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        new = services.group_split(group=group, appearance_ids=data.validated_data["appearance_ids"], user=request.user)
        return Response(_group_body(request, new), status=status.HTTP_201_CREATED)


class ClipMarkCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="clips_marks_create",
        tags=TAGS,
        summary="Mark a character that is not a face (contributors): a box on a frame; followed and found in a task",
        request=MarkCreateSerializer,
        responses={202: MarkWithGroupSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, clip_id: int):
        clip = Clip.objects.select_related("story").filter(pk=clip_id).first()
        if clip is None:
            raise NotFound(f"Clip {clip_id} does not exist.")
        data = MarkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mark = services.mark_create(clip=clip, user=request.user, **data.validated_data)
        mark.refresh_from_db()  # run at once when tasks are eager
        return Response(_mark_body(request, mark), status=status.HTTP_202_ACCEPTED)


class MarkDetailApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        operation_id="marks_retrieve",
        tags=TAGS,
        summary="A mark: its job's status and progress, and its group",
        responses={200: MarkWithGroupSerializer, **error_responses(404)},
    )
    def get(self, request, mark_id: int):
        return Response(_mark_body(request, _mark(mark_id)))


class MarkRerunApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="marks_rerun",
        tags=TAGS,
        summary="Run a mark again (contributors): follow and search afresh, replacing what it found; 409 while it runs",
        request=None,
        responses={202: MarkWithGroupSerializer, **error_responses(401, 403, 404, 409)},
    )
    def post(self, request, mark_id: int):
        mark = services.mark_rerun(mark=_mark(mark_id), user=request.user)
        mark.refresh_from_db()  # run at once when tasks are eager
        return Response(_mark_body(request, mark), status=status.HTTP_202_ACCEPTED)
