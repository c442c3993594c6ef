"""The admin lock endpoint: a submission becomes the story's canonical character (Character DNA)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.dna.api.serializers import CharacterDNASerializer
from characters.dna.selectors import character_queryset
from characters.models import Character
from common.api_schema import error_responses
from voting import services
from voting.models import CHARACTER_NAME_MAX


class LockRequestSerializer(serializers.Serializer):
    submission_id = serializers.IntegerField()
    character_name = serializers.CharField(required=False, allow_blank=True, max_length=CHARACTER_NAME_MAX)


class CharacterLockApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=LockRequestSerializer,
        responses={
            201: CharacterDNASerializer,
            200: CharacterDNASerializer,
            **error_responses(400, 401, 403, 404, 409, 422),
        },
        description="Lock a submission into the story's canonical character. A submission still in an open vote "
        "wins it by admin decision (recorded as an override). Locking the same submission again returns the "
        "same character (200).",
    )
    def post(self, request, story_id: int):
        serializer = LockRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission_id = serializer.validated_data["submission_id"]
        existed = Character.objects.filter(
            origin_submission_id=submission_id, status=Character.Status.CANONICAL
        ).exists()
        character = services.submission_lock_by_admin(
            submission_id=submission_id,
            admin=request.user,
            story_id=story_id,
            character_name=serializer.validated_data.get("character_name", ""),
        )
        body = CharacterDNASerializer(character_queryset().get(pk=character.pk), context={"request": request}).data
        return Response(body, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)
