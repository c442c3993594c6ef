"""License sales, royalties, exclusive offers, the access rule and license uses, through the services."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from characters.dna import services as dna_services
from characters.models import Character
from common.exceptions import ServiceError
from marketplace import selectors, services
from marketplace.models import ExclusiveOffer, LedgerEntry, License, LicenseUse, Wallet
from tests.support.factories import CharacterFactory, ClipFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def fund(admin_user):
    def fund(user, amount):
        services.credits_grant(user=user, amount=amount, reason="test funds", granted_by=admin_user)
        return user

    return fund


@pytest.fixture
def creator():
    return UserFactory(username="creator")


@pytest.fixture
def character(creator):
    return CharacterFactory(name="Kira", creator=creator, allow_licensing=True)


@pytest.fixture
def buyer(fund):
    return fund(UserFactory(username="buyer"), 1000)


def balance(user) -> int:
    return selectors.wallet_balance(user)


def assert_books_balance():
    """Every wallet's balance equals the sum of its ledger, and every sale splits exactly."""
    for wallet in Wallet.objects.all():
        assert wallet.balance == selectors.ledger_sum(wallet) >= 0
    for license in License.objects.all():
        assert license.royalty_paid + license.platform_fee == license.credits_paid


def money_snapshot():
    return (
        sorted(Wallet.objects.values_list("user_id", "balance")),
        LedgerEntry.objects.count(),
        License.objects.count(),
    )


# --- Buying -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("license_type", "cost", "uses", "days", "royalty"),
    [("single_use", 10, 1, 30, 2), ("pack_10", 80, 10, 90, 12), ("unlimited", 500, None, 365, 50)],
)
def test_buying_a_tier_charges_the_buyer_and_pays_the_creator(
    buyer, creator, character, license_type, cost, uses, days, royalty
):
    before = timezone.now()
    purchase = services.license_purchase(buyer=buyer, character=character, license_type=license_type)
    license = purchase.license
    assert purchase.created
    assert (license.license_type, license.credits_paid, license.royalty_paid, license.platform_fee) == (
        license_type,
        cost,
        royalty,
        cost - royalty,
    )
    assert license.uses_granted == license.uses_remaining == uses
    assert before + timedelta(days=days) <= license.expires_at <= timezone.now() + timedelta(days=days)
    assert balance(buyer) == 1000 - cost
    assert balance(creator) == royalty
    entries = LedgerEntry.objects.filter(license=license)
    assert sorted(entries.values_list("kind", "amount")) == [("purchase", -cost), ("royalty", royalty)]
    assert_books_balance()


def test_royalty_is_rounded_down(settings, buyer, creator, character):
    settings.LICENSE_TIERS = {
        **settings.LICENSE_TIERS,
        "single_use": {"label": "Single use", "cost": 19, "uses": 1, "days": 30, "royalty_percent": 15},
    }
    license = services.license_purchase(buyer=buyer, character=character, license_type="single_use").license
    assert (license.royalty_paid, license.platform_fee) == (2, 17)  # 19 * 0.15 = 2.85
    assert balance(creator) == 2


def test_a_character_without_creator_pays_no_royalty(buyer):
    orphan = CharacterFactory(creator=None, allow_licensing=True)
    license = services.license_purchase(buyer=buyer, character=orphan, license_type="pack_10").license
    assert (license.royalty_paid, license.platform_fee) == (0, 80)
    assert not LedgerEntry.objects.filter(kind="royalty").exists()


def _refusal(fn) -> ServiceError:
    before = money_snapshot()
    with pytest.raises(ServiceError) as caught:
        fn()
    assert money_snapshot() == before, "a refused purchase moved money"
    return caught.value


