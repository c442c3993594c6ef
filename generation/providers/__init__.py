"""Video providers behind one small interface; `get_provider()` picks the one settings name."""
from django.conf import settings

from .base import (
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VideoProvider,
)

__all__ = ["ProviderFailed", "ProviderRequest", "ProviderStatus", "SubmissionOutcomeUnknown",
           "TransientProviderError", "VideoProvider", "get_provider"]


def get_provider(name: str | None = None) -> VideoProvider:
    name = name or settings.GENERATION_PROVIDER
    if name == "fal":
        from .fal import FalProvider

        return FalProvider()
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    raise ValueError(f"Unknown generation provider '{name}' (GENERATION_PROVIDER): use 'fal' or 'offline'.")
