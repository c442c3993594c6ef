"""Video providers behind one interface (base.VideoProvider); each model names its provider in GENERATION_MODELS.

A model runs on its provider when that provider has a key (from the environment), and as an offline preview
(rendered here from the references, free) when it has none, or when GENERATION_PROVIDER is "offline".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import import_module

from django.conf import settings

from .base import (
    Capabilities,
    ProviderFailed,
    ProviderRequest,
    ProviderStatus,
    SubmissionOutcomeUnknown,
    TransientProviderError,
    VerifiedDelivery,
    VideoProvider,
    WebhookRejected,
    capabilities,
)

__all__ = [
    "Capabilities",
    "ProviderFailed",
    "ProviderRequest",
    "ProviderStatus",
    "SubmissionOutcomeUnknown",
    "TransientProviderError",
    "VerifiedDelivery",
    "VideoProvider",
    "WebhookRejected",
    "capabilities",
    "get_provider",
    "has_key",
    "offered_models",
    "provider_for",
]


@dataclass(frozen=True)
class ProviderInfo:
    label: str
    module: str
    cls: str
    key_setting: str | None  # the setting (and environment variable) holding its key
    webhooks: bool


PROVIDERS = {
    "fal": ProviderInfo("fal", ".fal", "FalProvider", "FAL_KEY", True),
    "replicate": ProviderInfo("Replicate", ".replicate", "ReplicateProvider", "REPLICATE_API_TOKEN", True),
    "runway": ProviderInfo("Runway", ".runway", "RunwayProvider", "RUNWAYML_API_SECRET", False),
    # Luma calls back, unsigned: the callback only makes us ask Luma again.
    "luma": ProviderInfo("Luma", ".luma", "LumaProvider", "LUMAAI_API_KEY", True),
    "offline": ProviderInfo("offline", ".offline", "OfflineProvider", None, False),
}


def get_provider(name: str) -> VideoProvider:
    info = PROVIDERS.get(name)
    if info is None:
        raise ValueError(f"Unknown generation provider '{name}': use one of {', '.join(sorted(PROVIDERS))}.")
    return getattr(import_module(info.module, __name__), info.cls)()


def has_key(provider: str) -> bool:
    info = PROVIDERS[provider]
    return info.key_setting is not None and bool(getattr(settings, info.key_setting, ""))


def provider_for(model_id: str) -> str:
    """Who makes a clip of `model_id` here: its provider when that has a key, else the offline preview."""
    if settings.GENERATION_PROVIDER == "offline":
        return "offline"
    provider = settings.GENERATION_MODELS[model_id]["provider"]
    return provider if has_key(provider) else "offline"


@dataclass(frozen=True)
class OfferedModel:
    model_id: str
    label: str
    provider: str  # its provider
    runs_on: str  # who makes the clip here: the provider, or "offline"
    capabilities: Capabilities
    usd_per_second: Decimal
    usd_per_second_audio: Decimal | None
    price_note: str = ""  # why the price is not confirmed from the provider's own page; "" when it is

    @property
    def offline_preview(self) -> bool:
        return self.runs_on == "offline"

    @property
    def provider_label(self) -> str:
        return PROVIDERS[self.provider].label


def price_note(model_id: str) -> str:
    """Why the model's price is not confirmed from its provider's own page (settings), or ""."""
    return settings.GENERATION_MODELS.get(model_id, {}).get("price_note", "")


def offered_models(mode: str | None = None) -> list[OfferedModel]:
    """The models a request may name: those whose provider has a key, and each mode's default model (as an offline
    preview when its provider has no key). In GENERATION_MODELS order."""
    defaults = set(settings.GENERATION_MODEL_FOR_MODE.values())
    offered = []
    for model_id, spec in settings.GENERATION_MODELS.items():
        if mode is not None and spec["mode"] != mode:
            continue
        runs_on = provider_for(model_id)
        if runs_on == "offline" and model_id not in defaults:
            continue
        audio = spec.get("usd_per_second_audio")
        offered.append(
            OfferedModel(
                model_id=model_id,
                label=spec["label"],
                provider=spec["provider"],
                runs_on=runs_on,
                capabilities=capabilities(model_id),
                usd_per_second=Decimal(spec["usd_per_second"]),
                usd_per_second_audio=Decimal(audio) if audio is not None else None,
                price_note=price_note(model_id),
            )
        )
    return offered
