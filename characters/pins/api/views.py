"""Pinned characters over HTTP: parse, call `characters.pins.services`, describe the result. Errors are the
services' (`{"error": {...}}` from common.exceptions); nothing here catches them."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.models import Character, Clip, PinAngle, Story
from characters.pins import selectors, services
from characters.pins.api.serializers import (
    PinAngleCreateSerializer,
    PinBodySerializer,
    PinCreateSerializer,
    PinDeletedSerializer,
    PinDeleteQuerySerializer,
    PinListQuerySerializer,
    PinListSerializer,
    PinnedCharacterSerializer,
    PinPatchSerializer,
    PublicPinListSerializer,
    PublicPinnedCharacterSerializer,
)
from common.api_schema import error_responses
from common.exceptions import NotFound

TAGS = ["pinned characters"]
_ADMIN_ERRORS = (400, 401, 403, 404, 409, 422)


class CanPinCharacters(BasePermission):
    message = "Only staff with the “Can pin characters from clip frames” permission can use this."

    def has_permission(self, request, view):
        return selectors.can_pin(request.user)


def _get(model, pk, what: str):
    try:
        return model.objects.get(pk=pk)
    except model.DoesNotExist:
        raise NotFound(f"There is no {what} {pk}.") from None


def _pin_body(request, pin_id: int) -> dict:
    pin = selectors.story_pins(selectors.pin_get(pin_id).story).get(pk=pin_id)
    return {"ok": True, "character": PinnedCharacterSerializer(pin, context={"request": request}).data}


class PinnedCharacterListCreateDeleteApi(APIView):
    permission_classes = [CanPinCharacters]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permission first: a contributor gets 403
        services.require_pinning_enabled()

    @extend_schema(
        operation_id="admin_pinned_characters_list",
        summary="A story's pinned characters, active or not (staff)",
        tags=TAGS,
        parameters=[OpenApiParameter("story_id", int, required=True, description="The story.")],
        responses={200: PinListSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        query = PinListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        story = _get(Story, query.validated_data["story_id"], "story")
        pins = PinnedCharacterSerializer(selectors.story_pins(story), many=True, context={"request": request}).data
        return Response({"ok": True, "characters": pins})

    @extend_schema(
        operation_id="admin_pinned_characters_create",
        summary="Pin a character from a clip frame as @ElementN (staff)",
        description=(
            "Extracts the frame at `frame_timestamp` (or reuses the clip's stored last frame when it is null), "
            "checks it against Kling O1's element image rules (JPEG ≤ 10 MB, each side ≥ 300 px, aspect ratio "
            "0.4-2.5) and stores it as `pinned/{story_id}/{element_index}_frontal.jpg`. A taken or out-of-range "
            "slot, a clip of another story, a timestamp outside the clip or an unusable frame is refused and "
            "nothing is stored."
        ),
        tags=TAGS,
        request=PinCreateSerializer,
        responses={201: PinBodySerializer, **error_responses(*_ADMIN_ERRORS)},
    )
    def post(self, request):
        data = PinCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        character = None
        if values["character_id"]:
            try:
                character = Character.objects.get(character_id=values["character_id"])
            except Character.DoesNotExist:
                raise NotFound(f"There is no character '{values['character_id']}'.") from None
        pin = services.pin_create(
            story=_get(Story, values["story_id"], "story"),
            source_clip=_get(Clip, values["source_clip_id"], "clip"),
            element_index=values["element_index"],
            label=values["label"],
            frame_timestamp=values["frame_timestamp"],
            character=character,
            user=request.user,
        )
        return Response(_pin_body(request, pin.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="admin_pinned_characters_delete",
        summary="Unpin: delete a pin, its angles and their stored images (staff)",
        tags=TAGS,
        parameters=[OpenApiParameter("id", int, required=True, description="The pin.")],
        responses={200: PinDeletedSerializer, **error_responses(400, 401, 403, 404)},
    )
    def delete(self, request):
        query = PinDeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        pin = selectors.pin_get(query.validated_data["id"])
        services.pin_delete(pin=pin, user=request.user)
        return Response({"ok": True, "id": query.validated_data["id"]})


class PinnedCharacterDetailApi(APIView):
    permission_classes = [CanPinCharacters]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        services.require_pinning_enabled()

    @extend_schema(
        operation_id="admin_pinned_characters_retrieve",
        summary="One pinned character (staff)",
        tags=TAGS,
        responses={200: PinBodySerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, pin_id: int):
        return Response(_pin_body(request, pin_id))

    @extend_schema(
        operation_id="admin_pinned_characters_update",
        summary="Deactivate or reactivate a pin, or change its label (staff)",
        description="A deactivated pin keeps its images but generation stops using it.",
        tags=TAGS,
        request=PinPatchSerializer,
        responses={200: PinBodySerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, pin_id: int):
        data = PinPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.pin_update(pin=selectors.pin_get(pin_id), user=request.user, **data.validated_data)
        return Response(_pin_body(request, pin_id))


class PinAngleCreateApi(APIView):
    permission_classes = [CanPinCharacters]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        services.require_pinning_enabled()

    @extend_schema(
        operation_id="admin_pinned_characters_angles_create",
        summary="Add a reference angle to a pin from a frame of a clip of the same story (staff)",
        description="Stored as `pinned/{story_id}/{element_index}_angle_{k}.jpg`; a pin has at most 6 angles.",
        tags=TAGS,
        request=PinAngleCreateSerializer,
        responses={201: PinBodySerializer, **error_responses(*_ADMIN_ERRORS)},
    )
    def post(self, request, pin_id: int):
        data = PinAngleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.pin_add_angle(
            pin=selectors.pin_get(pin_id),
            source_clip=_get(Clip, data.validated_data["source_clip_id"], "clip"),
            frame_timestamp=data.validated_data["frame_timestamp"],
            user=request.user,
            confirm_other_character=data.validated_data["confirm_other_character"],
        )
        return Response(_pin_body(request, pin_id), status=status.HTTP_201_CREATED)


class PinAngleDeleteApi(APIView):
    permission_classes = [CanPinCharacters]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        services.require_pinning_enabled()

    @extend_schema(
        operation_id="admin_pinned_characters_angles_delete",
        summary="Remove one angle of a pin and its stored image (staff)",
        tags=TAGS,
        responses={200: PinBodySerializer, **error_responses(401, 403, 404)},
    )
    def delete(self, request, pin_id: int, position: int):
        pin = selectors.pin_get(pin_id)
        try:
            angle = pin.angles.select_related("pin").get(position=position)
        except PinAngle.DoesNotExist:
            raise NotFound(f"{pin.element_tag} has no angle {position}.") from None
        services.pin_remove_angle(angle=angle, user=request.user)
        return Response(_pin_body(request, pin_id))


class StoryPinnedCharacterListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="stories_pinned_characters_list",
        summary="The story's active pinned characters (any signed-in user)",
        description="What generation will use: `@Element{element_index}` with its frontal image and angles.",
        tags=TAGS,
        responses={
            200: OpenApiResponse(PublicPinListSerializer, description="Active pins by element index."),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request, story_id: int):
        services.require_pinning_enabled()
        story = _get(Story, story_id, "story")
        pins = selectors.story_active_pins(story)
        body = PublicPinnedCharacterSerializer(pins, many=True, context={"request": request}).data
        return Response({"ok": True, "characters": body})
