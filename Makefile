# Single entry point of the project. Every target creates .venv and installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm tools, pinned: Marp CLI (deck), Mermaid (diagrams of the deck and of the docs site).
MARP_VERSION := 4.5.1
MERMAID_VERSION := 11.17.2
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT
# On this workplace's machines the extracts sit beside the clone (no internet to fetch them).
ifeq ($(ATTRITION_DATA_DIR),)
ifneq ($(wildcard ../shared/data/technova/extrait_sirh.csv),)
export ATTRITION_DATA_DIR := $(abspath ../shared/data/technova)
endif
endif

.PHONY: help install run serve test lint audit docs image-smoke slides api-examples screenshots bench bench-scale fuzz soak clean requirements schema openapi erd

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n",$$1,$$2}'

$(STAMP): requirements-dev.txt pyproject.toml
	@echo "Installation de l'environnement Python dans $(VENV) (première fois : quelques minutes, environ 1,2 Go)…"
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "1/3 pip et uv…"
	@$(BIN)/python -m pip install -q --upgrade pip uv
	@echo "2/3 dépendances figées (requirements-dev.txt), avec la progression d'uv :"
	@$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	@echo "3/3 le paquet attrition (mode éditable)…"
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)
	@echo "Environnement prêt."

install: $(STAMP) ## Create .venv and install the project with its tools

run: $(STAMP) ## Start everything: embedded PostgreSQL, data, model, API on $(HOST):$(PORT)
	$(BIN)/attrition serve --host $(HOST) --port $(PORT)

# Mermaid for the docs site, served from the site itself (file:// and offline), not a CDN.
MERMAID_STAMP := .cache/mermaid/.installed-mermaid-$(MERMAID_VERSION)

$(MERMAID_STAMP):
	@echo "Installation de Mermaid $(MERMAID_VERSION) pour les diagrammes du site (npm)…"
	@mkdir -p .cache/mermaid
	@if npm install --prefix .cache/mermaid --no-save --no-audit --no-fund --loglevel=error \
	  mermaid@$(MERMAID_VERSION); then touch $@; \
	else echo "npm indisponible : les diagrammes du site seront chargés depuis un CDN."; fi

# axe-core (accessibility rules) for the browser tests, from npm, pinned, in .cache/axe.
AXE_VERSION := 4.14.1
AXE_STAMP := .cache/axe/.installed-axe-core-$(AXE_VERSION)

$(AXE_STAMP):
	@echo "Installation d'axe-core $(AXE_VERSION) (contrôles d'accessibilité, npm)…"
	@mkdir -p .cache/axe
	@if npm install --prefix .cache/axe --no-save --no-audit --no-fund --loglevel=error \
	  axe-core@$(AXE_VERSION); then touch $@; \
	else echo "npm indisponible : les contrôles d'accessibilité seront ignorés."; fi

test: $(STAMP) $(AXE_STAMP) $(MERMAID_STAMP) ## Run the test suite with coverage (real PostgreSQL)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-report=xml:reports/coverage.xml \
	  --cov-report=html:reports/htmlcov --junitxml=reports/junit.xml

lint: $(STAMP) ## ruff, mypy, secret scan, actionlint, hadolint
	$(BIN)/ruff check src tests scripts examples bench
	$(BIN)/ruff format --check src tests scripts examples bench
	$(BIN)/mypy src/attrition
	$(BIN)/python scripts/scan_secrets.py
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/hadolint Dockerfile

audit: $(STAMP) ## Audit the pinned dependencies for known vulnerabilities (pip-audit)
	$(BIN)/pip-audit -r requirements.txt --progress-spinner off

docs: $(STAMP) $(MERMAID_STAMP) ## Build the documentation site (strict; opens from file://)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

image-smoke: ## Build the Docker image and run it as the Space does (+ external DB, stops); reports/image-smoke.json
	bash scripts/image_smoke.sh

