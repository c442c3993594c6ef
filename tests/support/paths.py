"""Where things are, for every test module whatever its folder."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The public sample clips beside the project (../shared/samples); tests that use them skip without them.
SAMPLES = PROJECT_DIR.parent / "shared" / "samples"
# Screenshots and other files the browser tests leave for a person to look at.
ARTIFACTS = PROJECT_DIR / "test-artifacts"
