from django import template

from common.charts import score_bar_chart
from generation import selectors

register = template.Library()


@register.inclusion_tag("generation/_drift_chart.html")
def drift_chart(story):
    """The score of each generated clip in story order, so drift shows at a glance."""
    points = selectors.drift_points(story)
    chart = score_bar_chart([p["score"] for p in points], labels=[str(i) for i in range(1, len(points) + 1)])
    return {"story": story, "points": points, "chart": chart if points else None}
