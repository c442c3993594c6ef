"""The providers' webhooks: verifying the signed ones (fal's Ed25519, Replicate's HMAC-SHA256, Standard Webhooks),
then acting on a verified delivery once (`webhook_received`) or on an unsigned callback (`provider_callback`, Luma's).

fal signs `request_id \\n user_id \\n timestamp \\n sha256_hex(body)` with Ed25519 and sends the
hex signature in X-Fal-Webhook-Signature; its public keys are published as a JWKS. We accept a
delivery only if one of those keys verifies the signature and the timestamp is within five
minutes of our clock. The keys are cached; an unknown signature refreshes them at most once a
few minutes (key rotation) before refusing.

Anyone can POST to the webhook, so fetching the keys must not be something a forger can make slow:
one fetch has a total deadline (not a per-read timeout a trickling server can stretch forever), and a
failed fetch is remembered for JWKS_FAILURE_BACKOFF_SECONDS, during which deliveries are refused at
once (503, fal retries) instead of each one waiting on the key server again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import GenerationJob, WebhookDelivery
from .providers.base import VerifiedDelivery, WebhookRejected
from .services import generation_fail

logger = logging.getLogger(__name__)
Status = GenerationJob.Status

JWKS_CACHE_KEY = "fal-webhook-jwks"
JWKS_FAILED_CACHE_KEY = "fal-webhook-jwks-failed"
JWKS_CACHE_SECONDS = 24 * 3600
JWKS_REFRESH_MIN_SECONDS = 300
JWKS_FETCH_DEADLINE_SECONDS = 3.0
JWKS_READ_TIMEOUT_SECONDS = 1.0
JWKS_FAILURE_BACKOFF_SECONDS = 30
JWKS_MAX_BYTES = 64 * 1024
HEADER_PREFIX = "X-Fal-Webhook-"


__all__ = [
    "FalDelivery",
    "VerifiedDelivery",
    "WebhookRejected",
    "provider_callback",
    "verify_fal_webhook",
    "verify_replicate_webhook",
    "webhook_received",
]


class WebhookKeysUnavailable(WebhookRejected):
    """fal's public keys could not be had (now, or in a recent fetch): nothing can be verified for a while."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FalDelivery:
    request_id: str
    user_id: str
    timestamp: int
    signature: str


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _download_jwks(url: str) -> dict:
    """GET the JWKS within JWKS_FETCH_DEADLINE_SECONDS in all (plus at most one read's JWKS_READ_TIMEOUT_SECONDS):
    requests' timeout applies to each socket read, so a server trickling a byte at a time would never hit it."""
    deadline = time.monotonic() + JWKS_FETCH_DEADLINE_SECONDS

    def check_deadline() -> None:
        if time.monotonic() > deadline:
            raise requests.Timeout(f"no complete answer within {JWKS_FETCH_DEADLINE_SECONDS:g} s")

    timeout = (JWKS_FETCH_DEADLINE_SECONDS, JWKS_READ_TIMEOUT_SECONDS)
    with requests.get(url, timeout=timeout, stream=True) as response:
        check_deadline()
        response.raise_for_status()
        body = bytearray()
        while chunk := response.raw.read1(8192):  # one network read at most, so the deadline is checked often
            body += chunk
            if len(body) > JWKS_MAX_BYTES:
                raise requests.RequestException(f"the key set is larger than {JWKS_MAX_BYTES} bytes")
            check_deadline()
    try:
        document = json.loads(bytes(body))
    except ValueError as exc:
        raise requests.RequestException(f"the key set is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise requests.RequestException("the key set is not a JSON object")
    return document


def _fetch_keys() -> list[str]:
    failed = cache.get(JWKS_FAILED_CACHE_KEY)
    if failed and time.time() < failed["until"]:
        wait = max(1, math.ceil(failed["until"] - time.time()))
        raise WebhookKeysUnavailable(
            f"fal's public keys could not be fetched ({failed['error']}); not trying again for {wait} s.", wait
        )
    try:
        document = _download_jwks(settings.FAL_WEBHOOK_JWKS_URL)
        keys = [k["x"] for k in document.get("keys", []) if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"]
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
        AttributeError,
        KeyError,
        TypeError,
    ) as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
        cache.set(
            JWKS_FAILED_CACHE_KEY,
            {"error": error, "until": time.time() + JWKS_FAILURE_BACKOFF_SECONDS},
            JWKS_FAILURE_BACKOFF_SECONDS,
        )
        raise WebhookKeysUnavailable(
            f"fal's public keys could not be fetched: {error}", JWKS_FAILURE_BACKOFF_SECONDS
        ) from exc
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


def verify_fal_webhook(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> FalDelivery:
    """Check a delivery's signature and freshness; raise WebhookRejected with the reason if it fails."""
    values = {
        name: headers.get(f"{HEADER_PREFIX}{name}", "") for name in ("Request-Id", "User-Id", "Timestamp", "Signature")
    }
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
    keys, fetched = _cached_keys()
    ok = _verifies(keys, signature, message)
    if not ok and time.time() - fetched > JWKS_REFRESH_MIN_SECONDS:
        try:
            ok = _verifies(_fetch_keys(), signature, message)
        except WebhookKeysUnavailable:
            ok = False  # the keys we have stand; this signature matches none of them
    if not ok:
        raise WebhookRejected("The signature does not match any of fal's public keys.")
    return FalDelivery(values["Request-Id"], values["User-Id"], timestamp, values["Signature"].lower())


# --- Replicate ---------------------------------------------------------------------------------
# Replicate signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256, keyed with the base64 part of the
# account's `whsec_` secret, and sends `v1,<base64 signature>` entries (space-separated) in webhook-signature.
# The replicate client's own validator skips the timestamp check unless given a tolerance, so we check it here;
# the seen-id check (webhook-id, once) is webhook_received's unique delivery row (below).

REPLICATE_OUTCOMES = {"succeeded": True, "failed": False, "canceled": False}


def _replicate_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        raise WebhookRejected("REPLICATE_WEBHOOK_SECRET is not a whsec_ secret.") from None


def verify_replicate_webhook(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> VerifiedDelivery:
    """A Replicate delivery whose signature matches our secret and whose timestamp is within the tolerance."""
    secret = settings.REPLICATE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejected("No REPLICATE_WEBHOOK_SECRET is set, so no Replicate webhook can be trusted.")
    webhook_id, timestamp, signatures = (headers.get(f"webhook-{n}") for n in ("id", "timestamp", "signature"))
    if not (webhook_id and timestamp and signatures):
        raise WebhookRejected("Missing header(s): webhook-id, webhook-timestamp and webhook-signature are required.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRejected("Malformed webhook-timestamp.") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > settings.REPLICATE_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected("The delivery's timestamp is too far from now (possible replay).")
    expected = hmac.new(_replicate_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    offered = [entry.partition(",")[2] for entry in signatures.split() if entry.startswith("v1,")]
    if not any(hmac.compare_digest(base64.b64encode(expected).decode(), sig) for sig in offered):
        raise WebhookRejected("The signature does not match REPLICATE_WEBHOOK_SECRET.")
    try:
        prediction = json.loads(body)
    except ValueError:
        raise WebhookRejected("The signed body is not JSON.") from None
    if not isinstance(prediction, dict) or not prediction.get("id"):
        raise WebhookRejected("The signed body names no prediction.")
    status = prediction.get("status")
    return VerifiedDelivery(
        request_id=str(prediction["id"]),
        delivery_id=webhook_id,
        succeeded=REPLICATE_OUTCOMES.get(str(status)),
        error=str(prediction.get("error") or (f"The prediction was {status}." if status == "canceled" else "")),
    )


# --- Acting on a verified delivery ------------------------------------------------------------


def _adopt_unconfirmed_submission(provider: str, request_id: str, job_id: str) -> GenerationJob | None:
    """The job a verified webhook names (by its URL), if its submission's outcome was unknown: it now has the id.

    Only a job whose submission began and never came back takes an unknown request id, and only once
    (a conditional update); a job that knows its request id keeps it, whatever a URL says.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            adopted = GenerationJob.objects.filter(
                job_id=job_id,
                provider=provider,
                status=Status.QUEUED,
                provider_request_id="",
                submit_started_at__isnull=False,
            ).update(
                provider_request_id=request_id, status=Status.SUBMITTED, submitted_at=now, updated_at=now, progress=5
            )
    except IntegrityError:  # the request id is another job's after all
        return None
    if not adopted:
        return None
    logger.warning(
        "Generation %s: %s's webhook names request %s, whose submission answer was lost", job_id, provider, request_id
    )
    return GenerationJob.objects.get(job_id=job_id)


def webhook_received(*, provider: str, delivery: VerifiedDelivery, job_id: str = "") -> str:
    """Act on a verified provider webhook (`providers.VerifiedDelivery`) once; replays and unknown requests change
    nothing.

    A delivery is acted on once per (provider, request id, delivery id): fal's signature, Replicate's webhook-id.
    `job_id` is the one in the webhook URL we gave the provider: it lets a job whose submission answer was lost
    learn its request id (see generation.services, "Submitting at most once"); it is not trusted otherwise.
    """
    request_id = delivery.request_id
    try:
        with transaction.atomic():
            record = WebhookDelivery.objects.create(
                provider=provider, request_id=request_id, signature=delivery.delivery_id[:256]
            )
    except IntegrityError:
        return "duplicate"
    job = GenerationJob.objects.filter(provider=provider, provider_request_id=request_id).first()
    adopted = None
    if job is None and job_id:
        job = adopted = _adopt_unconfirmed_submission(provider, request_id, job_id)
    if job is None:
        outcome = "unknown_request"
    elif job.is_finished:
        outcome = "already_finished"
    elif delivery.succeeded and provider == "fal":
        # The delivery's own output URL is not trusted: the result is fetched from the provider with our key.
        from .tasks import complete_generation_job

        complete_generation_job.delay(job.pk, True)
        outcome = "completing"
    elif delivery.succeeded:
        # Replicate: its status is asked again with our key (a poll), which completes the job if it is done.
        from .tasks import poll_generation_job

        poll_generation_job.delay(job.pk)
        outcome = "completing"
    elif delivery.succeeded is None:
        outcome = "ignored"  # an event that ends nothing
    else:
        generation_fail(
            job_pk=job.pk,
            message=f"The provider failed the request: {delivery.error or 'The provider reported an error.'}",
        )
        outcome = "failed"
    if adopted is not None:
        outcome = f"adopted, {outcome}"
    WebhookDelivery.objects.filter(pk=record.pk).update(outcome=outcome)
    return outcome


def provider_callback(*, provider: str, job_id: str, request_id: str = "") -> str:
    """An unsigned callback (Luma's): nothing in it is believed. It only makes us ask the provider, with our key,
    how the job it names is doing, as a poll would; what the provider answers decides."""
    job = GenerationJob.objects.filter(provider=provider, job_id=job_id).first() if job_id else None
    if job is None or (request_id and job.provider_request_id and request_id != job.provider_request_id):
        return "unknown_request"
    if job.is_finished:
        return "already_finished"
    if not job.provider_request_id:
        return "not_submitted"
    from .tasks import poll_generation_job

    poll_generation_job.delay(job.pk)
    return "refetching"
