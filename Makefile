# Quick start: `make demo` (the main job end to end on the local stack), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install -q --disable-pip-version-check
UV_VERSION := 0.13.8

.PHONY: demo test lint bench clean venv lock

venv: $(STAMP)

# The environment is built from nothing when missing, and rebuilt when the locks change.
# requirements-dev.txt is the runtime lock plus the dev tools, hashed like it.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r requirements-dev.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m provisioner.demo

lint: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/sqlfluff lint provisioner/sql/platform provisioner/sql/partner provisioner/sql/tenant
	$(BIN)/sqlfluff lint --templater placeholder provisioner/sql/verify

test: lint
	$(BIN)/mypy
	$(BIN)/pytest -q --cov --cov-report=term

bench: $(STAMP)
	$(BIN)/python bench/apply.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/probes.py
	$(BIN)/python bench/mock_construct.py
	$(BIN)/python bench/dr.py
	$(BIN)/python bench/planner_statistics.py
	$(BIN)/python bench/governance.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/rotation.py --tenants 200

# Re-lock from pyproject.toml, keeping today's versions unless UPGRADE=--upgrade is given.
lock:
	test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==$(UV_VERSION))
	.venv-lock/bin/uv pip compile -q --generate-hashes --no-strip-extras --python-version 3.11 $(UPGRADE) \
		-c requirements.txt --extra pulumi --extra local pyproject.toml -o requirements.txt
	.venv-lock/bin/uv pip compile -q --generate-hashes --no-strip-extras --python-version 3.11 $(UPGRADE) \
		-c requirements.txt --all-extras pyproject.toml -o requirements-dev.txt

clean:
	-$(BIN)/provision local down
	rm -rf $(VENV) .venv-lock
