"""The marketplace API over HTTP with Bearer tokens: the gallery, buying, offers, wallet and grants."""

from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.models import Character, ReferenceImage
from marketplace import selectors, services
from marketplace.api.serializers import GalleryCharacterSerializer
from marketplace.models import ExclusiveOffer, LedgerEntry, License, Wallet
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db

GALLERY = "/api/v1/gallery/characters"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def assert_error(response, status: int, code: str, message_has: str = "") -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert message_has in error["message"]
    return error


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True)


@pytest.fixture
def creator():
    return UserFactory(username="creator")


@pytest.fixture
def character(creator):
    story = StoryFactory(title="Neon Streets")
    return CharacterFactory(
        character_id="kira_h9k",
        name="Kira",
        story=story,
        creator=creator,
        allow_licensing=True,
        total_votes=1567,
        clips_used=45,
    )


@pytest.fixture
def buyer(admin_user):
    user = UserFactory(username="buyer")
    services.credits_grant(user=user, amount=1000, reason="start", granted_by=admin_user)
    return user


def money():
    balances = sorted(Wallet.objects.values_list("user_id", "balance"))
    return balances, LedgerEntry.objects.count(), License.objects.count()


# --- Gallery ------------------------------------------------------------------------------------


def test_gallery_lists_licensable_canonical_characters_in_the_seed_shape(character):
    ReferenceImage.objects.create(character=character, kind="face_closeup", image="characters/kira_h9k/face.jpg")
    CharacterFactory(status=Character.Status.CANDIDATE, allow_licensing=True)
    CharacterFactory(status=Character.Status.ARCHIVED, allow_licensing=True)
    CharacterFactory(allow_licensing=False)
    # Links are on the request's host; the URLField check below wants a dotted one ("testserver" is not).
    body = client_for().get(GALLERY, HTTP_HOST="127.0.0.1").json()
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 1, "total_is_estimate": False, "has_next": False}
    [row] = body["characters"]
    assert {k: row[k] for k in ("character_id", "name", "story_name", "clips_used", "total_votes", "license_cost")} == {
        "character_id": "kira_h9k",
        "name": "Kira",
        "story_name": "Neon Streets",
        "clips_used": 45,
        "total_votes": 1567,
        "license_cost": 10,
    }
    assert row["thumbnail_url"] == "http://127.0.0.1/characters/kira_h9k/references/face_closeup"
    assert row["license_available"] is True
    assert set(row) == set(GalleryCharacterSerializer().fields), "the rows and their documented shape differ"
    assert GalleryCharacterSerializer(data=row).is_valid()


def test_gallery_sorts_pages_and_searches():
    now = timezone.now()
    rows = [
        CharacterFactory(name=name, allow_licensing=True, total_votes=votes, clips_used=used)
        for name, votes, used in [("Astra", 5, 50), ("Borin", 50, 5), ("Cass", 20, 20), ("Dax", 20, 1)]
    ]
    for age, character in enumerate(rows):  # Astra newest
        Character.objects.filter(pk=character.pk).update(created_at=now - timedelta(hours=age))

    def names(**params):
        return [c["name"] for c in client_for().get(GALLERY, params).json()["characters"]]

    assert names() == ["Borin", "Dax", "Cass", "Astra"]  # ties: newest id first
    assert names(sort="recent") == ["Astra", "Borin", "Cass", "Dax"]
    assert names(sort="used") == ["Astra", "Cass", "Borin", "Dax"]
    assert names(sort="popular", limit=2, page=2) == ["Cass", "Astra"]
    assert names(q="AS") == ["Cass", "Astra"]
    body = client_for().get(GALLERY, {"limit": 3, "page": 9}).json()
    assert body == {
        "characters": [],
        "pagination": {"page": 9, "limit": 3, "total": 4, "total_is_estimate": False, "has_next": False},
    }