def test_refusals_move_no_money(fund, buyer, creator, character):
    def buy(who=buyer, what=character, tier="single_use"):
        return lambda: services.license_purchase(buyer=who, character=what, license_type=tier)

    assert _refusal(buy(tier="gold")).code == "unknown_license_type"
    assert _refusal(buy(tier="exclusive")).code == "exclusive_by_offer"
    # Free access needs no license, so none is sold: the creator, and a contributor of the character's story.
    refused = _refusal(buy(who=creator))
    assert (refused.status_code, refused.code, refused.details) == (409, "license_not_needed", {"reason": "creator"})
    contributor = ClipFactory(story=character.story).uploader
    fund(contributor, 100)
    refused = _refusal(buy(who=contributor))
    assert (refused.status_code, refused.code, refused.details) == (
        409,
        "license_not_needed",
        {"reason": "story_contributor"},
    )
    assert refused.message == "You can use this character without a license: you contribute to its story."
    poor = fund(UserFactory(), 9)
    refused = _refusal(buy(who=poor))
    assert (refused.code, refused.status_code, refused.details) == (
        "insufficient_credits",
        402,
        {"balance": 9, "required": 10},
    )
    candidate = CharacterFactory(status=Character.Status.CANDIDATE, allow_licensing=True)
    assert _refusal(buy(what=candidate)).code == "not_licensable"
    closed = CharacterFactory(allow_licensing=False)
    refused = _refusal(buy(what=closed))
    assert (refused.code, refused.status_code) == ("not_licensable", 409)
    assert "does not allow licensing" in refused.message


def test_idempotency_key_never_buys_twice(fund, buyer, character):
    first = services.license_purchase(
        buyer=buyer, character=character, license_type="single_use", idempotency_key="k-1"
    )
    again = services.license_purchase(
        buyer=buyer, character=character, license_type="single_use", idempotency_key="k-1"
    )
    assert first.created and not again.created
    assert again.license.pk == first.license.pk
    assert balance(buyer) == 990
    refused = _refusal(
        lambda: services.license_purchase(
            buyer=buyer, character=character, license_type="pack_10", idempotency_key="k-1"
        )
    )
    assert refused.code == "idempotency_key_reused"
    # Another buyer may use the same key string: keys are per buyer.
    other = fund(UserFactory(), 10)
    assert services.license_purchase(
        buyer=other, character=character, license_type="single_use", idempotency_key="k-1"
    ).created


def test_turning_licensing_off_stops_sales_but_not_existing_licenses(buyer, creator, character):
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    dna_services.character_set_licensing(character=character, user=creator, allow=False)
    assert not selectors.gallery_characters().filter(pk=character.pk).exists()
    assert (
        _refusal(lambda: services.license_purchase(buyer=buyer, character=character, license_type="single_use")).code
        == "not_licensable"
    )
    use = services.license_consume_use(buyer, character, None, "job-after-off")
    assert use.license_id == license.pk
    dna_services.character_set_licensing(character=character, user=creator, allow=True)
    assert selectors.gallery_characters().filter(pk=character.pk).exists()


# --- Exclusive offers ---------------------------------------------------------------------------


def test_exclusive_offer_accepted_charges_grants_and_closes_sales(fund, buyer, creator, character):
    earlier = fund(UserFactory(username="earlier"), 100)
    earlier_license = services.license_purchase(buyer=earlier, character=character, license_type="single_use").license
    rival = fund(UserFactory(username="rival"), 5000)
    rival_offer = services.exclusive_offer_make(buyer=rival, character=character, credits=1500)
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000, message="For my saga")
    assert offer.status == "pending"
    assert balance(buyer) == 1000, "an offer is not charged until accepted"

    assert _refusal(lambda: services.exclusive_offer_accept(offer_id=offer.pk, decided_by=rival)).status_code == 403
    creator_before = balance(creator)
    offer = services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)
    license = offer.license
    assert offer.status == "accepted" and offer.decided_by == creator
    assert (license.license_type, license.credits_paid, license.royalty_paid, license.platform_fee) == (
        "exclusive",
        1000,
        500,
        500,
    )
    assert license.uses_remaining is None and license.expires_at is None
    assert balance(buyer) == 0
    assert balance(creator) == creator_before + 500
    rival_offer.refresh_from_db()
    assert rival_offer.status == "closed"

    # No new license for anyone else; the earlier one stops (refunded); the holder can use it without limit.
    refused = _refusal(lambda: services.license_purchase(buyer=rival, character=character, license_type="single_use"))
    assert (refused.code, refused.status_code) == ("exclusive_taken", 409)
    assert (
        _refusal(lambda: services.exclusive_offer_make(buyer=rival, character=character, credits=2000)).code
        == "exclusive_taken"
    )
    with pytest.raises(services.LicenseRequired):
        services.license_consume_use(earlier, character, None, "job-earlier")
    earlier_license.refresh_from_db()
    assert (earlier_license.status, earlier_license.refunded_credits) == ("revoked", 10)
    for n in range(3):
        assert services.license_consume_use(buyer, character, None, f"job-x-{n}").license_id == license.pk
    row = selectors.gallery_characters().get(pk=character.pk)
    assert row.exclusive_taken
    assert_books_balance()

    # Revoking the exclusive reopens sales.
    services.license_revoke(license_id=license.pk, revoked_by=UserFactory(is_staff=True), reason="ended")
    assert services.license_purchase(buyer=rival, character=character, license_type="single_use").created


