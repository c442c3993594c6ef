"""Replicate through the official `replicate` client: predictions create (with a "completed" webhook), get, cancel.

Replicate deletes a prediction's API outputs after about an hour, so a finished prediction is copied into our
storage as soon as we hear of it (the webhook enqueues the completion; a poll completes it in place).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import replicate
from django.conf import settings
from replicate.exceptions import ReplicateError

from .base import (
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VerifiedDelivery,
    download_video,
    per_process_client,
    short,
)
from .fal import NOT_SENT

STATES = {
    "starting": "queued",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
}


@per_process_client
def _client(token: str, base_url: str) -> replicate.Client:
    # The client's RetryTransport retries only idempotent methods (not the POST that creates a prediction).
    return replicate.Client(api_token=token, base_url=base_url, timeout=httpx.Timeout(30.0))


def _error_text(exc: ReplicateError) -> str:
    return short(exc.detail or exc.title or f"HTTP {exc.status}")


class ReplicateProvider:
    name = "replicate"
    webhooks = True

    def __init__(self) -> None:
        self.client = _client(settings.REPLICATE_API_TOKEN, settings.REPLICATE_BASE_URL)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ReplicateError as exc:
            status = exc.status or 0
            if status >= 500 or status == 429:
                raise TransientProviderError(f"Replicate answered {status}: {_error_text(exc)}") from exc
            raise ProviderFailed(f"Replicate: {_error_text(exc)}") from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(f"Replicate could not be reached: {exc}") from exc

    def submit(self, request: ProviderRequest) -> str:
        hook = {"webhook": request.webhook_url, "webhook_events_filter": ["completed"]} if request.webhook_url else {}
        try:
            prediction = self._call(
                self.client.predictions.create, model=request.model_id, input=request.arguments, **hook
            )
        except TransientProviderError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.TransportError) and not isinstance(cause, NOT_SENT):
                raise SubmissionOutcomeUnknown(f"Replicate did not answer the submission: {cause}") from cause
            raise
        return prediction.id

    def _get(self, request_id: str):
        return self._call(self.client.predictions.get, request_id)

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        prediction = self._get(request_id)
        state = STATES.get(prediction.status, "processing")
        return ProviderStatus(state, error=short(prediction.error) if prediction.error else None)

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        prediction = self._get(request_id)  # asked with our token: a webhook's body is never taken as the result
        if prediction.status != "succeeded":
            raise ProviderFailed(f"Replicate's prediction {prediction.status}: {short(prediction.error) or 'no video'}")
        output = prediction.output
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str) or not url:
            raise ProviderFailed("Replicate finished the prediction but returned no video.")
        return {"video": {"url": url}}

    def download(self, result: dict, dest_dir: Path) -> Path:
        return download_video(result["video"]["url"], dest_dir, "Replicate")

    def cancel(self, model_id: str, request_id: str) -> None:
        self._call(self.client.predictions.cancel, request_id)

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        from generation.webhooks import verify_replicate_webhook

        return verify_replicate_webhook(headers, body)
