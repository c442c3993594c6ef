"""The provider interface: submit, status, result, download, cancel."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class TransientProviderError(Exception):
    """Worth retrying later: the provider was unreachable, overloaded, or answered 5xx/429."""


class ProviderFailed(Exception):
    """The provider refused or failed the request for good; the message is the provider's."""


class SubmissionOutcomeUnknown(Exception):
    """A submission went out but no answer came back (the connection broke after the request was sent):
    the provider may have queued it. Sending it again could make (and bill) the clip twice."""


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
    state: str  # queued | processing | completed
    queue_position: int | None = None
    error: str | None = None
    logs: list = field(default_factory=list)


class VideoProvider(Protocol):
    name: str

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