def test_offer_rules(fund, buyer, creator, character, admin_user):
    assert (
        _refusal(lambda: services.exclusive_offer_make(buyer=buyer, character=character, credits=999)).code
        == "offer_too_low"
    )
    refused = _refusal(lambda: services.exclusive_offer_make(buyer=buyer, character=character, credits=5000))
    assert refused.code == "insufficient_credits"
    assert (
        _refusal(lambda: services.exclusive_offer_make(buyer=creator, character=character, credits=1000)).code
        == "license_not_needed"
    )
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    with pytest.raises(ServiceError) as caught:
        services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    assert caught.value.code == "offer_pending"

    assert _refusal(lambda: services.exclusive_offer_withdraw(offer_id=offer.pk, buyer=creator)).status_code == 403
    declined = services.exclusive_offer_decline(offer_id=offer.pk, decided_by=creator, note="Not now")
    assert (declined.status, declined.decision_note) == ("declined", "Not now")
    assert (
        _refusal(lambda: services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)).code
        == "offer_not_pending"
    )

    second = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    assert services.exclusive_offer_withdraw(offer_id=second.pk, buyer=buyer).status == "withdrawn"
    third = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    assert services.exclusive_offer_accept(offer_id=third.pk, decided_by=admin_user).status == "accepted"
    assert _refusal(lambda: services.exclusive_offer_accept(offer_id=987654, decided_by=admin_user)).code == "not_found"


def test_accepting_an_offer_the_buyer_can_no_longer_pay_moves_nothing(fund, creator, character):
    buyer = fund(UserFactory(), 1200)
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1200)
    services.license_purchase(buyer=buyer, character=character, license_type="unlimited")  # spends 500
    refused = _refusal(lambda: services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator))
    assert refused.code == "insufficient_credits"
    offer.refresh_from_db()
    assert offer.status == ExclusiveOffer.Status.PENDING
    assert not License.objects.filter(license_type="exclusive").exists()


def test_accepting_needs_licensing_on(buyer, creator, character):
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    dna_services.character_set_licensing(character=character, user=creator, allow=False)
    assert (
        _refusal(lambda: services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)).code
        == "not_licensable"
    )


def test_an_exclusive_stops_the_other_licenses_and_refunds_what_was_not_used(fund, buyer, creator, character):
    single, pack, unlimited = (fund(UserFactory(username=name), 1000) for name in ("single", "pack", "unlimited"))
    bought = {
        user: services.license_purchase(buyer=user, character=character, license_type=kind).license
        for user, kind in ((single, "single_use"), (pack, "pack_10"), (unlimited, "unlimited"))
    }
    for n in range(4):
        services.license_consume_use(pack, character, None, f"pack-job-{n}")
    # The unlimited license has 100 of its 365 days left (and a few hours: whole days count).
    License.objects.filter(pk=bought[unlimited].pk).update(expires_at=timezone.now() + timedelta(days=100, hours=5))
    spent_single = fund(UserFactory(username="spent"), 100)
    used_up = services.license_purchase(buyer=spent_single, character=character, license_type="single_use").license
    services.license_consume_use(spent_single, character, None, "spent-job")
    creator_before = balance(creator)

    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)

    refunds = {single: 10, pack: 80 * 6 // 10, unlimited: 500 * 100 // 365}
    for user, refund in refunds.items():
        license = License.objects.get(pk=bought[user].pk)
        assert (license.status, license.refunded_credits) == ("revoked", refund), user
        entry = license.ledger_entries.get(kind="refund")
        assert (entry.amount, entry.wallet.user_id) == (refund, user.pk)
        assert not services.license_check_access(user, character).allowed
        with pytest.raises(services.LicenseRequired):
            services.license_consume_use(user, character, None, f"after-{user.pk}")
    assert balance(single) == 1000 and balance(pack) == 1000 - 80 + 48 and balance(unlimited) == 1000 - 500 + 136
    used_up.refresh_from_db()
    assert (used_up.status, used_up.refunded_credits) == ("active", 0), "a used-up license has nothing to refund"
    assert balance(creator) == creator_before + 500, "the creator keeps the royalties already paid"
    assert_books_balance()


def test_an_exclusive_is_for_its_holders_story_only(fund, buyer, creator, character):
    saga, other = StoryFactory(created_by=buyer), StoryFactory(created_by=buyer)
    creators_other_story = StoryFactory(created_by=creator)
    contributor = ClipFactory(story=character.story).uploader
    refused = _refusal(
        lambda: services.exclusive_offer_make(
            buyer=buyer, character=character, credits=1000, story=creators_other_story
        )
    )
    assert refused.code == "not_your_story"
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000, story=saga)
    license = services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator).license
    assert license.story == saga

    assert services.license_consume_use(buyer, character, saga, "saga-1").license_id == license.pk
    assert not services.license_check_access(buyer, character, other).allowed
    with pytest.raises(services.LicenseRequired, match="only in"):
        services.license_consume_use(buyer, character, other, "other-1")
    # The character's own story keeps it (its creator and contributors, free); its creator's other stories do not.
    assert services.license_consume_use(creator, character, character.story, "home-1") is None
    assert services.license_consume_use(contributor, character, character.story, "home-2") is None
    denied = services.license_check_access(creator, character, creators_other_story)
    assert (denied.allowed, denied.reason) == (False, "exclusive")
    with pytest.raises(services.LicenseRequired):
        services.license_consume_use(creator, character, creators_other_story, "away-1")
    usable = [row.character for row in selectors.usable_characters(buyer, other)]
    assert character not in usable and character in [r.character for r in selectors.usable_characters(buyer, saga)]


