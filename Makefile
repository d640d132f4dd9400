# Two commands do all set-up (see README): `make plan` and `make test`.
# Both create the virtualenv from requirements.lock when it is missing or stale.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# This machine's pip config names local mirrors that may be absent; pip warns per package.
QUIET_PIP := grep -v "^WARNING: Location .* is ignored" || true
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help plan test bench bench-lab lock typecheck lint format clean

$(STAMP): requirements.lock pyproject.toml scripts/ensure-host-packages
	scripts/ensure-host-packages python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { $(QUIET_PIP); }
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { $(QUIET_PIP); }
	touch $@

## The main job on its embedded default: the offline plan of every stack file in the repo.
plan: $(STAMP)
	$(BIN)/twinhost plan --all

## The whole test suite (unit tests under mocks, cloud-init schema tests, static types, the lab).
test: $(STAMP)
	$(BIN)/python -m pytest

## Speed figures (printed, never asserted).
bench: $(STAMP)
	$(BIN)/python bench/plan_bench.py

## Lab figures (root): time from container start to both nodes healthy over TLS, memory.
bench-lab: $(STAMP)
	scripts/ensure-host-packages lab
	$(BIN)/python bench/lab_bench.py

## Static types alone (mypy --strict; make test runs it too).
typecheck: $(STAMP)
	$(BIN)/mypy

## Lint and format check alone (ruff; make test runs it too).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Rewrite the tree in ruff's format and apply its safe fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## This list.
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z-]+:/{if(doc){split($$0,t,":"); printf "  make %-10s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

## Re-freeze requirements.lock from a throwaway venv after editing the direct pins.
lock:
	rm -rf /tmp/twinhost-lock-venv && $(PYTHON) -m venv /tmp/twinhost-lock-venv
	/tmp/twinhost-lock-venv/bin/pip install --quiet -r requirements.lock
	(sed -n '1,2p' requirements.lock; /tmp/twinhost-lock-venv/bin/pip freeze) > requirements.lock.new
	mv requirements.lock.new requirements.lock

## Remove the virtualenv and build/ (the plan's rendered user data).
clean:
	rm -rf $(VENV) build
