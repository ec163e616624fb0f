# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test chaos lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Debian packages the tests use, as command:package: faketime (workers on skewed clocks in
# the race and chaos tests), promtool from prometheus (checks deploy/'s alert rules),
# chromium (the console's browser tests, driven by Playwright).
# Installed when missing and apt-get can (root); otherwise those tests say so.
SYSTEM_PACKAGES := faketime:faketime promtool:prometheus chromium:chromium

$(STAMP): pyproject.toml | $(BIN)/python
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $${p%%:*} >/dev/null || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: missing$$missing (apt-get install$$missing): the tests that need them will fail" >&2; fi; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/partnersync run

# ruff (with its complexity rule) and mypy first: CI runs this target.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long runs: the chaos suite, longer (CHAOS_SECONDS, default 180 here; 20 inside
# `make test`), its failover run, and the benchmark's smoke runs (marker `long`).
chaos: $(STAMP)
	CHAOS_SECONDS=$${CHAOS_SECONDS:-180} $(BIN)/python -m pytest -m "chaos or long" -s $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
