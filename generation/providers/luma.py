"""Luma's Dream Machine through the official `lumaai` SDK: generations.create (keyframes, callback_url), get, delete.

Luma's callbacks are unsigned, so a callback is never trusted: it only makes us fetch the generation again with our
key (webhooks.provider_callback), and what Luma answers then decides.
"""

from __future__ import annotations

from pathlib import Path

import lumaai
from django.conf import settings

from .base import (
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VerifiedDelivery,
    WebhookRejected,
    download_video,
    per_process_client,
    short,
)

STATES = {"queued": "queued", "dreaming": "processing", "completed": "completed", "failed": "failed"}


@per_process_client
def _client(key: str, base_url: str) -> lumaai.LumaAI:
    return lumaai.LumaAI(auth_token=key, base_url=base_url, timeout=30.0, max_retries=2)


def _error_text(exc: lumaai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or exc.message
        if isinstance(detail, list):  # a validation error: [{"loc", "msg", "type"}, ...]
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}".lstrip(": ")
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        return short(detail)
    return short(exc.message)


class LumaProvider:
    name = "luma"
    webhooks = True  # unsigned callbacks, taken only as a hint to ask again

    def __init__(self) -> None:
        self.client = _client(settings.LUMAAI_API_KEY, settings.LUMAAI_BASE_URL)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except lumaai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise TransientProviderError(f"Luma answered {exc.status_code}: {_error_text(exc)}") from exc
            raise ProviderFailed(f"Luma: {_error_text(exc)}") from exc
        except lumaai.APIConnectionError as exc:
            raise TransientProviderError(f"Luma could not be reached: {exc}") from exc

    def submit(self, request: ProviderRequest) -> str:
        body = dict(request.arguments)
        if request.webhook_url:
            body["callback_url"] = request.webhook_url
        client = self.client.with_options(max_retries=0)  # a resend could make (and bill) the clip twice
        try:
            generation = self._call(client.generations.create, **body)
        except TransientProviderError as exc:
            if isinstance(exc.__cause__, lumaai.APITimeoutError):
                raise SubmissionOutcomeUnknown(f"Luma did not answer the submission: {exc.__cause__}") from exc
            raise
        return generation.id

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        generation = self._call(self.client.generations.get, request_id)
        state = STATES.get(generation.state, "processing")
        return ProviderStatus(
            state,
            error=short(generation.failure_reason or "Luma failed the generation.") if state == "failed" else None,
        )

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        generation = self._call(self.client.generations.get, request_id)
        if generation.state != "completed":
            raise ProviderFailed(f"Luma's generation is {generation.state}: {short(generation.failure_reason)}")
        video = generation.assets.video if generation.assets else None
        if not video:
            raise ProviderFailed("Luma finished the generation but returned no video.")
        return {"video": {"url": video}}

    def download(self, result: dict, dest_dir: Path) -> Path:
        return download_video(result["video"]["url"], dest_dir, "Luma")

    def cancel(self, model_id: str, request_id: str) -> None:
        self._call(self.client.generations.delete, request_id)  # Luma has no cancel: deleting stops it

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        raise WebhookRejected("Luma's callbacks are unsigned: they only trigger a re-fetch.")
