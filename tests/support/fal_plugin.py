"""pytest plugin (registered in tests/conftest.py): the fake fal queue server the generation tests drive.

Every body submitted to it is validated against that model's JSON Schema (generation/provider_schemas/),
answered 422 in fal's shape when it breaks it.

`pytest_configure` points fal_client at the fake before anything imports it: fal_client reads
FAL_QUEUE_RUN_HOST once, when `fal_client.auth` is imported, and httpx trusts SSL_CERT_FILE (here a
bundle of the system CAs plus a throwaway test CA). Child processes, such as a Celery worker a test
starts, inherit both. The server itself only starts when a test asks for the `fake_fal` fixture.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.fake_fal import FakeFal, QueueHost, prepare_environment

QUEUE_HOST = pytest.StashKey[QueueHost]()
FAKE_FAL_KEY = "test-key"


def pytest_configure(config: pytest.Config) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fake-fal-"))
    config.stash[QUEUE_HOST] = prepare_environment(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    host = config.stash.get(QUEUE_HOST, None)
    if host is not None:
        host.restore_environment()
        shutil.rmtree(host.ca_file.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def fake_fal_server(pytestconfig, good_clip) -> FakeFal:
    """The fake, running for the whole session; its result videos are the good (same person) clip."""
    from generation.payloads import validation_errors

    # Every submission is checked against the model's published input schema, as fal checks it.
    server = FakeFal(
        pytestconfig.stash[QUEUE_HOST],
        default_video=good_clip.read_bytes(),
        expected_key=FAKE_FAL_KEY,
        validate=validation_errors,
    )
    with server:
        yield server


@pytest.fixture
def fake_fal(fake_fal_server, settings) -> FakeFal:
    """The fake with no requests yet, and settings that send generation to it (fal with a key)."""
    fake_fal_server.reset()
    settings.GENERATION_PROVIDER = "fal"
    settings.FAL_KEY = FAKE_FAL_KEY
    settings.SAFE_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the result videos are served on loopback
    settings.FAL_WEBHOOK_JWKS_URL = fake_fal_server.jwks_url
    settings.GENERATION_USE_WEBHOOKS = True
    yield fake_fal_server
    assert not fake_fal_server.errors, f"the fake fal server itself failed: {fake_fal_server.errors}"
