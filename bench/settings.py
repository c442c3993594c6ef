"""Settings for the vote bench's gunicorn only: production, plus the baseline endpoint (bench/baseline.py).

Nothing else loads this module, so `/api/v1/bench/ping` exists only under the bench; config.urls never
names it.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.baseline"
