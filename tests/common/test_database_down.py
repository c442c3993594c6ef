"""A database that cannot be reached: 503 with Retry-After (the API's JSON error, a page on the site), and
the health endpoints a load balancer reads. The outage is real: the connection is pointed at a closed port
(PostgreSQL) or an unreachable file (SQLite), and the next request after it returns is served as usual."""

import contextlib
import socket

import pytest
from django.db import connections
from django.test import Client

from tests.support.factories import UserFactory


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


@contextlib.contextmanager
def database_unreachable():
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    kept = None
    if connection.vendor == "postgresql":
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    else:
        # The test database is in memory and lives as long as a connection to it: set that one aside.
        connection.ensure_connection()
        kept, connection.connection = connection.connection, None
        connection.settings_dict["NAME"] = "/nonexistent-folder/database.sqlite3"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        if kept is not None:
            connection.connection = kept


@pytest.fixture
def outage(django_db_blocker):
    with django_db_blocker.unblock():
        yield database_unreachable


def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.django_db(transaction=True)
def test_api_answers_503_json_with_retry_after_while_the_database_is_down(outage, settings):
    with outage():
        response = client().get("/api/v1/stories")
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "database" in error["message"] and error["details"] == {}
    # Back up: served as usual, nothing stuck.
    assert client().get("/api/v1/stories").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_bearer_token_lookup_with_the_database_down_is_503_too(outage):
    with outage():
        api = client()
        response = api.get("/api/v1/stories", HTTP_AUTHORIZATION="Bearer " + "a" * 40)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.django_db(transaction=True)
def test_pages_answer_a_friendly_503_page(outage):
    with outage():
        home = client().get("/")
        gallery = client().get("/gallery/")
    for response in (home, gallery):
        assert response.status_code == 503
        assert response["Content-Type"].startswith("text/html")
        assert response["Retry-After"]
        assert b"Back in a moment" in response.content
    assert client().get("/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_failure_outside_the_view_the_session_saved_on_the_way_out_is_503(outage, settings):
    settings.ROOT_URLCONF = "tests.support.urls_plain_api_view"
    with outage():
        response = client().get("/test-session-write/")
    assert response.status_code == 503
    assert b"Back in a moment" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_failed_query_on_a_working_database_is_still_a_500(monkeypatch):
    from django.db import OperationalError

    from common import api_views

    def deadlock(self, request):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(api_views.AuthTokenCreateApi, "post", deadlock)
    client().get("/api/v1/stories")  # opens the connection, which stays sound
    response = client().post("/api/v1/auth/token", {})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


# --- Health endpoints --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_without_the_database(outage):
    with outage():
        response = client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_ok_when_everything_answers(settings):
    response = client().get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    expected = {"database", "storage"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(body["checks"]) == expected


@pytest.mark.django_db(transaction=True)
def test_readyz_names_the_database_when_it_is_down(outage):
    with outage():
        response = client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert client().get("/readyz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_readyz_names_redis_when_it_is_configured_and_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]


@pytest.mark.django_db(transaction=True)
def test_readyz_names_storage_when_media_cannot_be_written(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "missing")
    response = client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]


@pytest.mark.django_db
def test_health_endpoints_are_not_behind_a_login_or_the_api_throttle():
    UserFactory()
    assert client().get("/healthz").status_code == 200
