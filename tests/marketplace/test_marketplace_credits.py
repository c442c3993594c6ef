"""Credits: wallets on demand, admin grants and adjustments, the append-only ledger, and the database's guards."""

import pytest
from django.db import IntegrityError, transaction

from common.exceptions import ServiceError
from marketplace import selectors, services
from marketplace.models import AppendOnlyError, LedgerEntry, License, Wallet
from tests.support.factories import CharacterFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True)


def test_a_grant_creates_the_wallet_and_records_the_reason(admin_user):
    user = UserFactory()
    assert not Wallet.objects.filter(user=user).exists()
    assert selectors.wallet_balance(user) == 0
    entry = services.credits_grant(user=user, amount=150, reason="  Welcome   bonus ", granted_by=admin_user)
    assert (entry.kind, entry.amount, entry.balance_after, entry.reason, entry.created_by) == (
        "grant",
        150,
        150,
        "Welcome bonus",
        admin_user,
    )
    services.credits_grant(user=user, amount=50, reason="Contest prize", granted_by=admin_user)
    wallet = Wallet.objects.get(user=user)
    assert wallet.balance == 200 == selectors.ledger_sum(wallet)
    assert list(selectors.wallet_ledger(user).values_list("balance_after", flat=True)) == [200, 150]


@pytest.mark.parametrize(
    ("amount", "reason", "code"),
    [
        (0, "x", "invalid_amount"),
        (-5, "x", "invalid_amount"),
        (1_000_001, "x", "invalid_amount"),
        (10, "   ", "reason_required"),
    ],
)
def test_bad_grants_are_refused(admin_user, amount, reason, code):
    user = UserFactory()
    with pytest.raises(ServiceError) as caught:
        services.credits_grant(user=user, amount=amount, reason=reason, granted_by=admin_user)
    assert caught.value.code == code
    assert not LedgerEntry.objects.exists()


def test_only_admins_grant_credits():
    user = UserFactory()
    with pytest.raises(ServiceError) as caught:
        services.credits_grant(user=user, amount=10, reason="I deserve it", granted_by=user)
    assert caught.value.status_code == 403
    assert selectors.wallet_balance(user) == 0


def test_adjustments_go_both_ways_but_never_below_zero(admin_user):
    user = UserFactory()
    services.credits_grant(user=user, amount=30, reason="start", granted_by=admin_user)
    entry = services.credits_adjust(user=user, amount=-20, reason="Charge-back", adjusted_by=admin_user)
    assert (entry.kind, entry.amount, entry.balance_after) == ("adjustment", -20, 10)
    with pytest.raises(services.InsufficientCredits):
        services.credits_adjust(user=user, amount=-11, reason="too much", adjusted_by=admin_user)
    wallet = Wallet.objects.get(user=user)
    assert wallet.balance == 10 == selectors.ledger_sum(wallet)
    assert wallet.entries.count() == 2


def test_ledger_entries_are_append_only(admin_user):
    entry = services.credits_grant(user=UserFactory(), amount=5, reason="x", granted_by=admin_user)
    entry.amount = 500
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    entry.refresh_from_db()
    assert entry.amount == 5


def test_the_database_refuses_a_negative_balance(admin_user):
    user = UserFactory()
    services.credits_grant(user=user, amount=5, reason="x", granted_by=admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=user).update(balance=-1)
    assert Wallet.objects.get(user=user).balance == 5


def test_the_database_refuses_a_sale_that_does_not_add_up():
    character = CharacterFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        License.objects.create(
            character=character,
            licensee=UserFactory(),
            license_type="single_use",
            credits_paid=10,
            royalty_percent=20,
            royalty_paid=2,
            platform_fee=9,
        )


def test_the_database_allows_one_active_exclusive_per_character():
    character = CharacterFactory()

    def exclusive(status="active"):
        return License.objects.create(
            character=character,
            licensee=UserFactory(),
            license_type="exclusive",
            credits_paid=1000,
            royalty_percent=50,
            royalty_paid=500,
            platform_fee=500,
            status=status,
        )

    exclusive(status="revoked")
    exclusive()
    with pytest.raises(IntegrityError), transaction.atomic():
        exclusive()
