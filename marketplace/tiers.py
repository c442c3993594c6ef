"""License tiers as settings describe them (`LICENSE_TIERS`), read on every call so tests can override them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

EXCLUSIVE = "exclusive"


@dataclass(frozen=True)
class LicenseTier:
    key: str
    label: str
    cost: int | None  # None: negotiated (exclusive)
    uses: int | None  # None: unlimited
    days: int | None  # None: never expires
    royalty_percent: int

    @property
    def negotiated(self) -> bool:
        return self.cost is None

    def royalty_on(self, credits: int) -> int:
        """The creator's share, rounded down to a whole credit."""
        return credits * self.royalty_percent // 100

    def expires_at(self, start: datetime) -> datetime | None:
        return start + timedelta(days=self.days) if self.days else None


def all_tiers() -> list[LicenseTier]:
    return [LicenseTier(key=key, **values) for key, values in settings.LICENSE_TIERS.items()]


def get_tier(key: str) -> LicenseTier | None:
    values = settings.LICENSE_TIERS.get(key)
    return LicenseTier(key=key, **values) if values else None


def priced_tiers() -> list[LicenseTier]:
    """The tiers sold at a fixed price, cheapest first."""
    return sorted((t for t in all_tiers() if not t.negotiated), key=lambda t: t.cost)  # type: ignore[arg-type,return-value]  # priced


def cheapest_cost() -> int | None:
    priced = priced_tiers()
    return priced[0].cost if priced else None