@pytest.mark.parametrize("params", [{"sort": "cheapest"}, {"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "x"}])
def test_gallery_refuses_bad_parameters(params):
    assert_error(client_for().get(GALLERY, params), 400, "invalid")


def test_gallery_query_count_does_not_grow_with_the_page():
    def count_queries(limit, page=1):
        with CaptureQueriesContext(connection) as queries:
            assert client_for().get(GALLERY, {"limit": limit, "page": page}).status_code == 200
        return len(queries)

    def add(n):
        for _ in range(n):
            character = CharacterFactory(allow_licensing=True)
            ReferenceImage.objects.create(character=character, kind="face_closeup", image=f"{character.pk}.jpg")

    add(3)
    cold_few, warm_few = count_queries(2), count_queries(2)
    add(30)
    cache.clear()
    cold_many, warm_many = count_queries(30), count_queries(30)
    assert (cold_few, warm_few) == (cold_many, warm_many) == (2, 1)  # the total (until cached) and the page
    assert count_queries(10, page=3) == 1
    assert count_queries(10, page=4) == 1  # the last page knows its total: no count


def test_gallery_total_is_cached_briefly_but_pages_never_lose_rows(settings, character):
    for _ in range(2):
        CharacterFactory(allow_licensing=True, total_votes=5)
    assert client_for().get(GALLERY, {"limit": 1}).json()["pagination"]["total"] == 3  # counted, then cached
    newcomer = CharacterFactory(name="Newcomer", allow_licensing=True, total_votes=0)
    first = client_for().get(GALLERY, {"limit": 1}).json()["pagination"]
    assert first == {"page": 1, "limit": 1, "total": 3, "total_is_estimate": True, "has_next": True}  # cached
    # The last page: the cached total (3) would end the listing before the newcomer.
    last = client_for().get(GALLERY, {"limit": 1, "page": 4}).json()
    assert [c["name"] for c in last["characters"]] == ["Newcomer"]
    assert last["pagination"] == {"page": 4, "limit": 1, "total": 4, "total_is_estimate": False, "has_next": False}
    assert client_for().get(GALLERY, {"q": "kira"}).json()["pagination"]["total"] == 1  # one total per search
    newcomer.delete()
    settings.GALLERY_TOTAL_CACHE_SECONDS = 0
    assert client_for().get(GALLERY, {"limit": 1}).json()["pagination"]["total"] == 3


def test_a_character_opened_after_an_empty_gallery_was_counted_is_listed():
    assert client_for().get(GALLERY).json()["pagination"]["total"] == 0  # the empty total is cached
    CharacterFactory(name="Fresh", allow_licensing=True)
    body = client_for().get(GALLERY).json()
    assert [c["name"] for c in body["characters"]] == ["Fresh"]
    assert body["pagination"]["total"] == 1


def test_an_exclusive_character_shows_without_a_price(character, buyer, creator):
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)
    [row] = client_for().get(GALLERY).json()["characters"]
    assert (row["license_cost"], row["license_available"]) == (None, False)


# --- Buying ---------------------------------------------------------------------------------------


def test_buying_a_license(character, buyer, creator):
    response = client_for(buyer).post(
        f"/api/v1/characters/{character.character_id}/license", {"license_type": "single_use"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    license = License.objects.get()
    assert body == {
        "license_id": license.pk,
        "character_id": "kira_h9k",
        "license_type": "single_use",
        "credits_charged": 10,
        "valid_until": body["valid_until"],
        "uses_remaining": 1,
    }
    assert abs(parse_time(body["valid_until"]) - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert selectors.wallet_balance(buyer) == 990
    assert selectors.wallet_balance(creator) == 2


def test_unlimited_and_replayed_purchases(character, buyer):
    client = client_for(buyer)
    url = f"/api/v1/characters/{character.character_id}/license"
    first = client.post(url, {"license_type": "unlimited"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    again = client.post(url, {"license_type": "unlimited"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["uses_remaining"] is None
    assert selectors.wallet_balance(buyer) == 500


def test_every_refusal_is_a_clear_4xx_and_moves_no_money(character, buyer, creator, admin_user):
    url = f"/api/v1/characters/{character.character_id}/license"
    poor = UserFactory()
    services.credits_grant(user=poor, amount=9, reason="x", granted_by=admin_user)
    closed = CharacterFactory(allow_licensing=False)
    contributor = ClipFactory(story=character.story).uploader
    services.credits_grant(user=contributor, amount=100, reason="x", granted_by=admin_user)
    before = money()
    assert_error(
        client_for(buyer).post(url, {"license_type": "gold"}, format="json"), 400, "unknown_license_type", "single_use"
    )
    assert_error(client_for(buyer).post(url, {}, format="json"), 400, "invalid", "license_type")
    assert_error(
        client_for(poor).post(url, {"license_type": "single_use"}, format="json"),
        402,
        "insufficient_credits",
        "costs 10",
    )
    # The creator and a contributor of the character's story use it for free: no license is sold to them.
    for free in (creator, contributor):
        assert_error(
            client_for(free).post(url, {"license_type": "single_use"}, format="json"),
            409,
            "license_not_needed",
            "without a license",
        )
    assert_error(
        client_for(buyer).post(
            f"/api/v1/characters/{closed.character_id}/license", {"license_type": "single_use"}, format="json"
        ),
        409,
        "not_licensable",
    )
    assert_error(
        client_for(buyer).post("/api/v1/characters/nobody_here/license", {"license_type": "single_use"}, format="json"),
        404,
        "not_found",
    )
    assert client_for().post(url, {"license_type": "single_use"}, format="json").status_code == 401
    assert money() == before

    rival = UserFactory()
    services.credits_grant(user=rival, amount=2000, reason="x", granted_by=admin_user)
    offer = services.exclusive_offer_make(buyer=rival, character=character, credits=1000)
    services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)
    before = money()
    assert_error(client_for(buyer).post(url, {"license_type": "single_use"}, format="json"), 409, "exclusive_taken")
    assert money() == before


# --- Exclusive offers -------------------------------------------------------------------------------


def test_exclusive_offer_flow(character, buyer, creator):
    response = client_for(buyer).post(
        f"/api/v1/characters/{character.character_id}/exclusive-offers",
        {"credits": 1000, "message": "My saga"},
        format="json",
    )
    assert response.status_code == 201, response.content
    offer = response.json()
    assert (offer["status"], offer["credits"], offer["buyer"], offer["license_id"]) == ("pending", 1000, "buyer", None)
    services.license_purchase(buyer=buyer, character=character, license_type="pack_10")  # 920 left
    assert_error(
        client_for(buyer).post(
            f"/api/v1/characters/{character.character_id}/exclusive-offers", {"credits": 10}, format="json"
        ),
        400,
        "offer_too_low",
    )
    accept = f"/api/v1/exclusive-offers/{offer['offer_id']}/accept"
    assert_error(client_for(UserFactory()).post(accept), 403, "forbidden")
    assert_error(client_for(creator).post(accept), 402, "insufficient_credits")  # 1000 > 920: stays pending
    services.credits_grant(user=buyer, amount=80, reason="top up", granted_by=UserFactory(is_staff=True))
    accepted = client_for(creator).post(accept)
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    license = License.objects.get(pk=accepted.json()["license_id"])
    assert (license.license_type, license.royalty_paid) == ("exclusive", 500)
    assert selectors.wallet_balance(buyer) == 80, "the buyer's pack, replaced by the exclusive, is refunded (unused)"
    assert_error(client_for(creator).post(accept), 409, "offer_not_pending")
    assert_error(client_for(creator).post("/api/v1/exclusive-offers/999999/decline"), 404, "not_found")


def test_an_exclusive_offer_names_the_buyers_story(character, buyer, creator):
    url = f"/api/v1/characters/{character.character_id}/exclusive-offers"
    saga = StoryFactory(created_by=buyer)
    assert_error(
        client_for(buyer).post(url, {"credits": 1000, "story_id": StoryFactory().pk}, format="json"),
        400,
        "not_your_story",
    )
    assert_error(client_for(buyer).post(url, {"credits": 1000, "story_id": 999999}, format="json"), 404, "not_found")
    assert not ExclusiveOffer.objects.exists()
    response = client_for(buyer).post(url, {"credits": 1000, "story_id": saga.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["story_id"] == saga.pk
    accepted = client_for(creator).post(f"/api/v1/exclusive-offers/{response.json()['offer_id']}/accept")
    assert License.objects.get(pk=accepted.json()["license_id"]).story == saga


def test_declining_and_withdrawing_offers(character, buyer, creator):
    first = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    response = client_for(creator).post(
        f"/api/v1/exclusive-offers/{first.pk}/decline", {"note": "Too soon"}, format="json"
    )
    assert response.json()["status"] == "declined"
    second = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    assert_error(client_for(creator).post(f"/api/v1/exclusive-offers/{second.pk}/withdraw"), 403, "forbidden")
    assert client_for(buyer).post(f"/api/v1/exclusive-offers/{second.pk}/withdraw").json()["status"] == "withdrawn"
    assert not ExclusiveOffer.objects.filter(status="pending").exists()


# --- Me ---------------------------------------------------------------------------------------------


def test_my_licenses_and_wallet(character, buyer, creator):
    services.license_purchase(buyer=buyer, character=character, license_type="pack_10")
    services.license_consume_use(buyer, character, None, "job-1")
    [license] = client_for(buyer).get("/api/v1/me/licenses").json()
    assert (
        license["character_id"],
        license["license_type"],
        license["uses_remaining"],
        license["uses_granted"],
        license["is_valid"],
        license["state"],
    ) == ("kira_h9k", "pack_10", 9, 10, True, "active")

    wallet = client_for(buyer).get("/api/v1/me/wallet").json()
    assert wallet["balance"] == 920
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in wallet["ledger"]] == [
        ("purchase", -80, 920),
        ("grant", 1000, 1000),
    ]
    assert wallet["ledger"][0]["license_id"] == license["license_id"]
    assert client_for(creator).get("/api/v1/me/wallet").json()["balance"] == 12
    assert client_for(UserFactory()).get("/api/v1/me/wallet").json() == {"balance": 0, "ledger": []}
    assert client_for().get("/api/v1/me/wallet").status_code == 401
    assert client_for().get("/api/v1/me/licenses").status_code == 401


def test_admin_credit_grants(admin_user):
    user = UserFactory(username="newbie")
    url = "/api/v1/admin/credit-grants"
    response = client_for(admin_user).post(
        url, {"username": "newbie", "amount": 250, "reason": "Beta tester"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("username", "amount", "balance", "reason")} == {
        "username": "newbie",
        "amount": 250,
        "balance": 250,
        "reason": "Beta tester",
    }
    assert LedgerEntry.objects.get(pk=body["ledger_entry_id"]).created_by == admin_user
    assert (
        client_for(user).post(url, {"username": "newbie", "amount": 5, "reason": "me"}, format="json").status_code
        == 403
    )
    assert client_for().post(url, {"username": "newbie", "amount": 5, "reason": "x"}, format="json").status_code == 401
    assert_error(
        client_for(admin_user).post(url, {"username": "ghost", "amount": 5, "reason": "x"}, format="json"),
        400,
        "unknown_user",
    )
    assert_error(
        client_for(admin_user).post(url, {"username": "newbie", "amount": 0, "reason": "x"}, format="json"),
        400,
        "invalid",
        "amount",
    )
    assert_error(
        client_for(admin_user).post(url, {"username": "newbie", "amount": 5}, format="json"), 400, "invalid", "reason"
    )
    assert selectors.wallet_balance(user) == 250


def test_creator_turns_licensing_off_through_the_character_api(character, creator, buyer):
    response = client_for(creator).patch(
        f"/api/v1/characters/{character.character_id}", {"allow_licensing": False}, format="json"
    )
    assert response.status_code == 200, response.content
    assert client_for().get(GALLERY).json()["pagination"]["total"] == 0
    assert_error(
        client_for(buyer).post(
            f"/api/v1/characters/{character.character_id}/license", {"license_type": "single_use"}, format="json"
        ),
        409,
        "not_licensable",
    )
    response = client_for(buyer).patch(
        f"/api/v1/characters/{character.character_id}", {"allow_licensing": True}, format="json"
    )
    assert response.status_code == 403
