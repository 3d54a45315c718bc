# Single entry point of the project. Every target creates .venv and installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT
# On this workplace's machines the extracts sit beside the clone (no internet to fetch them).
ifeq ($(ATTRITION_DATA_DIR),)
ifneq ($(wildcard ../shared/data/technova/extrait_sirh.csv),)
export ATTRITION_DATA_DIR := $(abspath ../shared/data/technova)
endif
endif

.PHONY: help install run serve test lint audit docs slides bench fuzz soak clean requirements schema openapi erd

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n",$$1,$$2}'

$(STAMP): requirements-dev.txt pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv
	@$(BIN)/uv pip install -q --python $(BIN)/python -r requirements-dev.txt
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its tools

run: $(STAMP) ## Start everything: embedded PostgreSQL, data, model, API on $(HOST):$(PORT)
	$(BIN)/attrition serve --host $(HOST) --port $(PORT)

test: $(STAMP) ## Run the test suite with coverage (real PostgreSQL)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-report=xml:reports/coverage.xml \
	  --cov-report=html:reports/htmlcov

lint: $(STAMP) ## ruff, mypy, secret scan, actionlint, hadolint
	$(BIN)/ruff check src tests scripts examples
	$(BIN)/ruff format --check src tests scripts examples
	$(BIN)/mypy src/attrition
	$(BIN)/python scripts/scan_secrets.py
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/hadolint Dockerfile

audit: $(STAMP) ## Audit the pinned dependencies for known vulnerabilities (pip-audit)
	$(BIN)/pip-audit -r requirements.txt --progress-spinner off

docs: $(STAMP) ## Build the documentation site (strict)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP) ## Run the benchmarks (writes bench/results/)
	$(BIN)/python bench/run.py

fuzz: $(STAMP) ## API fuzzing with more examples
	ATTRITION_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest tests/api/test_fuzz.py -p no:cacheprovider

requirements: ## Regenerate requirements*.txt from pyproject.toml
	$(BIN)/uv pip compile -q --python-version 3.11 pyproject.toml -o requirements.txt --no-header --annotation-style line
	$(BIN)/uv pip compile -q --python-version 3.11 pyproject.toml --extra dev -o requirements-dev.txt --no-header --annotation-style line
	sed -i '1i # Generated from pyproject.toml by `make requirements` (uv pip compile). Do not edit.' requirements.txt requirements-dev.txt

schema: $(STAMP) ## Regenerate sql/schema.sql from the migrations
	$(BIN)/attrition db schema-sql -o sql/schema.sql

clean: ## Remove the virtualenv, the embedded database and generated reports
	rm -rf $(VENV) var reports site .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