# Deck and diagrams: Marp CLI and Mermaid from npm, pinned, installed in .cache/node (ignored).
NODE_DIR := .cache/node
NODE_STAMP := $(NODE_DIR)/.installed-marp-$(MARP_VERSION)-mermaid-$(MERMAID_VERSION)
MARP := $(NODE_DIR)/node_modules/.bin/marp
CHROME_PATH ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))
DECK := docs/presentation/deck

$(NODE_STAMP):
	npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund --loglevel=error \
	  @marp-team/marp-cli@$(MARP_VERSION) mermaid@$(MERMAID_VERSION)
	@touch $@

api-examples: $(STAMP) ## Record real API responses for docs/api.md (docs/exemples/)
	$(BIN)/python scripts/api_examples.py

screenshots: $(STAMP) $(NODE_STAMP) $(MERMAID_STAMP) $(AXE_STAMP) ## Screenshots: Swagger UI, ReDoc, docs site, web interface
	$(BIN)/python scripts/screenshots.py
	ATTRITION_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_browser.py -q -p no:cacheprovider --no-cov

slides: $(STAMP) $(NODE_STAMP) ## Build the deck: docs/presentation/deck.html (+ .pdf with Chromium)
	$(BIN)/python scripts/deck_figures.py
	$(MARP) --html --allow-local-files $(DECK).md -o $(DECK).html
	$(BIN)/python scripts/deck_figures.py --inline-images $(DECK).html
	@if [ -n "$(CHROME_PATH)" ]; then \
	  echo "CHROME_PATH=$(CHROME_PATH) $(MARP) --pdf $(DECK).md"; \
	  CHROME_PATH=$(CHROME_PATH) $(MARP) --pdf --html --allow-local-files --browser-timeout 180 \
	    $(DECK).md -o $(DECK).pdf; \
	else echo "Chromium absent : deck.html seulement (pas de PDF)."; fi

bench: $(STAMP) ## Run the benchmarks (writes bench/results/)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-scale: $(STAMP) ## Cost as the audit trail grows: 10 k, 1 M, 10 M predictions (SCALE_ARGS=--sizes ...)
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

fuzz: $(STAMP) ## API fuzzing (Schemathesis, 200 examples per operation); updates docs/fiabilite.md
	ATTRITION_FUZZ_EXAMPLES=200 ATTRITION_RELIABILITY_RUN="make fuzz" \
	  $(BIN)/python -m pytest tests/reliability/test_fuzz.py -p no:cacheprovider
	$(BIN)/python scripts/reliability_report.py

soak: $(STAMP) ## Reliability at full scale (fuzzing, properties, 2,000 requests, faults, 60 s flood) -> docs/fiabilite.md
	rm -f reports/fiabilite.json
	ATTRITION_FUZZ_EXAMPLES=200 ATTRITION_PROPERTY_EXAMPLES=1000 ATTRITION_SOAK_REQUESTS=2000 ATTRITION_FLOOD_SECONDS=60 \
	  ATTRITION_SOAK_AUDIT_SECONDS=60 \
	  ATTRITION_RELIABILITY_RUN="make soak" $(BIN)/python -m pytest tests/reliability -p no:cacheprovider \
	  --ignore=tests/reliability/test_report.py
	$(BIN)/python scripts/reliability_report.py
	$(BIN)/python -m pytest tests/reliability/test_report.py -q -p no:cacheprovider

requirements: ## Regenerate requirements*.txt from pyproject.toml
	$(BIN)/uv pip compile -q --python-version 3.11 pyproject.toml -o requirements.txt --no-header --annotation-style line
	$(BIN)/uv pip compile -q --python-version 3.11 pyproject.toml --extra dev -o requirements-dev.txt --no-header --annotation-style line
	sed -i '1i # Generated from pyproject.toml by `make requirements` (uv pip compile). Do not edit.' requirements.txt requirements-dev.txt

schema: $(STAMP) ## Regenerate sql/schema.sql from the migrations
	$(BIN)/attrition db schema-sql -o sql/schema.sql

clean: ## Remove the virtualenv, the embedded database and generated reports
	rm -rf $(VENV) var reports site .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml \
	  .cache $(DECK).html $(DECK).pdf docs/presentation/img
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
