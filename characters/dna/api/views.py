"""The Character DNA over HTTP: read it, and correct it (admins) or open it to licensing (creator)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.dna import selectors, services
from characters.dna.api.serializers import CharacterDNASerializer, CharacterPatchSerializer
from characters.models import Character
from common.api_schema import error_responses
from common.exceptions import NotFound


def _get_character(character_id: str) -> Character:
    try:
        return selectors.character_queryset().get(character_id=character_id)
    except Character.DoesNotExist:
        raise NotFound(f"There is no character '{character_id}'.") from None


class CharacterDetailApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses={200: CharacterDNASerializer, **error_responses(404)})
    def get(self, request, character_id: str):
        character = _get_character(character_id)
        return Response(CharacterDNASerializer(character, context={"request": request}).data)

    @extend_schema(
        request=CharacterPatchSerializer,
        responses={200: CharacterDNASerializer, **error_responses(400, 401, 403, 404)},
        description="Admins correct `color_palette`, `style_description`, `locked_features`, `name` and "
        "`render_style` (the text built from them, dna.json and the model sheet are rewritten together); the "
        "creator or an admin sets `allow_licensing`.",
    )
    def patch(self, request, character_id: str):
        character = _get_character(character_id)
        serializer = CharacterPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.character_update(character=character, user=request.user, **data)
        return Response(CharacterDNASerializer(_get_character(character_id), context={"request": request}).data)
