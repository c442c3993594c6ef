"""The one rule for how a 0-100 score reads: frame quality, consistency, every bar and badge."""

# At or above the first, a score is "high"; at or above the second, "mid"; below, "low".
HIGH_FROM = 75
MID_FROM = 50


def score_band(value: float | int | None) -> str:
    """ "high", "mid" or "low" for a 0-100 score (None: "low")."""
    if value is None:
        return "low"
    return "high" if value >= HIGH_FROM else "mid" if value >= MID_FROM else "low"
