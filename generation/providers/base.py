"""The provider interface: submit, status, result, download, cancel, verify a webhook, and what a model can do."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol, TypeVar

from django.conf import settings

from common.safe_fetch import FetchError, fetch_to_temp_file


class TransientProviderError(Exception):
    """Worth retrying later: the provider was unreachable, overloaded, or answered 5xx/429."""


class ProviderFailed(Exception):
    """The provider refused or failed the request for good; the message is the provider's."""


class SubmissionOutcomeUnknown(Exception):
    """A submission went out but no answer came back (the connection broke after the request was sent):
    the provider may have queued it. Sending it again could make (and bill) the clip twice."""


class WebhookRejected(Exception):
    """Not a delivery we can trust; nothing is changed. Answered 401, or `status_code` with `code`."""

    def __init__(self, message: str, *, status_code: int = 401, code: str = "bad_signature") -> None:
        super().__init__(message)
        self.status_code, self.code = status_code, code


ClientFactory = TypeVar("ClientFactory", bound=Callable)


def per_process_client(factory: ClientFactory) -> ClientFactory:
    """Keep one SDK client per process and arguments (key, base URL): a new one loads the CA bundle and opens
    new TLS connections, about 100 ms per call. Their HTTP clients are thread-safe, but not shared across a
    fork (a Celery prefork child makes its own)."""
    cached = lru_cache(maxsize=4)(factory)
    os.register_at_fork(after_in_child=cached.cache_clear)
    return cached  # type: ignore[return-value]  # the same call signature, cached


@dataclass(frozen=True)
class ProviderRequest:
    model_id: str
    arguments: dict
    webhook_url: str | None = None
    # Storage names of the images the arguments' URLs point at: the offline provider renders
    # from them directly, the remote provider fetches the URLs itself.
    image_names: tuple[str, ...] = ()
    duration: int = 5
    aspect_ratio: str = "16:9"


@dataclass(frozen=True)
class ProviderStatus:
    # queued | processing | completed | failed (the provider gave up: `error` says why) | cancelled (at the provider)
    state: str
    queue_position: int | None = None
    error: str | None = None
    logs: list = field(default_factory=list)


@dataclass(frozen=True)
class VerifiedDelivery:
    """A webhook whose sender we checked. `delivery_id` makes it unique (a replay has the same one);
    `succeeded` is None when the delivery only says something changed (the job is then asked again)."""

    request_id: str
    delivery_id: str
    succeeded: bool | None = None
    error: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What one model takes, from its GENERATION_MODELS entry: the create page and the API offer only these."""

    model_id: str
    provider: str
    mode: str
    references: int  # reference images one request carries (0: text only)
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    audio: bool
    webhooks: bool  # the provider tells us when a job ends (else it is polled)


def capabilities(model_id: str) -> Capabilities:
    from . import PROVIDERS

    spec = settings.GENERATION_MODELS[model_id]
    return Capabilities(
        model_id=model_id,
        provider=spec["provider"],
        mode=spec["mode"],
        references=spec.get("references", 0),
        durations=tuple(spec["durations"]),
        aspect_ratios=tuple(spec.get("aspect_ratios", ("16:9",))),
        audio=spec.get("usd_per_second_audio") is not None,
        webhooks=PROVIDERS[spec["provider"]].webhooks,
    )


def download_video(url: str, dest_dir: Path, provider_label: str) -> Path:
    """Copy a provider's output into a local file at once (size and host limits apply): Replicate deletes API
    outputs after about an hour, Runway's URLs expire within a day or two."""
    try:
        fetched = fetch_to_temp_file(url, max_bytes=settings.GENERATED_VIDEO_MAX_BYTES, timeout=120, dest_dir=dest_dir)
    except FetchError as exc:
        if exc.status_code >= 500:
            raise TransientProviderError(
                f"The video from {provider_label} could not be downloaded: {exc.message}"
            ) from exc
        raise ProviderFailed(f"The video from {provider_label} could not be downloaded: {exc.message}") from exc
    return fetched.path


def short(text, limit: int = 500) -> str:
    text = str(text or "")
    return text if len(text) < limit else text[:limit] + "…"


class VideoProvider(Protocol):
    name: str
    webhooks: bool  # whether it calls us back (with a webhook URL) when a request ends

    def submit(self, request: ProviderRequest) -> str:
        """Queue the request; return the provider's request id. Raises TransientProviderError when the
        provider surely did not take it, SubmissionOutcomeUnknown when it may have."""

    def status(self, model_id: str, request_id: str) -> ProviderStatus: ...

    def result(self, model_id: str, request_id: str, *, completed: bool = False) -> dict:
        """The finished request's output ({"video": {"url": ...}, ...}); raises ProviderFailed if it failed.

        `completed`: the caller has just seen the provider report the request finished, so the
        result can be fetched directly, without asking for the status first."""

    def download(self, result: dict, dest_dir: Path) -> Path:
        """Copy the result's video to a local file (size and host limits apply) and return its path."""

    def cancel(self, model_id: str, request_id: str) -> None: ...

    def verify_webhook(self, headers, body: bytes) -> VerifiedDelivery:
        """Check that a delivery is the provider's and fresh; raise WebhookRejected (nothing changes) if not."""