def test_an_exclusive_offered_without_a_story_is_bound_to_the_first_story_it_is_used_in(
    fund, buyer, creator, character
):
    first, second = StoryFactory(created_by=buyer), StoryFactory(created_by=buyer)
    offer = services.exclusive_offer_make(buyer=buyer, character=character, credits=1000)
    license = services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator).license
    assert license.story is None and services.license_check_access(buyer, character, second).allowed
    services.license_consume_use(buyer, character, first, "first-1")
    license.refresh_from_db()
    assert license.story == first
    with pytest.raises(services.LicenseRequired):
        services.license_consume_use(buyer, character, second, "second-1")


# --- Access and uses ----------------------------------------------------------------------------


def test_access_rule(buyer, creator, character):
    stranger = UserFactory()
    contributor = ClipFactory(story=character.story).uploader
    assert services.license_check_access(creator, character, None).reason == "creator"
    assert services.license_check_access(contributor, character, None).reason == "story_contributor"
    denied = services.license_check_access(stranger, character, None)
    assert (denied.allowed, denied.reason) == (False, "none")
    # Neither the creator nor a contributor spends anything.
    assert services.license_consume_use(creator, character, character.story, "job-creator") is None
    assert services.license_consume_use(contributor, character, character.story, "job-contrib") is None
    with pytest.raises(services.LicenseRequired):
        services.license_consume_use(stranger, character, None, "job-stranger")
    assert not LicenseUse.objects.exists()

    license = services.license_purchase(buyer=buyer, character=character, license_type="single_use").license
    access = services.license_check_access(buyer, character, None)
    assert (access.allowed, access.reason, access.license) == (True, "license", license)


def test_expired_revoked_and_used_up_licenses_give_no_access(buyer, character, admin_user):
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not services.license_check_access(buyer, character).allowed
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert services.license_check_access(buyer, character).allowed
    services.license_revoke(license_id=license.pk, revoked_by=admin_user, reason="abuse")
    assert not services.license_check_access(buyer, character).allowed

    single = services.license_purchase(buyer=buyer, character=character, license_type="single_use").license
    services.license_consume_use(buyer, character, None, "job-1")
    single.refresh_from_db()
    assert single.uses_remaining == 0
    assert not services.license_check_access(buyer, character).allowed
    with pytest.raises(services.LicenseRequired):
        services.license_consume_use(buyer, character, None, "job-2")


