"""Marketplace pages and admin: the gallery, the license panel, buying and offering with CSRF POSTs,
my licenses / offers / wallet, and the admin's grant view and actions."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.template import RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import reverse

from characters.models import Character, ReferenceImage
from marketplace import selectors, services
from marketplace.models import ExclusiveOffer, LedgerEntry, License
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def creator():
    return UserFactory(username="creator")


@pytest.fixture
def character(creator):
    return CharacterFactory(character_id="kira_h9k", name="Kira", creator=creator, allow_licensing=True)


@pytest.fixture
def buyer(admin_user):
    user = UserFactory(username="buyer")
    services.credits_grant(user=user, amount=100, reason="Welcome credits", granted_by=admin_user)
    return user


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, url: str, data: dict):
    """POST the way a browser does: first load a page for the CSRF cookie, then send the token back."""
    client.get(reverse("gallery"))
    return client.post(url, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def render_panel(character, user) -> str:
    request = RequestFactory().get(character.get_absolute_url())
    request.user = user
    return Template("{% load marketplace %}{% license_panel character %}").render(
        RequestContext(request, {"character": character})
    )


# --- Gallery page -------------------------------------------------------------------------------


def test_gallery_page_shows_cards_sorts_and_searches(client):
    kira = CharacterFactory(name="Kira", allow_licensing=True, total_votes=10, clips_used=1)
    ReferenceImage.objects.create(character=kira, kind="face_closeup", image="characters/kira/face.jpg")
    CharacterFactory(name="Nova", allow_licensing=True, total_votes=3, clips_used=9)
    CharacterFactory(name="Hidden", allow_licensing=False)
    CharacterFactory(name="Draft", status=Character.Status.CANDIDATE, allow_licensing=True)

    page = client.get(reverse("gallery")).content.decode()
    assert "Kira" in page and "Nova" in page and "Hidden" not in page and "Draft" not in page
    assert 'src="/media/characters/kira/face.jpg"' in page
    assert "from 10 credits" in page
    assert page.index("Kira") < page.index("Nova")
    used = client.get(reverse("gallery"), {"sort": "used"}).content.decode()
    assert used.index("Nova") < used.index("Kira")
    found = client.get(reverse("gallery"), {"q": "nov"}).content.decode()
    assert "Nova" in found and "Kira" not in found
    assert "No character matches" in client.get(reverse("gallery"), {"q": "zzz"}).content.decode()


def test_gallery_page_paginates(client, settings):
    settings.GALLERY_PAGE_SIZE = 2
    for n in range(5):
        CharacterFactory(name=f"Hero {n}", allow_licensing=True, total_votes=n)
    last = client.get(reverse("gallery"), {"page": 3}).content.decode()
    assert "Page 3 of 3" in last and "Hero 0" in last and "Hero 4" not in last
    assert "Hero 0" in client.get(reverse("gallery"), {"page": 99}).content.decode()  # past the end: the last page


def test_gallery_page_lists_a_character_opened_after_the_total_was_cached(client, settings):
    settings.GALLERY_PAGE_SIZE = 2
    for n in range(2):
        CharacterFactory(name=f"Hero {n}", allow_licensing=True, total_votes=10 + n)
    assert "2 characters" in client.get(reverse("gallery")).content.decode()  # total cached
    CharacterFactory(name="Latecomer", allow_licensing=True, total_votes=0)
    first = client.get(reverse("gallery")).content.decode()
    assert "about 3 characters" in first and 'rel="next"' in first  # the count lags, the pager does not
    second = client.get(reverse("gallery"), {"page": 2}).content.decode()
    assert "Latecomer" in second and "Page 2 of 2" in second


# --- The license panel ---------------------------------------------------------------------------


def test_panel_for_a_buyer_shows_tiers_balance_and_csrf_forms(character, buyer):
    html = render_panel(character, buyer)
    assert "Your balance: <strong>100</strong>" in html
    for label, cost in [("Single use", "10"), ("Pack of 10", "80"), ("Unlimited", "500")]:
        assert label in html and f"Buy for {cost}" in html
    assert html.count('name="csrfmiddlewaretoken"') >= 4  # three tiers and the offer form
    assert "You need 400 more credits" in html  # the unlimited tier is out of reach
    assert "Make an exclusive offer" in html


def test_panel_for_others(character, creator, buyer):
    anonymous = render_panel(character, type("Anon", (), {"is_authenticated": False, "pk": None})())
    assert "Log in to license Kira" in anonymous and "Buy for" not in anonymous
    mine = render_panel(character, creator)
    assert "Stop licensing" in mine and "Buy for" not in mine and "0 licenses sold" in mine
    assert "You can use this character without a license: you created it." in mine
    # A contributor of the character's story has free access too: told so, and offered nothing to buy.
    contributor = ClipFactory(story=character.story).uploader
    theirs = render_panel(character, contributor)
    assert "You can use this character without a license: you contribute to its story." in theirs
    assert "Buy for" not in theirs and "Make an exclusive offer" not in theirs and "Stop licensing" not in theirs
    draft = CharacterFactory(status=Character.Status.CANDIDATE, allow_licensing=True)
    assert "Only canonical characters can be licensed" in render_panel(draft, buyer)
    closed = CharacterFactory(allow_licensing=False)
    assert "does not offer licenses" in render_panel(closed, buyer)


# --- Buying and offering from the page --------------------------------------------------------------


def test_buying_from_the_panel(character, buyer, creator):
    client = signed_in(buyer)
    url = reverse("marketplace-buy", args=[character.character_id])
    response = csrf_post(
        client, url, {"license_type": "pack_10", "idempotency_key": "form-1", "next": character.get_absolute_url()}
    )
    assert response.status_code == 302 and response.url == character.get_absolute_url()
    assert flash(response) == ["You licensed Kira: pack of 10."]
    again = csrf_post(client, url, {"license_type": "pack_10", "idempotency_key": "form-1"})  # a double click
    assert again.status_code == 302
    assert License.objects.count() == 1
    assert selectors.wallet_balance(buyer) == 20
    assert selectors.wallet_balance(creator) == 12
    assert "Pack of 10" in render_panel(character, buyer) and "10 of 10 uses left" in render_panel(character, buyer)


def test_refusals_on_the_page_are_messages_and_move_no_money(character, buyer, creator):
    url = reverse("marketplace-buy", args=[character.character_id])
    response = csrf_post(signed_in(buyer), url, {"license_type": "unlimited"})
    assert flash(response) == ["Not enough credits: the unlimited license of Kira costs 500 and your balance is 100."]
    response = csrf_post(signed_in(creator), url, {"license_type": "single_use"})
    assert flash(response) == ["You can use this character without a license: you created it."]
    contributor = ClipFactory(story=character.story).uploader
    response = csrf_post(signed_in(contributor), url, {"license_type": "single_use"})
    assert flash(response) == ["You can use this character without a license: you contribute to its story."]
    assert not License.objects.exists()
    assert selectors.wallet_balance(buyer) == 100


def test_signed_out_visitors_cannot_buy(client, character):
    response = client.post(reverse("marketplace-buy", args=[character.character_id]), {"license_type": "single_use"})
    assert response.status_code == 302 and reverse("login") in response.url
    assert not License.objects.exists()
    for name in ("my-licenses", "my-wallet", "my-offers"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response.url


def test_a_post_without_the_csrf_token_is_refused(character, buyer):
    response = signed_in(buyer).post(
        reverse("marketplace-buy", args=[character.character_id]), {"license_type": "single_use"}
    )
    assert response.status_code == 403
    assert not License.objects.exists()


def test_offer_and_accept_from_the_pages(character, buyer, creator, admin_user):
    services.credits_grant(user=buyer, amount=1000, reason="more", granted_by=admin_user)
    saga, elsewhere = StoryFactory(title="My Saga", created_by=buyer), StoryFactory(title="Not Mine")
    panel = render_panel(character, buyer)
    assert "My Saga" in panel and "Not Mine" not in panel, "the offer form lists the buyer's own stories"
    response = csrf_post(
        signed_in(buyer),
        reverse("marketplace-offer", args=[character.character_id]),
        {"credits": "1000", "story": elsewhere.pk},
    )
    assert "Your offer was not sent" in flash(response)[0]
    response = csrf_post(
        signed_in(buyer),
        reverse("marketplace-offer", args=[character.character_id]),
        {"credits": "1000", "message": "For my saga", "story": saga.pk},
    )
    assert "Your offer of 1000 credits was sent" in flash(response)[0]
    assert ExclusiveOffer.objects.get().story == saga
    response = csrf_post(
        signed_in(buyer), reverse("marketplace-offer", args=[character.character_id]), {"credits": "5"}
    )
    assert flash(response) == ["An exclusive offer starts at 1000 credits."]
    offer = ExclusiveOffer.objects.get()
    assert "For my saga" in render_panel(character, creator)
    received = signed_in(creator).get(reverse("my-offers")).content.decode()
    assert "For my saga" in received and "Accept" in received

    stranger = csrf_post(signed_in(UserFactory()), reverse("marketplace-offer-decide", args=[offer.pk, "accept"]), {})
    assert flash(stranger) == ["Only the character's creator or an admin can accept or decline offers."]
    response = csrf_post(signed_in(creator), reverse("marketplace-offer-decide", args=[offer.pk, "accept"]), {})
    assert "Offer accepted" in flash(response)[0]
    assert License.objects.get().license_type == "exclusive"
    assert "licensed exclusively to another story" in render_panel(character, UserFactory())
    assert "You hold the exclusive license" in render_panel(character, buyer)
    assert signed_in(buyer).post(reverse("marketplace-offer-decide", args=[offer.pk, "explode"])).status_code in (
        403,
        404,
    )


def test_creator_toggles_licensing_from_the_panel(character, creator, buyer):
    url = reverse("marketplace-licensing", args=[character.character_id])
    response = csrf_post(signed_in(creator), url, {"allow": "0"})
    assert "closed to licensing" in flash(response)[0]
    character.refresh_from_db()
    assert not character.allow_licensing
    response = csrf_post(signed_in(buyer), url, {"allow": "1"})
    assert flash(response) == ["Only the character's creator or an admin can change licensing."]
    character.refresh_from_db()
    assert not character.allow_licensing


def test_next_never_leaves_the_site(character, buyer):
    response = csrf_post(
        signed_in(buyer),
        reverse("marketplace-buy", args=[character.character_id]),
        {"license_type": "single_use", "next": "https://evil.example/steal"},
    )
    assert response.url == character.get_absolute_url()


def test_my_licenses_and_wallet_pages(character, buyer):
    services.license_purchase(buyer=buyer, character=character, license_type="single_use")
    client = signed_in(buyer)
    licenses = client.get(reverse("my-licenses")).content.decode()
    assert "Kira" in licenses and "Single use" in licenses and "1 / 1" in licenses
    wallet = client.get(reverse("my-wallet")).content.decode()
    assert re.search(r'balance-card__value">90<', wallet)
    assert "Welcome credits" in wallet and "Single use license of Kira" in wallet and "-10" in wallet
    assert 'aria-current="page">Gallery<' in wallet  # the nav link


# --- Admin --------------------------------------------------------------------------------------------


def test_admin_grant_view(admin_user):
    user = UserFactory(username="lucky")
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:marketplace_wallet_grant")
    assert client.get(url, {"username": "lucky"}).status_code == 200
    response = client.post(url, {"username": "lucky", "kind": "grant", "amount": 75, "reason": "Beta tester"})
    assert response.status_code == 302, response.content
    entry = LedgerEntry.objects.get()
    assert (entry.amount, entry.reason, entry.created_by) == (75, "Beta tester", admin_user)
    assert LogEntry.objects.filter(object_id=str(entry.wallet_id), change_message__contains="Beta tester").exists()
    page = client.get(reverse("admin:marketplace_wallet_change", args=[entry.wallet_id])).content.decode()
    assert "Beta tester" in page and "Grant or adjust credits" in page

    refused = client.post(url, {"username": "lucky", "kind": "adjustment", "amount": -500, "reason": "oops"})
    assert refused.status_code == 200 and "Not enough credits" in refused.content.decode()
    missing = client.post(url, {"username": "ghost", "kind": "grant", "amount": 5, "reason": "x"})
    assert "There is no user" in missing.content.decode()
    assert selectors.wallet_balance(user) == 75

    staff = UserFactory(is_staff=True)  # staff without marketplace permissions
    client.force_login(staff)
    assert client.get(url).status_code == 403


def test_admin_pages_and_actions(admin_user, character, buyer, creator):
    services.credits_grant(user=buyer, amount=2000, reason="more", granted_by=admin_user)
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    client = Client()
    client.force_login(admin_user)
    for name in ("wallet", "ledgerentry", "license", "exclusiveoffer"):
        assert client.get(reverse(f"admin:marketplace_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:marketplace_license_change", args=[license.pk])).status_code == 200

    client.post(
        reverse("admin:marketplace_exclusiveoffer_changelist"), {"action": "accept", "_selected_action": [offer.pk]}
    )
    offer.refresh_from_db()
    assert offer.status == "accepted" and offer.decided_by == admin_user
    license.refresh_from_db()
    assert (license.status, license.refunded_credits) == ("revoked", 80), "the exclusive stopped the pack"
    exclusive = offer.license
    client.post(
        reverse("admin:marketplace_license_changelist"),
        {"action": "revoke_and_refund", "_selected_action": [exclusive.pk]},
    )
    exclusive.refresh_from_db()
    assert (exclusive.status, exclusive.refunded_credits) == ("revoked", 1000)
    assert LogEntry.objects.filter(object_id=str(exclusive.pk), change_message="revoked and refunded").exists()
    ledger_url = reverse("admin:marketplace_ledgerentry_change", args=[LedgerEntry.objects.first().pk])
    assert "Save" not in client.get(ledger_url).content.decode().split("submit-row")[-1][:200]


def test_character_page_carries_the_license_panel(client):
    character = CharacterFactory(name="Kira", allow_licensing=True)
    html = client.get(character.get_absolute_url()).content.decode()
    assert "Kira" in html
    for tier in ("Single use", "Pack of 10", "Unlimited"):
        assert tier in html
