"""Template tags for the "Who is who" rows: whether the viewer may edit the story's characters."""

from django import template

from characters.groups.selectors import can_edit_groups
from characters.models import Story

register = template.Library()


@register.simple_tag(takes_context=True)
def may_edit_groups(context, story: Story) -> bool:
    request = context.get("request")
    return can_edit_groups(getattr(request, "user", None), story)
