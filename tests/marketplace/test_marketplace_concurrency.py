"""Money and license uses under real concurrency on PostgreSQL: many threads, each with its own connection.

Every thread waits at a barrier and then calls the service at once, so the row locks, constraints and
conditional updates are what keep the books right, not luck.
"""

import pytest
from django.conf import settings
from django.db.models import Count, Sum

from marketplace import selectors, services
from marketplace.models import ExclusiveOffer, LedgerEntry, License, LicenseUse, Wallet
from tests.support.concurrency import race
from tests.support.factories import CharacterFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="real races need PostgreSQL row locks (make test runs it; or set DATABASE_URL)",
    ),
]


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True)


def fund(user, amount, admin):
    services.credits_grant(user=user, amount=amount, reason="race funds", granted_by=admin)
    return user


def assert_books_balance():
    for wallet in Wallet.objects.all():
        assert wallet.balance >= 0
        assert wallet.balance == selectors.ledger_sum(wallet), f"wallet of {wallet.user} disagrees with its ledger"


def test_fifty_purchases_against_a_wallet_that_affords_only_some(admin_user):
    buyer = fund(UserFactory(username="buyer"), 255, admin_user)  # 25 single-use licenses at 10
    creators = [UserFactory(username=f"creator{n}") for n in range(5)]
    # Some creators' wallets sort before the buyer's and some after: the lock order is by pk, not role.
    for creator in creators[:2]:
        fund(creator, 1, admin_user)
    characters = [CharacterFactory(creator=creators[n % 5], allow_licensing=True) for n in range(10)]

    sold, refused = race(
        lambda character: services.license_purchase(buyer=buyer, character=character, license_type="single_use"),
        [(characters[n % 10],) for n in range(50)],
    )
    assert (len(sold), len(refused)) == (25, 25)
    assert {e.code for e in refused} == {"insufficient_credits"}
    assert selectors.wallet_balance(buyer) == 5
    assert License.objects.count() == 25
    assert_books_balance()
    # Exactly one charge and one royalty per sale, and the creators hold exactly their royalties.
    per_license = LedgerEntry.objects.filter(license__isnull=False).values("license", "kind").annotate(n=Count("pk"))
    assert all(row["n"] == 1 for row in per_license)
    kinds = LedgerEntry.objects.filter(license__isnull=False).values_list("kind", flat=True)
    assert sorted(kinds) == ["purchase"] * 25 + ["royalty"] * 25
    for license in License.objects.all():
        royalty = license.ledger_entries.get(kind="royalty")
        assert (
            (royalty.amount, royalty.wallet.user_id)
            == (license.royalty_paid, license.character.creator_id)
            == (2, license.character.creator_id)
        )
    royalties = License.objects.aggregate(total=Sum("royalty_paid"))["total"]
    assert sum(selectors.wallet_balance(c) for c in creators) == royalties + 2


def test_crossed_purchases_do_not_deadlock(admin_user):
    """A buys B's characters while B buys A's: both lock both wallets, in the same order."""
    alice, bob = (fund(UserFactory(username=name), 1000, admin_user) for name in ("alice", "bob"))
    of_alice = CharacterFactory(creator=alice, allow_licensing=True)
    of_bob = CharacterFactory(creator=bob, allow_licensing=True)
    jobs = [(alice, of_bob), (bob, of_alice)] * 15
    sold, refused = race(
        lambda buyer, character: services.license_purchase(buyer=buyer, character=character, license_type="pack_10"),
        jobs,
    )
    # Each spends 80 per license and earns 12 per license the other buys: 1000 - 15 * 68 < 0, so some are refused.
    assert len(sold) + len(refused) == 30
    assert all(e.code == "insufficient_credits" for e in refused)
    assert_books_balance()
    total = Wallet.objects.aggregate(total=Sum("balance"))["total"]
    platform = License.objects.aggregate(total=Sum("platform_fee"))["total"]
    assert total + platform == 2000, "credits were created or lost"


def test_the_same_idempotency_key_racing_buys_once(admin_user):
    buyer = fund(UserFactory(), 1000, admin_user)
    character = CharacterFactory(allow_licensing=True)
    results, refused = race(
        lambda: services.license_purchase(
            buyer=buyer, character=character, license_type="pack_10", idempotency_key="retry-me"
        ),
        [()] * 20,
    )
    assert refused == []
    assert len({p.license.pk for p in results}) == 1
    assert sum(p.created for p in results) == 1
    assert selectors.wallet_balance(buyer) == 920
    assert_books_balance()


