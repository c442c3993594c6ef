"""Credit requests: a contributor asks from the wallet page, an admin grants in one click (a ledger grant with the
reason), rejects or closes; one open request per user, a few a day, and no request granted twice."""

import pytest
from django.urls import reverse

from marketplace import services
from marketplace.models import CreditRequest, LedgerEntry, Wallet
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def contributor(client):
    user = UserFactory(username="newbie")
    client.force_login(user)
    return user


@pytest.fixture
def admin_client(client):
    from django.test import Client

    admin = Client()
    admin.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return admin


def file_request(client, amount=50, reason="To license Commander Eileen for my story"):
    return client.post(reverse("credits-request"), {"amount": amount, "reason": reason})


def test_an_empty_wallet_says_how_to_get_credits(client, contributor):
    html = client.get(reverse("my-wallet")).content.decode()
    assert "How to get credits" in html and f'href="{reverse("credits-request")}"' in html


def test_a_contributor_files_one_request_at_a_time(client, contributor):
    response = file_request(client)
    assert response.status_code == 302 and response["Location"] == reverse("my-wallet")
    credit_request = CreditRequest.objects.get(user=contributor)
    assert (credit_request.amount, credit_request.status) == (50, "open")
    wallet = client.get(reverse("my-wallet")).content.decode()
    assert "is waiting for an answer" in wallet and "See my request" in wallet

    again = file_request(client, amount=10)
    assert again.status_code == 409 and "already have an open request" in again.content.decode()
    assert CreditRequest.objects.filter(user=contributor).count() == 1
    assert "waiting for an admin" in client.get(reverse("credits-request")).content.decode()


@pytest.mark.parametrize("data", [{"amount": 0, "reason": "x"}, {"amount": 5, "reason": "   "}, {"amount": "many"}])
def test_a_bad_request_is_refused_and_nothing_is_kept(client, contributor, data):
    response = client.post(reverse("credits-request"), data)
    assert response.status_code == 400
    assert not CreditRequest.objects.exists()


def test_requests_are_throttled_per_day(client, contributor, settings):
    settings.CREDIT_REQUESTS_PER_DAY = 2
    for _ in range(2):
        assert file_request(client).status_code == 302
        services.credit_request_decline(
            request_id=CreditRequest.objects.latest("pk").pk,
            decided_by=UserFactory(username="mod", is_staff=True),
            status=CreditRequest.Status.CLOSED,
        )
    response = file_request(client)
    assert response.status_code == 429 and "2 credit requests a day" in response.content.decode()
    assert CreditRequest.objects.count() == 2


def test_an_admin_grants_a_request_in_one_click_and_a_second_click_grants_nothing(client, contributor, admin_client):
    file_request(client)
    credit_request = CreditRequest.objects.get()
    change = admin_client.get(reverse("admin:marketplace_creditrequest_change", args=[credit_request.pk]))
    html = change.content.decode()
    grant_url = reverse("admin:marketplace_creditrequest_decide", args=[credit_request.pk, "grant"])
    assert f'action="{grant_url}"' in html and "Grant 50 credits" in html

    assert admin_client.get(grant_url).status_code == 405  # a link cannot grant
    assert admin_client.post(grant_url).status_code == 302
    again = admin_client.post(grant_url, follow=True)
    assert "already granted" in again.content.decode()

    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.created_by.username) == ("grant", 50, "boss")
    assert entry.reason == f"Credit request #{credit_request.pk}: To license Commander Eileen for my story"
    assert Wallet.objects.get(user=contributor).balance == 50
    credit_request.refresh_from_db()
    assert (credit_request.status, credit_request.ledger_entry, credit_request.decided_by.username) == (
        "granted",
        entry,
        "boss",
    )
    # The contributor sees it, and may ask again.
    assert "Granted" in client.get(reverse("credits-request")).content.decode()
    assert file_request(client).status_code == 302


def test_the_admin_actions_grant_reject_and_close(admin_client):
    users = [UserFactory() for _ in range(3)]
    requests = [
        services.credit_request_create(user=u, amount=10 * (n + 1), reason="please") for n, u in enumerate(users)
    ]
    changelist = reverse("admin:marketplace_creditrequest_changelist")
    for action, credit_request in zip(["grant", "reject", "close"], requests, strict=True):
        response = admin_client.post(changelist, {"action": action, "_selected_action": [credit_request.pk]})
        assert response.status_code == 302
    statuses = dict(CreditRequest.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in requests] == ["granted", "rejected", "closed"]
    assert list(LedgerEntry.objects.values_list("amount", flat=True)) == [10]

    # Granting again, from the list, grants nothing more.
    admin_client.post(changelist, {"action": "grant", "_selected_action": [r.pk for r in requests]})
    assert LedgerEntry.objects.count() == 1 and Wallet.objects.get(user=users[0]).balance == 10


def test_only_admins_decide(contributor):
    credit_request = services.credit_request_create(user=contributor, amount=5, reason="please")
    with pytest.raises(services.ServiceError, match="Only admins"):
        services.credit_request_grant(request_id=credit_request.pk, granted_by=contributor)
    assert not LedgerEntry.objects.exists()
