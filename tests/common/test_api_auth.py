"""POST /api/v1/auth/token and the `Authorization: Bearer <token>` scheme on the API."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from characters.models import Story
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # tests.factories.UserFactory's


@pytest.fixture
def user():
    return UserFactory(username="ada")


def get_token(username: str, password: str):
    return APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


def test_good_credentials_give_a_token(user):
    response = get_token("ada", PASSWORD)

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}
    assert get_token("ada", PASSWORD).json() == response.json()  # the same token each time


def test_bad_password_is_400_with_a_clear_message(user):
    response = get_token("ada", "wrong")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"] == "Unable to log in with provided credentials."
    assert not Token.objects.exists()


def test_missing_password_names_the_field(user):
    response = APIClient().post("/api/v1/auth/token", {"username": "ada"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "password: This field is required."


def test_inactive_user_gets_no_token(user):
    user.is_active = False
    user.save()

    assert get_token("ada", PASSWORD).status_code == 400


def test_bearer_token_works_on_a_write(user):
    token = get_token("ada", PASSWORD).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.post("/api/v1/stories", {"title": "By token"}, format="json")

    assert response.status_code == 201
    assert response.json()["created_by"] == "ada"
    assert Story.objects.get().created_by == user


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("Token {token}", "Authentication credentials were not provided."),  # DRF's default scheme is not ours
        ("Bearer not-a-real-token", "Invalid token."),
        ("Bearer", "Invalid token header. No credentials provided."),
        ("Bearer {token} extra", "Invalid token header. Token string should not contain spaces."),
    ],
)
def test_wrong_scheme_or_bad_token_is_401(header, words, user):
    token = get_token("ada", PASSWORD).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header.format(token=token))

    response = api.post("/api/v1/stories", {"title": "Nope"}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["message"] == words
    assert not Story.objects.exists()


def test_bad_bearer_token_is_401_even_on_a_read():
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")

    response = api.get("/api/v1/stories")

    assert response.status_code == 401
    assert response.json()["error"] == {"code": "authentication_failed", "message": "Invalid token.", "details": {}}


def test_token_of_a_deactivated_user_stops_working(user):
    token = get_token("ada", PASSWORD).json()["token"]
    user.is_active = False
    user.save()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.post("/api/v1/stories", {"title": "Nope"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."


def test_session_writes_need_the_csrf_token(user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post("/api/v1/stories", {"title": "From a page"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not Story.objects.exists()
