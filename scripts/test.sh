#!/usr/bin/env bash
# Run the test suite against real PostgreSQL and Redis (what `make test` and CI run).
#
# DATABASE_URL / REDIS_URL from the environment are used when set. Otherwise tests/support/throwaway.py
# starts throwaway servers on 127.0.0.1 (free ports, data in a temp dir, no fsync, nothing persisted),
# runs pytest with both URLs set, and stops the servers however pytest ends (the benchmarks and the
# tests start their servers with the same module).
# Arguments go to pytest: scripts/test.sh tests/characters/clips/test_worker.py -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
export DJANGO_SETTINGS_MODULE=config.settings.test
exec "$PYTHON" -m tests.support.throwaway --label test.sh -- "$PYTHON" -m pytest "$@"
