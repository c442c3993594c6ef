"""The one score bar chart (common.charts): both pages that draw one take its geometry and its colour bands."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from common.charts import SCORE_TICKS, score_bar_chart
from common.scores import HIGH_FROM, MID_FROM, score_band
from generation.models import GenerationJob
from tests.support.factories import CandidateFrameFactory, ClipFactory, GenerationJobFactory


@pytest.mark.parametrize("at", [None, [0.5, 2.0, 4.0, 6.5]], ids=["side by side", "by time"])
def test_bars_stand_on_the_baseline_as_tall_as_their_score_with_its_band(at):
    values = [100, HIGH_FROM, HIGH_FROM - 1, MID_FROM]
    chart = score_bar_chart(values, at=at, span=8.0, width=600, height=200)

    zero, hundred = chart["ticks"][0], chart["ticks"][-1]
    assert [t["value"] for t in chart["ticks"]] == list(SCORE_TICKS)
    assert zero["y"] == chart["baseline"] and hundred["y"] == chart["top"]
    for bar, value in zip(chart["bars"], values, strict=True):
        assert bar["y"] + bar["h"] == chart["baseline"]
        assert abs(bar["h"] - (zero["y"] - hundred["y"]) * value / 100) <= 0.5
        assert chart["axis_x"] <= bar["x"] and bar["x"] + bar["w"] <= chart["right"]
    assert [b["tone"] for b in chart["bars"]] == ["high", "high", "mid", "mid"]
    assert [b["tone"] for b in chart["bars"]] == [score_band(v) for v in values]


def test_timed_bars_are_placed_by_time_and_never_overlap():
    times = [0.0, 0.2, 0.4, 3.0, 9.9]
    chart = score_bar_chart([50] * 5, at=times, span=10.0, slots_per_second=5, width=1000, height=220)
    xs = [b["x"] for b in chart["bars"]]
    assert xs == sorted(xs)
    assert all(b["x"] + b["w"] <= n["x"] for b, n in zip(chart["bars"], chart["bars"][1:], strict=False))
    assert [t["label"] for t in chart["x_ticks"]][:2] == ["0:00", "0:01"]


def _bar_classes(html: str, svg_class: str) -> list[str]:
    svg = html[html.index(f'<svg class="{svg_class}"') :]
    svg = svg[: svg.index("</svg>")]
    return re.findall(r'<rect[^>]*class="([^"]+)"', svg)


@pytest.mark.django_db
def test_the_clip_quality_chart_and_the_consistency_chart_colour_a_score_alike(client):
    """A score of 75 is drawn "high" and 74 "mid" on both pages: one band rule, not one per chart."""
    clip = ClipFactory(duration_seconds=10.0)
    for rank, (seconds, quality) in enumerate([(1.0, HIGH_FROM), (5.0, HIGH_FROM - 1)], start=1):
        CandidateFrameFactory(clip=clip, seconds=seconds, quality=quality, rank=rank)
    for i, score in enumerate([HIGH_FROM, HIGH_FROM - 1]):
        GenerationJobFactory(
            story=clip.story,
            status=GenerationJob.Status.COMPLETE,
            consistency_score=score,
            completed_at=timezone.now() + timedelta(minutes=i),
        )

    quality = _bar_classes(client.get(clip.get_absolute_url()).content.decode(), "quality-chart")
    consistency = _bar_classes(client.get(clip.story.get_absolute_url()).content.decode(), "bar-chart")

    assert [c.split()[1] for c in quality] == ["quality-chart__bar--high", "quality-chart__bar--mid"]
    assert [c.split()[1] for c in consistency] == ["bar-chart__bar--high", "bar-chart__bar--mid"]
