"""Verifying fal's signed webhooks.

fal signs `request_id \\n user_id \\n timestamp \\n sha256_hex(body)` with Ed25519 and sends the
hex signature in X-Fal-Webhook-Signature; its public keys are published as a JWKS. We accept a
delivery only if one of those keys verifies the signature and the timestamp is within five
minutes of our clock. The keys are cached; an unknown signature refreshes them at most once a
few minutes (key rotation) before refusing.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.cache import cache

JWKS_CACHE_KEY = "fal-webhook-jwks"
JWKS_CACHE_SECONDS = 24 * 3600
JWKS_REFRESH_MIN_SECONDS = 300
HEADER_PREFIX = "X-Fal-Webhook-"


class WebhookRejected(Exception):
    """Not a delivery we can trust; nothing is changed."""


@dataclass(frozen=True)
class VerifiedDelivery:
    request_id: str
    user_id: str
    timestamp: int
    signature: str


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _fetch_keys() -> list[str]:
    response = requests.get(settings.FAL_WEBHOOK_JWKS_URL, timeout=10)
    response.raise_for_status()
    keys = [k["x"] for k in response.json().get("keys", []) if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"]
    cache.set(JWKS_CACHE_KEY, {"keys": keys, "fetched": time.time()}, JWKS_CACHE_SECONDS)
    return keys


def _cached_keys() -> tuple[list[str], float]:
    entry = cache.get(JWKS_CACHE_KEY)
    if entry:
        return entry["keys"], entry["fetched"]
    return _fetch_keys(), time.time()


def _verifies(keys: list[str], signature: bytes, message: bytes) -> bool:
    for encoded in keys:
        try:
            Ed25519PublicKey.from_public_bytes(_b64url(encoded)).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def verify_fal_webhook(headers, body: bytes, *, now: float | None = None) -> VerifiedDelivery:
    """Check a delivery's signature and freshness; raise WebhookRejected with the reason if it fails."""
    values = {name: headers.get(f"{HEADER_PREFIX}{name}") for name in ("Request-Id", "User-Id", "Timestamp",
                                                                          "Signature")}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise WebhookRejected(f"Missing header(s): {', '.join(HEADER_PREFIX + m for m in missing)}.")
    try:
        timestamp = int(values["Timestamp"])
        signature = binascii.unhexlify(values["Signature"])
    except (ValueError, binascii.Error):
        raise WebhookRejected("Malformed timestamp or signature.") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > settings.FAL_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected("The delivery's timestamp is too far from now (possible replay).")
    message = "\n".join(
        [values["Request-Id"], values["User-Id"], values["Timestamp"], hashlib.sha256(body).hexdigest()]
    ).encode()
    try:
        keys, fetched = _cached_keys()
        ok = _verifies(keys, signature, message)
        if not ok and time.time() - fetched > JWKS_REFRESH_MIN_SECONDS:
            ok = _verifies(_fetch_keys(), signature, message)
    except requests.RequestException as exc:
        raise WebhookRejected(f"fal's public keys could not be fetched: {exc}") from exc
    if not ok:
        raise WebhookRejected("The signature does not match any of fal's public keys.")
    return VerifiedDelivery(values["Request-Id"], values["User-Id"], timestamp, values["Signature"].lower())
