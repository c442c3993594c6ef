"""Every answer under /api/ has the API's error shape, including Django's own refusals (unknown path, body
too large, CSRF) and bodies built to crash a parser; pages keep their HTML."""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from common.views import bad_request
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def assert_api_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/stories/1/nothing", "/api/v2/stories", "/api/"])
def test_an_unknown_api_path_is_a_json_404(method, path):
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    error = assert_api_error(response, 404, "not_found")
    assert path in error["message"]


def test_an_unknown_page_is_still_an_html_404():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


def test_a_missing_object_under_the_api_is_a_json_404():
    assert_api_error(Client().get("/api/v1/stories/999999"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", "/api/v1/auth/token"), ("post", "/api/v1/schema/"), ("get", "/api/v1/generate/webhooks/fal")],
)
def test_a_wrong_method_is_a_json_405(method, path):
    assert_api_error(getattr(Client(), method)(path), 405, "method_not_allowed")


def test_a_body_over_the_upload_limit_is_a_json_413_where_the_view_reads_the_raw_body(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = Client().post("/api/v1/generate/webhooks/fal", data=b"x" * 20_000, content_type="application/json")
    assert_api_error(response, 413, "request_too_large")


def test_a_json_body_over_the_limit_is_a_json_413_from_the_parser(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"username": "' + "a" * 20_000 + '", "password": "x"}'
    response = Client().post("/api/v1/auth/token", data=body, content_type="application/json")
    assert_api_error(response, 413, "request_too_large")


def test_a_form_over_the_limit_on_a_page_is_a_413_page(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = Client().post("/accounts/login/", data={"username": "a" * 20_000, "password": "x"})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("body", ["[" * 50_000, '{"a":' * 50_000, "[" * 40 + "]" * 40])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(body):
    api = APIClient()
    api.force_authenticate(UserFactory())
    response = api.post("/api/v1/stories", data=body, content_type="application/json")
    error = assert_api_error(response, 400, "parse_error")
    assert "nested" in error["message"]


def test_ordinary_json_still_parses():
    api = APIClient()
    api.force_authenticate(UserFactory())
    response = api.post(
        "/api/v1/stories", data='{"title": "Nested [[fine]]", "description": ""}', content_type="application/json"
    )
    assert response.status_code == 201, response.content


def test_a_csrf_refusal_under_the_api_is_json(settings):
    settings.ROOT_URLCONF = "tests.support.urls_plain_api_view"
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    error = assert_api_error(client.post("/api/v1/test-plain-post", {}), 403, "csrf_failed")
    assert "CSRF" in error["message"]


def test_a_session_write_without_csrf_through_drf_is_json_too():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    assert_api_error(client.post("/api/v1/stories", {"title": "x"}), 403)


def test_a_csrf_refusal_on_a_page_is_still_the_html_page():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_an_unexpected_error_under_the_api_is_a_json_500(monkeypatch):
    from common import api_views

    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(api_views.AuthTokenCreateApi, "post", explode)
    response = Client(raise_request_exception=False).post("/api/v1/auth/token", {})
    error = assert_api_error(response, 500, "server_error")
    assert "boom" not in error["message"]  # nothing internal leaks


def test_every_json_413_for_a_body_over_the_limit_says_the_same(settings):
    """DRF's handler (a view reading the body) and Django's 400 handler (anything else) share one message."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    from_drf = Client().post("/api/v1/generate/webhooks/fal", data=b"x" * 20_000, content_type="application/json")
    from_django = bad_request(RequestFactory().post("/api/v1/stories"), RequestDataTooBig("too big"))
    messages = {assert_api_error(from_drf, 413)["message"], json.loads(from_django.content)["error"]["message"]}
    assert len(messages) == 1 and "larger than the server accepts" in messages.pop()
