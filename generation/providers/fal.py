"""fal.ai through the official `fal_client` (queue API: submit with a webhook, status, result, cancel)."""

from __future__ import annotations

from pathlib import Path

import fal_client
import httpx
from django.conf import settings

from .base import (
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VerifiedDelivery,
    download_video,
    per_process_client,
)


def _detail_text(detail, status_code: int) -> str:
    if isinstance(detail, list):  # a validation error: [{"loc": [...], "msg": ..., "type": ...}, ...]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}".lstrip(": ")
            if isinstance(d, dict) and d.get("msg")
            else str(d)
            for d in detail
        )
    detail = str(detail or "") or f"HTTP {status_code}"
    return detail if len(detail) < 500 else detail[:500] + "…"


def _error_text(exc: fal_client.client.FalClientHTTPError) -> str:
    return _detail_text(exc.message, exc.status_code)


def _http_error(status_code: int, text: str) -> Exception:
    """fal's error answer as ours: 5xx and 429 are worth retrying later, anything else is for good."""
    if status_code >= 500 or status_code == 429:
        return TransientProviderError(f"fal answered {status_code}: {text}")
    return ProviderFailed(text)


# Transport errors that prove the request never reached fal: sending it again cannot make a second clip.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@per_process_client
def _client(key: str | None) -> fal_client.SyncClient:
    return fal_client.SyncClient(key=key, default_timeout=30.0)


class FalProvider:
    name = "fal"
    webhooks = True

    def __init__(self) -> None:
        self.client = _client(settings.FAL_KEY or None)

    def _call(self, fn, *args, **kwargs):
        """Run a client call, sorting failures into retry-later and failed-for-good."""
        try:
            return fn(*args, **kwargs)
        except fal_client.client.FalClientHTTPError as exc:
            raise _http_error(exc.status_code, _error_text(exc)) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(f"fal could not be reached: {exc}") from exc

    def submit(self, request: ProviderRequest) -> str:
        try:
            handle = self._call(
                self.client.submit, request.model_id, request.arguments, webhook_url=request.webhook_url
            )
        except TransientProviderError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.TransportError) and not isinstance(cause, NOT_SENT):
                # The request went out and the answer was lost (a read timeout, a dropped connection):
                # fal may have queued it, and fal takes no idempotency key to make a resend safe.
                raise SubmissionOutcomeUnknown(f"fal did not answer the submission: {cause}") from cause
            raise
        return handle.request_id

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        status = self._call(self.client.status, model_id, request_id, with_logs=False)
        if isinstance(status, fal_client.Queued):
            return ProviderStatus("queued", queue_position=status.position)
        if isinstance(status, fal_client.InProgress):
            return ProviderStatus("processing")
        return ProviderStatus("completed", error=getattr(status, "error", None))

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        # A COMPLETED status is only done once the result itself can be fetched: fal may still answer
        # it with 422 (validation) or another error, which fails the job with that message.
        if completed:
            result = self._fetch_result(model_id, request_id)
        else:
            # SyncClient.result() waits for a COMPLETED status first, then fetches the result.
            result = self._call(self.client.result, model_id, request_id)
        if not isinstance(result, dict) or not (result.get("video") or {}).get("url"):
            raise ProviderFailed("fal finished the request but returned no video.")
        return result

    def _fetch_result(self, model_id: str, request_id: str) -> dict:
        """The result of a request we have just seen COMPLETED: one GET of its response URL.

        `SyncClient.result()` would ask for the status again first (its handle's `get()` polls
        until COMPLETED). The handle from `get_handle()` carries the request's `response_url` and
        the client's authenticated HTTP session, so the result is fetched with those directly.
        """
        handle = self.client.get_handle(model_id, request_id)
        response = self._call(handle.client.get, handle.response_url)
        if response.is_error:
            try:
                body = response.json()
            except ValueError:
                body = None
            detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
            raise _http_error(response.status_code, _detail_text(detail, response.status_code))
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderFailed("fal answered the result request with something that is not JSON.") from exc

    def download(self, result: dict, dest_dir: Path) -> Path:
        return download_video(result["video"]["url"], dest_dir, "fal")

    def cancel(self, model_id: str, request_id: str) -> None:
        self._call(self.client.cancel, model_id, request_id)

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        import json

        from generation.webhooks import verify_fal_webhook

        delivery = verify_fal_webhook(headers, body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        if payload.get("request_id") not in (None, delivery.request_id):
            from generation.webhooks import WebhookRejected

            raise WebhookRejected(
                "The body's request_id does not match the signed one.", status_code=400, code="mismatch"
            )
        ok = payload.get("status") == "OK"
        return VerifiedDelivery(
            request_id=delivery.request_id,
            delivery_id=delivery.signature,
            succeeded=ok,
            error="" if ok else str(payload.get("error") or "The provider reported an error."),
        )
