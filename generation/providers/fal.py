"""fal.ai through the official `fal_client` (queue API: submit with a webhook, status, result, cancel)."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import fal_client
import httpx
from django.conf import settings

from common.safe_fetch import FetchError, fetch_to_temp_file

from .base import ProviderFailed, ProviderRequest, ProviderStatus, TransientProviderError


def _error_text(exc: fal_client.client.FalClientHTTPError) -> str:
    detail = exc.message
    if isinstance(detail, list):  # a validation error: [{"loc": [...], "msg": ..., "type": ...}, ...]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}".lstrip(": ")
            if isinstance(d, dict) and d.get("msg") else str(d)
            for d in detail
        )
    detail = str(detail or "") or f"HTTP {exc.status_code}"
    return detail if len(detail) < 500 else detail[:500] + "…"


@lru_cache(maxsize=4)
def _client(key: str | None) -> fal_client.SyncClient:
    # One client per process (and key): a new one loads the CA bundle and opens new TLS connections,
    # about 100 ms per call. httpx clients are thread-safe, but not shared across a fork.
    return fal_client.SyncClient(key=key, default_timeout=30.0)


os.register_at_fork(after_in_child=_client.cache_clear)


class FalProvider:
    name = "fal"

    def __init__(self) -> None:
        self.client = _client(settings.FAL_KEY or None)

    def _call(self, fn, *args, **kwargs):
        """Run a client call, sorting failures into retry-later and failed-for-good."""
        try:
            return fn(*args, **kwargs)
        except fal_client.client.FalClientHTTPError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise TransientProviderError(f"fal answered {exc.status_code}: {_error_text(exc)}") from exc
            raise ProviderFailed(_error_text(exc)) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(f"fal could not be reached: {exc}") from exc

    def submit(self, request: ProviderRequest) -> str:
        handle = self._call(self.client.submit, request.model_id, request.arguments, webhook_url=request.webhook_url)
        return handle.request_id

    def status(self, model_id: str, request_id: str) -> ProviderStatus:
        status = self._call(self.client.status, model_id, request_id, with_logs=False)
        if isinstance(status, fal_client.Queued):
            return ProviderStatus("queued", queue_position=status.position)
        if isinstance(status, fal_client.InProgress):
            return ProviderStatus("processing")
        return ProviderStatus("completed", error=getattr(status, "error", None))

    def result(self, model_id: str, request_id: str) -> dict:
        # A COMPLETED status is only done once the result itself can be fetched: fal may still answer
        # it with 422 (validation) or another error, which fails the job with that message.
        result = self._call(self.client.result, model_id, request_id)
        if not isinstance(result, dict) or not (result.get("video") or {}).get("url"):
            raise ProviderFailed("fal finished the request but returned no video.")
        return result

    def download(self, result: dict, dest_dir: Path) -> Path:
        try:
            fetched = fetch_to_temp_file(
                result["video"]["url"], max_bytes=settings.GENERATED_VIDEO_MAX_BYTES, timeout=120, dest_dir=dest_dir
            )
        except FetchError as exc:
            if exc.status_code >= 500:
                raise TransientProviderError(f"The generated video could not be downloaded: {exc.message}") from exc
            raise ProviderFailed(f"The generated video could not be downloaded: {exc.message}") from exc
        return fetched.path

    def cancel(self, model_id: str, request_id: str) -> None:
        self._call(self.client.cancel, model_id, request_id)
