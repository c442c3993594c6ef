"""Request and response shapes of the marketplace API (the seed's gallery and license bodies, plus a few
fields it lacks). Rules live in marketplace.services, not here."""

from django.conf import settings
from rest_framework import serializers

from characters.dna.services import reference_path
from common.absolute_urls import absolute_url
from marketplace.models import ExclusiveOffer, LedgerEntry, License
from marketplace.selectors import DEFAULT_SORT, GALLERY_SORTS

# --- Gallery ------------------------------------------------------------------------------------


class GalleryQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=settings.GALLERY_API_MAX_LIMIT, default=20)
    sort = serializers.ChoiceField(choices=list(GALLERY_SORTS), default=DEFAULT_SORT)
    q = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Part of a name.")


class GalleryCharacterSerializer(serializers.Serializer):
    """The seed's gallery card, plus `license_available` and `created_at`. Documents the shape that
    `gallery_card` builds: the gallery is the hot path, so its rows skip DRF's per-field machinery."""

    character_id = serializers.CharField()
    name = serializers.CharField()
    story_name = serializers.CharField()
    clips_used = serializers.IntegerField()
    total_votes = serializers.IntegerField()
    thumbnail_url = serializers.URLField(allow_null=True, help_text="The face close-up, or null.")
    license_cost = serializers.IntegerField(
        allow_null=True, help_text="The cheapest license in credits; null while an exclusive license is held."
    )
    license_available = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def gallery_card(character, cheapest: int | None, request=None) -> dict:
    """One gallery row as GalleryCharacterSerializer documents it (a test holds the two together); its link on
    the host of `request`."""
    return {
        "character_id": character.character_id,
        "name": character.name,
        "story_name": character.story.title,
        "clips_used": character.clips_used,
        "total_votes": character.total_votes,
        "thumbnail_url": (
            absolute_url(request, reference_path(character, character.cover_kind)) if character.cover_image else None
        ),
        "license_cost": None if character.exclusive_taken else cheapest,
        "license_available": not character.exclusive_taken,
        "created_at": serializers.DateTimeField().to_representation(character.created_at),
    }


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Characters in the listing; may lag by a few seconds (see below).")
    total_is_estimate = serializers.BooleanField(
        help_text="True when `total` is a count cached for up to GALLERY_TOTAL_CACHE_SECONDS; the last page is exact."
    )
    has_next = serializers.BooleanField(help_text="Whether a next page has rows: trust this, not `total`, to page on.")


class GalleryResponseSerializer(serializers.Serializer):
    characters = GalleryCharacterSerializer(many=True)
    pagination = PaginationSerializer()


# --- Licenses ----------------------------------------------------------------------------------


class LicensePurchaseSerializer(serializers.Serializer):
    license_type = serializers.CharField(
        max_length=20, help_text="single_use, pack_10 or unlimited (exclusive licenses are offered for)."
    )
    idempotency_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Optional; the `Idempotency-Key` header works too. Retrying with it never buys twice.",
    )


class LicensePurchaseResponseSerializer(serializers.Serializer):
    license_id = serializers.IntegerField(source="pk")
    character_id = serializers.CharField(source="character.character_id")
    license_type = serializers.CharField()
    credits_charged = serializers.IntegerField(source="credits_paid")
    valid_until = serializers.DateTimeField(source="expires_at", allow_null=True, help_text="null: never expires.")
    uses_remaining = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")


class LicenseSerializer(serializers.ModelSerializer):
    license_id = serializers.IntegerField(source="pk")
    character_id = serializers.CharField(source="character.character_id")
    character_name = serializers.CharField(source="character.name")
    story_name = serializers.CharField(source="character.story.title")
    valid_until = serializers.DateTimeField(source="expires_at", allow_null=True)
    # A declared field (the metaclass takes it off the class); the stubs see BaseSerializer.is_valid.
    is_valid = serializers.SerializerMethodField(help_text="Usable now: active, uses left, not expired.")  # type: ignore[assignment]
    state = serializers.SerializerMethodField(help_text="active, used up, expired or revoked.")

    class Meta:
        model = License
        fields = [
            "license_id",
            "character_id",
            "character_name",
            "story_name",
            "license_type",
            "status",
            "state",
            "is_valid",
            "credits_paid",
            "royalty_paid",
            "uses_granted",
            "uses_remaining",
            "valid_until",
            "created_at",
        ]

    def get_is_valid(self, license) -> bool:
        return license.is_valid_at(self.context["now"])

    def get_state(self, license) -> str:
        return license.state_at(self.context["now"])


# --- Wallet and credits ----------------------------------------------------------------------------


class WalletQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50, help_text="Newest ledger entries.")


class LedgerEntrySerializer(serializers.ModelSerializer):
    license_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "reason", "license_id", "created_at"]


class WalletSerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    ledger = LedgerEntrySerializer(many=True)


class CreditGrantSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    amount = serializers.IntegerField(min_value=1, help_text="Credits to add.")
    reason = serializers.CharField(max_length=300, help_text="Kept in the user's ledger.")


class CreditGrantResponseSerializer(serializers.Serializer):
    username = serializers.CharField(source="wallet.user.username")
    amount = serializers.IntegerField()
    balance = serializers.IntegerField(source="balance_after")
    reason = serializers.CharField()
    ledger_entry_id = serializers.IntegerField(source="pk")


# --- Exclusive offers ----------------------------------------------------------------------------


class ExclusiveOfferCreateSerializer(serializers.Serializer):
    credits = serializers.IntegerField(min_value=1)
    message = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    story_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text='Your story the exclusive license is for ("your story only"); omitted: the first story you use '
        "the character in.",
    )


class ExclusiveOfferDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class ExclusiveOfferSerializer(serializers.ModelSerializer):
    offer_id = serializers.IntegerField(source="pk")
    character_id = serializers.CharField(source="character.character_id")
    buyer = serializers.CharField(source="buyer.username")
    license_id = serializers.IntegerField(allow_null=True)
    story_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = ExclusiveOffer
        fields = [
            "offer_id",
            "character_id",
            "buyer",
            "credits",
            "message",
            "story_id",
            "status",
            "decision_note",
            "decided_at",
            "license_id",
            "created_at",
        ]
