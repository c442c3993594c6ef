"""The one geometry of a 0-100 score bar chart, drawn as inline SVG by the templates (pictures, not only
numbers): frame quality on a clip page, consistency on a story and a generation job.

Bars stand on a baseline under a y-axis with ticks at 0, 25, 50, 75 and 100 (the score scale); each is as
tall as its score and carries its colour band from common.scores.score_band (75 / 50). Bars are either side
by side in order (`at=None`), or each centred at its time on a 0..span time axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.scores import HIGH_FROM, MID_FROM, score_band

SCORE_TICKS = (0, 25, 50, 75, 100)
AXIS_X = 34  # room left of the y-axis for the tick labels
TOP = 10  # headroom above the 100 tick
BOTTOM = 20  # room under the baseline for the bars' labels or the time ticks
LABEL_FROM_BOTTOM = 5  # the labels' text baseline, above the bottom edge
GAP = 6  # between side-by-side bars
SIDE_BY_SIDE_MAX_BAR, SIDE_BY_SIDE_MIN_BAR = 56, 4  # a few bars do not fill the width
TIMED_RIGHT_PAD = 12
TIMED_MAX_BAR, TIMED_MIN_BAR = 28, 3
TIME_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60)  # seconds between time labels: the first giving at most 10


def score_bar_chart(
    values: Sequence[float],
    *,
    width: int = 560,
    height: int = 160,
    labels: Sequence[str] | None = None,
    items: Sequence[Any] | None = None,
    at: Sequence[float] | None = None,
    span: float | None = None,
    slots_per_second: float = 1.0,
) -> dict:
    """Geometry (integer pixels) of a bar chart of 0-100 scores.

    `labels`: text under each bar; `items`: the object each bar stands for (passed through as `item`).
    `at`: each bar's time in seconds, placed on a time axis of `span` seconds (default: the last time or
    1 s, whichever is more) with time ticks; `slots_per_second`: how many bars a second may hold (e.g. the
    sampled frames per second), which sets the bar width so neighbours never overlap. Without `at`, bars
    stand side by side in order.
    """
    count = len(values)
    baseline = height - BOTTOM
    plot = baseline - TOP
    labels = list(labels) if labels is not None else [""] * count
    items = list(items) if items is not None else [None] * count
    x_ticks: list[dict] = []
    if at is None:
        bar = min(
            SIDE_BY_SIDE_MAX_BAR, max(SIDE_BY_SIDE_MIN_BAR, (width - AXIS_X - GAP * (count + 1)) // max(1, count))
        )
        xs = [AXIS_X + GAP + i * (bar + GAP) for i in range(count)]
        width = AXIS_X + GAP + max(1, count) * (bar + GAP)
        right = width
    else:
        right = width - TIMED_RIGHT_PAD
        plot_w = right - AXIS_X
        span = max([span or 0.0, *at, 1.0])
        slot = plot_w / max(span * slots_per_second, 1)
        bar = round(min(max(slot * 0.6, TIMED_MIN_BAR), TIMED_MAX_BAR))
        xs = [round(min(max(AXIS_X + t / span * plot_w - bar / 2, AXIS_X), right - bar)) for t in at]
        step = next((s for s in TIME_TICK_STEPS if span / s <= 10), TIME_TICK_STEPS[-1])
        x_ticks = [
            {"x": round(AXIS_X + t / span * plot_w), "label": f"{t // 60}:{t % 60:02d}"}
            for t in range(0, int(span) + 1, step)
        ]
    bars = []
    for x, value, label, item in zip(xs, values, labels, items, strict=True):
        h = max(1, round(plot * max(0.0, min(100.0, value)) / 100))  # a 0 still shows as a sliver
        tone = score_band(value)
        bars.append(
            {"x": x, "y": baseline - h, "w": bar, "h": h, "value": value, "label": label, "item": item, "tone": tone}
        )
    return {
        "width": width,
        "height": height,
        "axis_x": AXIS_X,
        "right": right,
        "top": TOP,
        "baseline": baseline,
        "label_y": height - LABEL_FROM_BOTTOM,
        "ticks": [{"value": v, "y": baseline - round(plot * v / 100)} for v in SCORE_TICKS],
        "bars": bars,
        "x_ticks": x_ticks,
        "high_from": HIGH_FROM,  # for captions that name the colour bands
        "mid_from": MID_FROM,
    }