def test_concurrent_uses_never_go_below_zero(admin_user):
    buyer = fund(UserFactory(), 1000, admin_user)
    character = CharacterFactory(allow_licensing=True)
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    used, refused = race(
        lambda n: services.license_consume_use(buyer, character, None, f"job-{n}"), [(n,) for n in range(30)]
    )
    assert (len(used), len(refused)) == (10, 20)
    assert {e.code for e in refused} == {"license_required"}
    license.refresh_from_db()
    assert license.uses_remaining == 0
    assert LicenseUse.objects.filter(license=license).count() == 10


def test_one_job_racing_itself_spends_one_use(admin_user):
    buyer = fund(UserFactory(), 1000, admin_user)
    character = CharacterFactory(allow_licensing=True)
    license = services.license_purchase(buyer=buyer, character=character, license_type="pack_10").license
    used, refused = race(lambda: services.license_consume_use(buyer, character, None, "job-once"), [()] * 20)
    assert refused == []
    assert len({use.pk for use in used}) == 1
    license.refresh_from_db()
    assert license.uses_remaining == 9

    refunds, refused = race(lambda: services.license_refund_use("job-once"), [()] * 20)
    assert refused == [] and len({use.pk for use in refunds}) == 1
    license.refresh_from_db()
    assert license.uses_remaining == 10


def test_racing_acceptances_grant_one_exclusive(admin_user):
    creator = UserFactory(username="creator")
    character = CharacterFactory(creator=creator, allow_licensing=True)
    buyers = [fund(UserFactory(username=f"bidder{n}"), 2000, admin_user) for n in range(8)]
    offers = [
        services.exclusive_offer_make(buyer=b, character=character, credits=1000 + n) for n, b in enumerate(buyers)
    ]
    shoppers = [fund(UserFactory(username=f"shopper{n}"), 10, admin_user) for n in range(8)]

    def accept_or_buy(kind, item):
        if kind == "accept":
            return services.exclusive_offer_accept(offer_id=item.pk, decided_by=creator)
        return services.license_purchase(buyer=item, character=character, license_type="single_use")

    done, refused = race(accept_or_buy, [("accept", o) for o in offers] + [("buy", s) for s in shoppers])
    assert License.objects.filter(license_type="exclusive").count() == 1
    assert ExclusiveOffer.objects.filter(status="accepted").count() == 1
    assert {e.code for e in refused} <= {"offer_not_pending", "exclusive_taken"}
    winner = License.objects.get(license_type="exclusive")
    sold_after = License.objects.filter(license_type="single_use", created_at__gt=winner.created_at).count()
    assert sold_after == 0, "a license was sold after the exclusive one"
    # A purchase that got in before the acceptance was stopped by it, and refunded in full (unused).
    others = License.objects.exclude(license_type="exclusive")
    assert not others.filter(status="active").exists(), "an exclusive and another live license at once"
    assert all(lic.refunded_credits == lic.credits_paid for lic in others)
    assert_books_balance()


def test_an_exclusive_accepted_while_the_licensees_spend_uses_leaves_no_use_after_it(admin_user):
    creator = UserFactory(username="creator")
    character = CharacterFactory(creator=creator, allow_licensing=True)
    holder = fund(UserFactory(username="holder"), 2000, admin_user)
    offer = services.exclusive_offer_make(buyer=holder, character=character, credits=1000)
    users = [fund(UserFactory(username=f"licensee{n}"), 100, admin_user) for n in range(6)]
    for user in users:
        services.license_purchase(buyer=user, character=character, license_type="pack_10")

    def act(kind, item):
        if kind == "accept":
            return services.exclusive_offer_accept(offer_id=offer.pk, decided_by=creator)
        return services.license_consume_use(item[0], character, None, f"job-{item[0].pk}-{item[1]}")

    jobs = [("accept", None)] + [("use", (user, n)) for user in users for n in range(3)]
    done, refused = race(act, jobs)
    assert {e.code for e in refused} <= {"license_required"}
    exclusive = License.objects.get(license_type="exclusive")
    late = LicenseUse.objects.filter(license__licensee__in=users, created_at__gt=exclusive.created_at)
    assert not late.exists(), "a use was spent after the exclusive was granted"
    for license in License.objects.filter(licensee__in=users):
        assert license.status == "revoked"
        assert license.refunded_credits == 80 * license.uses_remaining // 10
    assert_books_balance()
