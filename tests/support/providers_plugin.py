"""pytest plugin (registered in tests/conftest.py): fake Replicate, Runway and Luma servers on loopback.

Each runs for the whole session (started by the first test that asks for it); its fixture resets it and points
settings at it: the provider's key, its base URL, and loopback allowed for the result videos. Every submitted body
is validated against the model's schema in generation/provider_schemas/ by the fake, answered with the provider's
error shape when it breaks it.
"""

from __future__ import annotations

import pytest

from tests.support.fake_luma import FakeLuma
from tests.support.fake_replicate import FakeReplicate, make_secret
from tests.support.fake_runway import FakeRunway

FAKE_KEYS = {"replicate": "r8_test-token", "runway": "key_test-runway", "luma": "luma-test-key"}


def _validate():
    from generation.payloads import validation_errors

    return validation_errors


def _serve(cls, name: str, good_clip, **kwargs):
    server = cls(expected_key=FAKE_KEYS[name], validate=_validate(), video=good_clip.read_bytes(), **kwargs)
    return server


def _point(settings, server) -> None:
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the result videos are served on loopback
    settings.SITE_URL = "http://testserver"
    settings.GENERATION_USE_WEBHOOKS = True
    settings.GENERATION_PROVIDER = "auto"
    server.reset()


@pytest.fixture(scope="session")
def fake_replicate_server(good_clip):
    with _serve(FakeReplicate, "replicate", good_clip, webhook_secret=make_secret()) as server:
        yield server


@pytest.fixture(scope="session")
def fake_runway_server(good_clip):
    with _serve(FakeRunway, "runway", good_clip) as server:
        yield server


@pytest.fixture(scope="session")
def fake_luma_server(good_clip):
    with _serve(FakeLuma, "luma", good_clip) as server:
        yield server


@pytest.fixture
def fake_replicate(fake_replicate_server, settings) -> FakeReplicate:
    _point(settings, fake_replicate_server)
    settings.REPLICATE_API_TOKEN = FAKE_KEYS["replicate"]
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate_server.webhook_secret
    settings.REPLICATE_BASE_URL = fake_replicate_server.base_url
    yield fake_replicate_server
    assert not fake_replicate_server.errors, fake_replicate_server.errors


@pytest.fixture
def fake_runway(fake_runway_server, settings) -> FakeRunway:
    _point(settings, fake_runway_server)
    settings.RUNWAYML_API_SECRET = FAKE_KEYS["runway"]
    settings.RUNWAYML_BASE_URL = fake_runway_server.base_url
    yield fake_runway_server
    assert not fake_runway_server.errors, fake_runway_server.errors


@pytest.fixture
def fake_luma(fake_luma_server, settings) -> FakeLuma:
    _point(settings, fake_luma_server)
    settings.LUMAAI_API_KEY = FAKE_KEYS["luma"]
    settings.LUMAAI_BASE_URL = fake_luma_server.base_url
    yield fake_luma_server
    assert not fake_luma_server.errors, fake_luma_server.errors


# --- what the provider tests generate with ------------------------------------------------------


@pytest.fixture
def provider_world(good_clip):
    """A creator with a canonical character in their own story (image-to-video, no license needed)."""
    from tests.support.factories import StoryFactory, UserFactory
    from tests.support.generation import canonical_character

    user = UserFactory(username="maker")
    story = StoryFactory(created_by=user)
    character = canonical_character(story, user, good_clip)
    return user, story, character


@pytest.fixture
def provider_generate(django_capture_on_commit_callbacks, provider_world):
    """POST /api/v1/generate for the world's character with `model_id`, then run what it queued (submit, a poll)."""
    from tests.support.generation_providers import api

    def generate(model_id: str, **body):
        user, story, character = provider_world
        with django_capture_on_commit_callbacks(execute=True):
            return api(user).post(
                "/api/v1/generate",
                {
                    "story_id": story.pk,
                    "character_id": character.character_id,
                    "prompt": "She waves at the camera",
                    "model_id": model_id,
                    **body,
                },
                format="json",
            )

    return generate
