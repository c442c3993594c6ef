"""fal's webhook keys fetched under a total deadline, a failed fetch not retried for a while, and the webhook
endpoint throttled per source address: a forger cannot tie up the server's threads on a slow key server.
Key servers are local (tests.support.servers)."""

import json
import time

import pytest
from django.test import Client

from generation import webhooks
from tests.support import servers
from tests.support.fake_fal import WebhookSigner

pytestmark = pytest.mark.django_db

WEBHOOK_PATH = "/api/v1/generate/webhooks/fal"


@pytest.fixture(autouse=True)
def quick_deadlines(monkeypatch):
    monkeypatch.setattr(webhooks, "JWKS_FETCH_DEADLINE_SECONDS", 1.0)
    monkeypatch.setattr(webhooks, "JWKS_READ_TIMEOUT_SECONDS", 0.5)


def jwks_route(signer: WebhookSigner):
    return servers.file_route(json.dumps({"keys": [signer.jwk()]}).encode(), content_type="application/json")


def delivery(signer: WebhookSigner) -> tuple[bytes, dict]:
    body = json.dumps({"request_id": "req-1", "status": "OK", "payload": {}}).encode()
    return body, signer.headers("req-1", body)


def post(body: bytes, headers: dict, remote: str = "198.51.100.7"):
    return Client().post(WEBHOOK_PATH, data=body, content_type="application/json", headers=headers, REMOTE_ADDR=remote)


@pytest.mark.parametrize(
    "route",
    [servers.trickle_route(every_seconds=0.1, total_bytes=200), servers.stall_route(5)],
    ids=["trickle", "stall"],
)
def test_a_slow_key_server_is_cut_off_at_the_deadline_and_answers_503(settings, route):
    with servers.serve({"/jwks": route}) as server:
        settings.FAL_WEBHOOK_JWKS_URL = server.url("/jwks")
        started = time.monotonic()
        response = post(*delivery(WebhookSigner()))
        elapsed = time.monotonic() - started

    assert elapsed < 3.5, f"the key fetch took {elapsed:.1f} s"
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "keys_unavailable"
    assert int(response["Retry-After"]) == webhooks.JWKS_FAILURE_BACKOFF_SECONDS


def test_a_failed_fetch_is_not_retried_until_the_backoff_ends(settings, monkeypatch):
    signer = WebhookSigner()
    with servers.serve({"/jwks": servers.stall_route(5)}) as slow:
        settings.FAL_WEBHOOK_JWKS_URL = slow.url("/jwks")
        assert post(*delivery(signer)).status_code == 503
        started = time.monotonic()
        answers = [post(*delivery(signer)).status_code for _ in range(10)]
        elapsed = time.monotonic() - started
        asked = len(slow.requests)
    assert answers == [503] * 10
    assert asked == 1, "each delivery asked the key server again"
    assert elapsed < 2.0  # ten answers with no wait on the key server

    # Once the backoff is over, the next delivery fetches again (now from a key server that answers).
    later = time.time() + webhooks.JWKS_FAILURE_BACKOFF_SECONDS + 1
    monkeypatch.setattr(webhooks.time, "time", lambda: later)
    with servers.serve({"/jwks": jwks_route(signer)}) as good:
        settings.FAL_WEBHOOK_JWKS_URL = good.url("/jwks")
        body, _ = delivery(signer)
        verified = webhooks.verify_fal_webhook(signer.headers("req-1", body, timestamp=int(later)), body)
    assert verified.request_id == "req-1"
    assert len(good.requests) == 1


def test_a_working_key_server_verifies_and_the_keys_are_cached(settings):
    signer = WebhookSigner()
    with servers.serve({"/jwks": jwks_route(signer)}) as server:
        settings.FAL_WEBHOOK_JWKS_URL = server.url("/jwks")
        for _ in range(3):
            body, headers = delivery(signer)
            assert webhooks.verify_fal_webhook(headers, body).request_id == "req-1"
    assert len(server.requests) == 1


def test_an_oversized_key_set_is_refused(settings):
    with servers.serve({"/jwks": servers.file_route(b" " * (webhooks.JWKS_MAX_BYTES + 10))}) as server:
        settings.FAL_WEBHOOK_JWKS_URL = server.url("/jwks")
        with pytest.raises(webhooks.WebhookKeysUnavailable, match="larger than"):
            webhooks.verify_fal_webhook(*reversed(delivery(WebhookSigner())))


def test_the_webhook_endpoint_is_throttled_per_source_address(settings, monkeypatch):
    from common.throttling import ScopedRateThrottle

    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "webhooks", "3/min")
    signer = WebhookSigner()
    with servers.serve({"/jwks": jwks_route(signer)}) as server:
        settings.FAL_WEBHOOK_JWKS_URL = server.url("/jwks")
        forged = delivery(WebhookSigner())  # signed by a key fal never published
        statuses = [post(*forged).status_code for _ in range(5)]
        other_address = post(*forged, remote="198.51.100.8").status_code
    assert statuses == [401, 401, 401, 429, 429]
    assert other_address == 401
