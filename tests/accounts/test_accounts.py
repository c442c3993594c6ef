"""Accounts: sign-up with email verification, the credits a new account gets, and log-in lock-outs on the
site's log-in page, the admin's and the API token (per account and per address)."""

import re

import pytest
from allauth.account.models import EmailAddress
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from marketplace.models import LedgerEntry, Wallet
from tests.support.factories import UserFactory, verify_email

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"
LOCKED = "Too many failed log-ins for this account; try again in 15 minutes or ask an admin to unlock it"


def sign_up(client, username="newcomer", email="newcomer@example.org"):
    return client.post(
        reverse("account_signup"),
        {
            "username": username,
            "email": email,
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )


# --- Sign-up, verification, credits for newcomers ----------------------------------------------------


@pytest.mark.parametrize("grant", [0, 100])
def test_a_new_account_gets_the_signup_grant_through_the_ledger(client, settings, grant):
    settings.CREDITS_SIGNUP_GRANT = grant
    response = sign_up(client)
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")

    user = get_user_model().objects.get(username="newcomer")
    wallet = Wallet.objects.filter(user=user).first()
    if grant:
        entry = LedgerEntry.objects.get(wallet=wallet)
        assert (entry.kind, entry.amount, entry.balance_after, wallet.balance) == ("grant", 100, 100, 100)
        assert entry.reason == "Welcome credits for a new account"
    else:
        assert wallet is None or (wallet.balance == 0 and not wallet.entries.exists())


def test_signup_grant_is_given_once(settings):
    from marketplace import services

    settings.CREDITS_SIGNUP_GRANT = 100
    user = UserFactory()
    assert services.credits_signup_grant(user=user).amount == 100
    assert services.credits_signup_grant(user=user) is None
    assert Wallet.objects.get(user=user).balance == 100


def test_signing_up_needs_the_emailed_link_before_logging_in(client):
    sign_up(client)
    assert "_auth_user_id" not in client.session
    # Before verifying, the right password leads back to "check your email" (the link is not sent again
    # within allauth's cool-down).
    response = client.post(reverse("login"), {"login": "newcomer", "password": "a-long-pass-phrase-9"})
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newcomer@example.org"]

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    path = link.split("testserver", 1)[1]
    assert "Confirm" in client.get(path).content.decode()
    assert client.post(path).status_code == 302
    assert EmailAddress.objects.get(email="newcomer@example.org").verified

    response = client.post(reverse("login"), {"login": "newcomer@example.org", "password": "a-long-pass-phrase-9"})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_signup_page_is_the_sites_and_a_taken_email_makes_no_account(client):
    UserFactory(username="taken", email="taken@example.org")
    verify_email("taken")
    page = client.get(reverse("account_signup")).content.decode()
    assert "Character Persistence" in page and 'name="email"' in page and 'name="username"' in page
    # The page answers as for any sign-up (it does not tell who has an account); the owner gets a mail.
    response = sign_up(client, email="taken@example.org")
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert not get_user_model().objects.filter(username="newcomer").exists()
    assert [m.to for m in mail.outbox] == [["taken@example.org"]]
    # A taken username is refused on the form.
    response = sign_up(client, username="taken", email="other@example.org")
    assert response.status_code == 200 and "field__error" in response.content.decode()


def test_the_nav_offers_sign_up_and_log_in(client):
    html = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("account_signup")}"' in html and f'href="{reverse("login")}?next=' in html


def test_api_token_still_works(client):
    UserFactory(username="api")
    response = client.post(
        "/api/v1/auth/token", {"username": "api", "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["token"]


# --- Lock-outs ----------------------------------------------------------------------------------------


@pytest.fixture
def carla():
    user = UserFactory(username="carla", is_staff=True, is_superuser=True)
    verify_email("carla")
    return user


SITE = ("login", "login")  # URL name, the name of the form's account field
ADMIN = ("admin:login", "username")


def attempt(client, entry, password, account="carla", **headers):
    url_name, field = entry
    return client.post(reverse(url_name), {field: account, "password": password}, **headers)


@pytest.mark.parametrize("entry", [SITE, ADMIN], ids=["site", "admin"])
def test_the_right_password_is_refused_after_too_many_wrong_ones(client, carla, settings, entry):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert attempt(client, entry, "wrong").status_code == 200  # the form again, with its error
    response = attempt(client, entry, "wrong")
    assert response.status_code == 429 and LOCKED in response.content.decode()

    response = attempt(client, entry, PASSWORD)
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The lock is the account's: another address cannot try it either, and the API token is refused.
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert attempt(other, entry, PASSWORD).status_code == 429
    token = other.post(
        "/api/v1/auth/token", {"username": "carla", "password": PASSWORD}, content_type="application/json"
    )
    assert token.status_code >= 400 and "token" not in token.json()


def test_both_log_in_pages_count_towards_one_lock(client, carla):
    for entry in (SITE, ADMIN, SITE, ADMIN):
        attempt(client, entry, "wrong")
    assert attempt(client, ADMIN, "wrong").status_code == 429
    assert attempt(client, SITE, PASSWORD).status_code == 429


def test_typing_the_email_instead_of_the_username_is_the_same_account(client, carla):
    for account in ("carla", "carla@example.com", "CARLA", "carla", "carla@example.com"):
        attempt(client, SITE, "wrong", account=account)
    assert attempt(client, SITE, PASSWORD).status_code == 429


def test_an_address_is_locked_for_every_account(client, carla):
    for n in range(5):
        attempt(client, SITE, "wrong", account=f"someone{n}")
    response = attempt(client, SITE, PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_unlocking_in_the_admin_lets_the_right_password_in(client, carla):
    for _ in range(5):
        attempt(client, SITE, "wrong")
    assert attempt(client, SITE, PASSWORD).status_code == 429

    admin = Client(REMOTE_ADDR="198.51.100.7")
    admin.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert "carla" in admin.get(changelist).content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    confirm = admin.post(changelist, {"action": "delete_selected", "_selected_action": ids})
    assert confirm.status_code == 200
    done = admin.post(changelist, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert done.status_code == 302 and not AccessAttempt.objects.exists()

    response = attempt(client, SITE, PASSWORD)
    assert response.status_code == 302 and "_auth_user_id" in client.session


@pytest.mark.parametrize("entry", [SITE, ADMIN], ids=["site", "admin"])
def test_a_rotating_x_forwarded_for_does_not_lift_the_lock(client, carla, entry):
    for n in range(5):
        attempt(client, entry, "wrong", account=f"guess{n}", headers={"x-forwarded-for": f"10.0.0.{n}"})
    # Every try came from REMOTE_ADDR (no proxy is trusted): the address is locked whatever the header says.
    response = attempt(client, entry, PASSWORD, headers={"x-forwarded-for": "10.9.9.9"})
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_behind_a_trusted_proxy_the_client_entries_of_the_header_are_ignored(client, carla, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        # The client writes the left part; our proxy appends the address it saw (the right-most entry).
        attempt(client, SITE, "wrong", account=f"guess{n}", headers={"x-forwarded-for": f"10.0.0.{n}, 192.0.2.44"})
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.44"}
    assert attempt(client, SITE, PASSWORD, headers={"x-forwarded-for": "10.1.1.1, 192.0.2.44"}).status_code == 429
    # Someone else behind the same proxy is not locked.
    other = attempt(client, SITE, PASSWORD, headers={"x-forwarded-for": "192.0.2.45"})
    assert other.status_code == 302 and "_auth_user_id" in client.session
