"""Every API view the URLconf serves is named <Entity><Action>Api, the action one of a short list:
a new endpoint named after a plural or a bare noun (`StorySubmissionsApi`, `MyWalletApi`) fails here."""

import re

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

# One word per action, longest first so that the pattern prefers "ListCreate" over "Create".
ACTIONS = """ListCreateDelete ListCreate List Create Detail Delete Upload Extract Quote Cancel Vote Lock Override
Runoff Accept Decline Withdraw Merge Split Receive Rerun""".split()  # noqa: SIM905 -- a readable word list
NAME = re.compile(rf"^(?:[A-Z][a-z0-9]+)+?(?:{'|'.join(ACTIONS)})Api$")
OUR_APPS = {"characters", "voting", "generation", "marketplace", "common", "demo", "config"}


def _api_views(patterns):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns)
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None) or getattr(entry.callback, "cls", None)
            if view is not None and issubclass(view, APIView) and view.__module__.split(".")[0] in OUR_APPS:
                yield view


def test_every_api_view_is_named_entity_action_api():
    names = {view.__name__ for view in _api_views(get_resolver().url_patterns)}
    assert len(names) > 30  # the walk found the API
    outliers = sorted(name for name in names if not NAME.match(name))
    assert outliers == []