def test_usable_characters_lists_the_storys_own_and_the_licensed_ones_with_uses_left(buyer, character, admin_user):
    """The create page's list: the story's characters the user may use, then valid licenses only."""
    home = StoryFactory(title="Home")
    ClipFactory(story=home, uploader=buyer)  # buyer contributes to home
    mine = CharacterFactory(story=home, name="Own hero")
    CharacterFactory(story=home, name="Draft", status=Character.Status.CANDIDATE)  # not canonical: not usable
    unrelated = CharacterFactory(name="Unlicensed", allow_licensing=True)
    pack = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    services.license_consume_use(buyer, character, home, "job-a")
    expired = CharacterFactory(name="Expired one", allow_licensing=True)
    old = services.license_purchase(buyer=buyer, character=expired, license_type="single_use").license
    License.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    used_up = CharacterFactory(name="Used up", allow_licensing=True)
    services.license_purchase(buyer=buyer, character=used_up, license_type="single_use")
    services.license_consume_use(buyer, used_up, home, "job-b")
    forever = CharacterFactory(name="Zed", allow_licensing=True)
    services.license_purchase(buyer=buyer, character=forever, license_type="unlimited")

    rows = selectors.usable_characters(buyer, home)

    assert [(r.character, r.reason) for r in rows] == [
        (mine, "story_contributor"),
        (character, "license"),
        (forever, "license"),
    ]
    assert [r.basis for r in rows] == [
        "you contribute to its story",
        "licensed, 9 uses left",
        "licensed, unlimited uses",
    ]
    assert rows[1].license == pack and rows[1].uses_left == 9
    assert unrelated not in [r.character for r in rows]
    # A second valid license of the same character adds its uses; the same rule decides the service's check.
    services.license_purchase(buyer=buyer, character=character, license_type="single_use")
    assert selectors.usable_characters(buyer, home)[1].uses_left == 10
    for row in rows:
        assert services.license_check_access(buyer, row.character).allowed
    # A stranger on the home story sees none of them: the story's character needs a license for them too.
    assert selectors.usable_characters(UserFactory(), home) == []


def test_a_job_spends_one_use_once_and_gets_it_back_once(buyer, character):
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    story = StoryFactory()  # the story the clip is generated for
    use = services.license_consume_use(buyer, character, story, "job-42")
    again = services.license_consume_use(buyer, character, story, "job-42")
    assert use.pk == again.pk and use.story == story
    license.refresh_from_db()
    assert license.uses_remaining == 9

    other = UserFactory()
    with pytest.raises(ServiceError) as caught:
        services.license_consume_use(other, character, None, "job-42")
    assert caught.value.code == "job_ref_taken"

    refunded = services.license_refund_use("job-42")
    assert refunded.refunded_at is not None
    assert services.license_refund_use("job-42").refunded_at == refunded.refunded_at
    license.refresh_from_db()
    assert license.uses_remaining == 10
    with pytest.raises(ServiceError) as caught:
        services.license_consume_use(buyer, character, story, "job-42")
    assert caught.value.code == "job_ref_refunded"
    assert services.license_refund_use("job-never-used") is None


def test_unlimited_licenses_record_uses_without_counting(buyer, character):
    license = services.license_purchase(buyer=buyer, character=character, license_type="unlimited").license
    for n in range(5):
        services.license_consume_use(buyer, character, None, f"job-u{n}")
    license.refresh_from_db()
    assert license.uses_remaining is None
    assert license.uses.count() == 5
    services.license_refund_use("job-u0")
    license.refresh_from_db()
    assert license.uses_remaining is None


def test_the_license_that_would_be_lost_first_is_spent_first(buyer, character):
    unlimited = services.license_purchase(buyer=buyer, character=character, license_type="unlimited").license
    pack = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    single = services.license_purchase(buyer=buyer, character=character, license_type="single_use").license
    spent = [services.license_consume_use(buyer, character, None, f"job-o{n}").license_id for n in range(12)]
    assert spent == [single.pk] + [pack.pk] * 10 + [unlimited.pk]


def test_revoke_and_refund_returns_the_price_and_keeps_the_royalty(buyer, creator, character, admin_user):
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    services.license_revoke(license_id=license.pk, revoked_by=admin_user, reason="Duplicate purchase", refund=True)
    license.refresh_from_db()
    assert (license.status, license.refunded_credits) == ("revoked", 80)
    assert balance(buyer) == 1000
    assert balance(creator) == 12
    assert LedgerEntry.objects.filter(kind="refund", license=license).aggregate(s=Sum("amount"))["s"] == 80
    with pytest.raises(ServiceError) as caught:
        services.license_revoke(license_id=license.pk, revoked_by=admin_user, reason="again", refund=True)
    assert caught.value.code == "already_revoked"
    assert balance(buyer) == 1000
    assert (
        _refusal(lambda: services.license_revoke(license_id=license.pk, revoked_by=buyer, reason="me")).status_code
        == 403
    )
    assert_books_balance()
