# Quick start: `make demo` (the main job end to end on the local stack), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

# The environment is built from nothing when missing, and rebuilt when the pins change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m provisioner.demo

test: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/apply.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/mock_construct.py

clean:
	-$(BIN)/provision local down
	rm -rf $(VENV)
