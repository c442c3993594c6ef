"""The API's throttles: DRF's rates and keys, counted per fixed window with one atomic counter.

Runs on the local-memory cache with no environment and on Redis under `make test`.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory

from common import throttling
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def backend() -> str:
    return "redis" if settings.REDIS_URL else "local memory"


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(1_700_000_040.0)  # the start of a minute
    monkeypatch.setattr(throttling.time, "time", fake.time)
    return fake


@pytest.fixture
def rates(monkeypatch):
    def set_rate(scope: str, rate: str) -> None:
        monkeypatch.setitem(throttling.UserRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rate


def user_request(user):
    request = APIRequestFactory().get("/")
    request.user = user
    return request


def test_user_rate_allows_the_rate_then_refuses_until_the_window_ends(rates, clock):
    rates("user", "3/min")
    user, other = UserFactory(), UserFactory()
    answers = [throttling.UserRateThrottle().allow_request(user_request(user), None) for _ in range(5)]
    assert answers == [True, True, True, False, False], backend()
    # Each user has their own allowance.
    assert throttling.UserRateThrottle().allow_request(user_request(other), None)
    # The refusal says how long to wait: the rest of the window.
    clock.now += 20
    refused = throttling.UserRateThrottle()
    assert not refused.allow_request(user_request(user), None)
    assert refused.wait() == pytest.approx(40)
    # The next window starts afresh.
    clock.now += 40
    assert throttling.UserRateThrottle().allow_request(user_request(user), None)


def test_requests_racing_never_get_past_the_rate(rates):
    """40 requests of one user at once against a rate of 10: exactly 10 get through."""
    rates("user", "10/hour")
    user = UserFactory()
    barrier = threading.Barrier(40)

    def attempt(_):
        request = user_request(user)
        barrier.wait(timeout=30)
        return throttling.UserRateThrottle().allow_request(request, None)

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(attempt, range(40)))
    assert answers.count(True) == 10, backend()


def test_throttled_api_request_says_when_to_come_back(rates):
    rates("auth", "2/min")
    UserFactory(username="someone", password="right-password")
    client = APIClient()
    for _ in range(2):
        client.post("/api/v1/auth/token", {"username": "someone", "password": "wrong"}, format="json")
    response = client.post("/api/v1/auth/token", {"username": "someone", "password": "right-password"}, format="json")
    assert response.status_code == 429
    body = response.json()["error"]
    assert body["code"] == "throttled"
    assert 0 < body["details"]["retry_after_seconds"] <= 60
    assert 0 < int(response["Retry-After"]) <= 60
    assert not Token.objects.filter(user__username="someone").exists()


def test_default_throttles_are_the_fixed_window_ones():
    from rest_framework.settings import api_settings

    assert [throttling.AnonRateThrottle, throttling.UserRateThrottle] == api_settings.DEFAULT_THROTTLE_CLASSES


# --- The client's address: X-Forwarded-For only through our own proxies -------------------------


def token_attempt(forwarded_for: str, remote: str = "203.0.113.9"):
    return APIClient().post(
        "/api/v1/auth/token",
        {"username": "someone", "password": "wrong"},
        format="json",
        HTTP_X_FORWARDED_FOR=forwarded_for,
        REMOTE_ADDR=remote,
    )


def test_a_rotating_forwarded_for_header_gets_no_fresh_allowance_without_trusted_proxies(rates, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    rates("auth", "5/min")
    statuses = [token_attempt(f"198.51.100.{n}").status_code for n in range(8)]
    assert statuses == [400] * 5 + [429] * 3


def test_behind_one_trusted_proxy_the_address_it_appended_is_the_client(rates, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    rates("auth", "3/min")
    # The client makes up the left part; our proxy appends the address it really saw (10.0.0.7).
    statuses = [token_attempt(f"198.51.100.{n}, 10.0.0.7", remote="10.9.9.9").status_code for n in range(5)]
    assert statuses == [400] * 3 + [429] * 2
    # Another real client behind the same proxy has its own allowance.
    assert token_attempt("10.0.0.8", remote="10.9.9.9").status_code == 400


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "1.1.1.1", "203.0.113.9"),
        (1, "", "203.0.113.9"),  # the header missing: the peer
        (1, "1.1.1.1, 2.2.2.2", "2.2.2.2"),
        (2, "1.1.1.1, 2.2.2.2, 3.3.3.3", "2.2.2.2"),
        (2, "3.3.3.3", "203.0.113.9"),  # fewer entries than proxies: nothing believed
        (1, "1.1.1.1, not-an-address", "203.0.113.9"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_reads_the_header_only_through_the_trusted_proxies(settings, trusted, forwarded, expected):
    from common.client_ip import client_ip

    settings.TRUSTED_PROXY_COUNT = trusted
    request = APIRequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="203.0.113.9")
    assert client_ip(request) == expected
    assert throttling.AnonRateThrottle().get_ident(request) == expected
