"""A media folder (and temp folder) of the test's own, for tests that list the files they leave behind.

The session's folder (conftest's `media_root`) is shared with the Celery worker process; these replace it
for one module when it is imported there: `from tests.support.media import ...  # noqa: F401 -- fixtures`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def _own_folder(tmp_path: Path, settings) -> Path:
    root = tmp_path / "media"
    root.mkdir(exist_ok=True)
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture(name="media_root")
def own_media_root(tmp_path, settings) -> Path:
    """For the tests that ask for it."""
    return _own_folder(tmp_path, settings)


@pytest.fixture(name="media_root", autouse=True)
def own_media_root_for_every_test(tmp_path, settings) -> Path:
    """For every test of the module."""
    return _own_folder(tmp_path, settings)


@pytest.fixture(name="temp_dir", autouse=True)
def own_temp_dir(tmp_path, monkeypatch) -> Path:
    """Every temp file (Django's spooled uploads, our spools and fetches) goes here, to count leftovers."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def files_under(root: Path) -> list[Path]:
    return [Path(dirpath) / name for dirpath, _, names in os.walk(root) for name in names]
