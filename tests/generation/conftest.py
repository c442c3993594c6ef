"""Fixtures the generation tests share."""

from __future__ import annotations

import pytest

from tests.support.generation_providers import api


@pytest.fixture
def generate(django_capture_on_commit_callbacks):
    """POST a generation request as `user` (to /api/v1/generate unless `endpoint` says otherwise), then run
    what the request queued (submit, first poll)."""

    def generate(user, endpoint="/api/v1/generate", **body):
        with django_capture_on_commit_callbacks(execute=True):
            return api(user).post(endpoint, body, format="json")

    return generate
