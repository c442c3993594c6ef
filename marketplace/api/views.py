"""The marketplace API: thin views over marketplace.services and marketplace.selectors.

Services raise ServiceError subclasses; common.exceptions.api_exception_handler turns them into the
common error body, so nothing here catches them.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from characters.models import Character, Story
from common.api_schema import ErrorSerializer, error_responses
from common.exceptions import NotFound, ServiceError
from marketplace import selectors, services
from marketplace.tiers import cheapest_cost

from .serializers import (
    CreditGrantResponseSerializer,
    CreditGrantSerializer,
    ExclusiveOfferCreateSerializer,
    ExclusiveOfferDecisionSerializer,
    ExclusiveOfferSerializer,
    GalleryQuerySerializer,
    GalleryResponseSerializer,
    LicensePurchaseResponseSerializer,
    LicensePurchaseSerializer,
    LicenseSerializer,
    WalletQuerySerializer,
    WalletSerializer,
    gallery_card,
)

TAG = "marketplace"


def _character_or_404(character_id: str) -> Character:
    character = Character.objects.select_related("story").filter(character_id=character_id).first()
    if character is None:
        raise NotFound(f"There is no character '{character_id}'.")
    return character


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class GalleryCharacterListApi(APIView):
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=[TAG],
        operation_id="gallery_characters",
        summary="Canonical characters open to licensing, a page at a time",
        parameters=[GalleryQuerySerializer],
        responses={200: GalleryResponseSerializer, **error_responses(400, 429)},
    )
    def get(self, request):
        params = GalleryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        page, limit = params.validated_data["page"], params.validated_data["limit"]
        listing = selectors.GalleryListing(sort=params.validated_data["sort"], query=params.validated_data.get("q", ""))
        rows = listing.page(page, limit)
        cheapest = cheapest_cost()
        return Response(
            {
                "characters": [gallery_card(character, cheapest, request) for character in rows],
                "pagination": {
                    "page": page,
                    "limit": limit,
                    "total": rows.total,
                    "total_is_estimate": rows.total_is_estimate,
                    "has_next": rows.has_next,
                },
            }
        )


class CharacterLicenseCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="character_license_purchase",
        summary="Buy a license to use a character in your stories",
        description="The buyer pays the tier's cost and the creator gets the tier's royalty (rounded down) in "
        "the same transaction. With an idempotency key (body field or `Idempotency-Key` header), a retried "
        "request returns the first purchase with status 200 instead of buying again.",
        request=LicensePurchaseSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: LicensePurchaseResponseSerializer,
            200: OpenApiResponse(LicensePurchaseResponseSerializer, description="A replayed purchase."),
            **error_responses(400, 401, 404),
            402: _error("Not enough credits (`insufficient_credits`); `error.details` has balance and required."),
            409: _error(
                "Not open to licensing (`not_licensable`), sold exclusively (`exclusive_taken`), no license "
                "needed: you created the character or contribute to its story (`license_not_needed`, "
                "`error.details.reason`), or the idempotency key was used for another purchase "
                "(`idempotency_key_reused`)."
            ),
        },
    )
    def post(self, request, character_id: str):
        character = _character_or_404(character_id)
        serializer = LicensePurchaseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = serializer.validated_data.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
        purchase = services.license_purchase(
            buyer=request.user,
            character=character,
            license_type=serializer.validated_data["license_type"],
            idempotency_key=key,
        )
        return Response(
            LicensePurchaseResponseSerializer(purchase.license).data,
            status=status.HTTP_201_CREATED if purchase.created else status.HTTP_200_OK,
        )


class CharacterExclusiveOfferCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="character_exclusive_offer_create",
        summary="Offer credits for the exclusive license of a character",
        description="Nothing is charged now: the creator (or an admin) accepts or declines. On acceptance the "
        "offer is charged, the creator gets 50 %, and while it lasts the character is used only in its own story and "
        "the buyer's (`story_id`, or the first story the buyer uses it in): no other license is sold, and the "
        "licenses other people hold stop, refunded for what they had left (unused uses pro rata, the remaining "
        "days of an unlimited one).",
        request=ExclusiveOfferCreateSerializer,
        responses={
            201: ExclusiveOfferSerializer,
            **error_responses(400, 401, 404),
            402: _error("Your balance does not cover the offer (`insufficient_credits`)."),
            400: _error("`story_id` is not one of your stories, or is the character's own (`not_your_story`)."),
            409: _error(
                "Not open to licensing, already exclusive, no license needed (`license_not_needed`), or you "
                "have a pending offer (`offer_pending`)."
            ),
        },
    )
    def post(self, request, character_id: str):
        character = _character_or_404(character_id)
        serializer = ExclusiveOfferCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        story_id = data.pop("story_id")
        story = None
        if story_id is not None:
            story = Story.objects.filter(pk=story_id).first()
            if story is None:
                raise NotFound(f"There is no story {story_id}.")
        offer = services.exclusive_offer_make(buyer=request.user, character=character, story=story, **data)
        return Response(ExclusiveOfferSerializer(offer).data, status=status.HTTP_201_CREATED)


_DECISION_ERRORS = {
    **error_responses(401, 403, 404),
    402: _error("The buyer can no longer pay the offer (`insufficient_credits`); it stays pending."),
    409: _error("The offer is no longer pending, the character is not open to licensing, or it is already exclusive."),
}


class ExclusiveOfferAcceptApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="exclusive_offer_accept",
        request=None,
        summary="Accept an exclusive offer (the character's creator or an admin)",
        responses={200: ExclusiveOfferSerializer, **_DECISION_ERRORS},
    )
    def post(self, request, offer_id: int):
        offer = services.exclusive_offer_accept(offer_id=offer_id, decided_by=request.user)
        return Response(ExclusiveOfferSerializer(offer).data)


class ExclusiveOfferDeclineApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="exclusive_offer_decline",
        request=ExclusiveOfferDecisionSerializer,
        summary="Decline an exclusive offer (the character's creator or an admin)",
        responses={
            200: ExclusiveOfferSerializer,
            **error_responses(400, 401, 403, 404),
            409: _error("The offer is no longer pending (`offer_not_pending`)."),
        },
    )
    def post(self, request, offer_id: int):
        serializer = ExclusiveOfferDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = services.exclusive_offer_decline(
            offer_id=offer_id, decided_by=request.user, note=serializer.validated_data["note"]
        )
        return Response(ExclusiveOfferSerializer(offer).data)


class ExclusiveOfferWithdrawApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="exclusive_offer_withdraw",
        request=None,
        summary="Withdraw your pending exclusive offer",
        responses={
            200: ExclusiveOfferSerializer,
            **error_responses(401, 403, 404),
            409: _error("The offer is no longer pending (`offer_not_pending`)."),
        },
    )
    def post(self, request, offer_id: int):
        offer = services.exclusive_offer_withdraw(offer_id=offer_id, buyer=request.user)
        return Response(ExclusiveOfferSerializer(offer).data)


class MyLicenseListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="me_licenses",
        summary="Your licenses, newest first",
        responses={200: LicenseSerializer(many=True), **error_responses(401)},
    )
    def get(self, request):
        licenses = selectors.user_licenses(request.user)
        return Response(LicenseSerializer(licenses, many=True, context={"now": timezone.now()}).data)


class MyWalletDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        operation_id="me_wallet",
        summary="Your credit balance and the newest ledger entries",
        parameters=[WalletQuerySerializer],
        responses={200: WalletSerializer, **error_responses(400, 401)},
    )
    def get(self, request):
        params = WalletQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ledger = selectors.wallet_ledger(request.user, limit=params.validated_data["limit"])
        return Response(WalletSerializer({"balance": selectors.wallet_balance(request.user), "ledger": ledger}).data)


class CreditGrantCreateApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=[TAG],
        operation_id="admin_credit_grant",
        summary="Grant credits to a user, with a reason (staff)",
        request=CreditGrantSerializer,
        responses={201: CreditGrantResponseSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        serializer = CreditGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = get_user_model().objects.filter(username=data["username"]).first()
        if user is None:
            raise ServiceError(f"There is no user '{data['username']}'.", code="unknown_user")
        entry = services.credits_grant(user=user, amount=data["amount"], reason=data["reason"], granted_by=request.user)
        return Response(CreditGrantResponseSerializer(entry).data, status=status.HTTP_201_CREATED)
