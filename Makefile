# Character Persistence System. On a fresh machine:
#   make run    virtualenv + install + migrate + demo data, then serve http://127.0.0.1:8000
#   make test   the whole suite against PostgreSQL and Redis (throwaway servers unless
#               DATABASE_URL / REDIS_URL are set) with a real Celery worker and an S3 endpoint
# `make help` lists the rest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# mediapipe 0.10.21 has wheels for Python 3.9-3.12; the project targets 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --quiet

.PHONY: help run serve migrate demo test test-fast worker beat lint bench bench-votes install install-dev clean

help:
	@echo "make run          install, migrate, load the demo data, serve on http://$(HOST):$(PORT)"
	@echo "make test         the test suite on PostgreSQL + Redis (started for the run if not given)"
	@echo "make test-fast    the same without the slow tests (clips, MediaPipe/dlib, browser, worker, S3)"
	@echo "make worker       a Celery worker on the default, extraction and generation queues"
	@echo "make beat         Celery beat (closes expired votes, sweeps for lost clips and jobs)"
	@echo "make lint         ruff check, ruff format --check, then mypy (strict on services, selectors, prompts, payloads)"
	@echo "make bench        extraction benchmark (decode only vs ours vs the seed's way)"
	@echo "make bench-votes  voting load benchmark under gunicorn on PostgreSQL + Redis"
	@echo "make serve        runserver only;  make demo: (re)load the demo data only"
	@echo "make install / make install-dev   dependencies only (runtime / runtime + tests)"

# --- Virtualenv and dependencies (a stamp per requirements set: reinstall only when they change)

# Each stamp is written only after its step succeeded, so a run that failed half-way (no venv
# module, a broken download) starts that step again next time instead of skipping it.
$(VENV)/.venv-ready:
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip --version >/dev/null
	touch $@

$(VENV)/.installed-run: requirements.txt | $(VENV)/.venv-ready
	rm -f $@
	$(PIP_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/.venv-ready
	rm -f $@
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

# --- Run locally (the embedded default unless the environment or .env says otherwise:
#     SQLite, local media/, tasks run in-process, offline video provider)

migrate: install
	$(MANAGE) migrate --noinput

demo: migrate
	$(MANAGE) load_demo_data

run: demo
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, API docs: /api/v1/docs/)"
	$(MANAGE) runserver $(HOST):$(PORT)

serve: install
	$(MANAGE) runserver $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A config worker -Q default,extraction,generation -l INFO

beat: install
	$(BIN)/celery -A config beat -l INFO

# --- Checks

# mypy loads the test settings through django-stubs; without DATABASE_URL / REDIS_URL they need no servers.
MYPY := env -u DATABASE_URL -u REDIS_URL $(BIN)/mypy config common characters voting generation marketplace demo

test: install-dev
	bash scripts/test.sh $(PYTEST_ARGS)

test-fast: install-dev
	bash scripts/test.sh -m "not slow" $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MYPY)

bench: install
	$(BIN)/python bench/extraction.py $(BENCH_ARGS)

bench-votes: install
	$(BIN)/python bench/votes.py $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache bench/out test-artifacts
