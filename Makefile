# Courtyard: `make demo` runs the gateway with a simulated community; `make test` runs the tests.
# Both bootstrap what they need on a fresh Debian machine (a .venv, and Debian packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup setup-test demo test test-unit test-wheel dist lint format typecheck bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "courtyard needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	@scripts/system-deps.sh demo

setup-test: $(STAMP)
	@scripts/system-deps.sh test

demo: setup
	$(BIN)/courtyard demo

test: setup-test lint typecheck
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# the wheel as a user installs it (also part of `make test`): built, installed into a fresh
# virtual environment outside the checkout, `courtyard demo` started from another folder
test-wheel: setup-test
	$(BIN)/python -m pytest -q tests/integration/test_wheel.py tests/unit/test_package_data.py

# the sdist and the wheel, into dist/
dist: $(STAMP)
	$(BIN)/python -m build --installer uv

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: setup-test
	$(BIN)/python -m bench

# 30 minutes at a steady load through a broker restart and an InfluxDB outage (not in CI);
# SOAK_MINUTES=3 make soak for a shorter run. Writes bench/soak.json.
soak: setup-test
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) courtyard-demo .pytest_cache .ruff_cache .mypy_cache dist build courtyard.egg-info
