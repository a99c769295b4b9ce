# Every target sets up its own virtual environment first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

.PHONY: install demo test test-fast lint bench sandbox
install: $(BIN)/.installed

demo: install  ## the whole pipeline on embedded defaults (ARGS=--serve keeps the console up)
	$(BIN)/meetsync demo $(ARGS)

test: install  ## every test, against real PostgreSQL, Redis and RabbitMQ (started if down)
	scripts/services
	$(BIN)/pytest -q

test-fast: install  ## everything but the slow tests
	scripts/services
	$(BIN)/pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.sandbox
	$(BIN)/python -m bench.webhook
	$(BIN)/python -m bench.interactions
	$(BIN)/python -m bench.throttle
	$(BIN)/python -m bench.experiments

sandbox: install
	$(BIN)/meetsync sandbox
