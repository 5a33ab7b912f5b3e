# Two commands for a newcomer: `make demo` and `make test`. Both create the
# virtual environment in .venv and install into it first when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install demo up test unit lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt --editable ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/watchword demo

up: install
	$(VENV)/bin/watchword up --local

test: install
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(VENV)/bin/ruff check actors serve ingest shared cli standins bench tests
	$(VENV)/bin/ruff format --check actors serve ingest shared cli standins bench tests

typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.evaluation

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache .mypy_cache
