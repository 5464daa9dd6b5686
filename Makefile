# Conveyor's interface: everything a developer or CI does goes through these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := $(PY) deploy/stack/stack.py
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv stack-up stack-down stack-status run stop status test test-unit lint format \
        bench bench-ingest bench-clean bench-clean-mix bench-labeling bench-qc bench-dashboard chaos clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Conveyor needs Python 3.11 as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies (only when pyproject.toml changed)

stack-up: venv ## Start Kafka, SeaweedFS (S3) and Postgres as local processes
	$(STACK) up

stack-down: ## Stop the local stack
	@if [ -x $(PY) ]; then $(STACK) down; else $(PYTHON) deploy/stack/stack.py down; fi

stack-status: ## Show the state of the local stack
	@$(STACK) status

run: stack-up ## Start the whole system (stack + services) and print where everything is
	@$(STACK) traces
	$(PY) deploy/services.py start
	@echo
	@echo "Conveyor is running. Bootstrap admin key: $${CONVEYOR_BOOTSTRAP_ADMIN_KEY:-cvk_dev_admin_change_me}"
	@echo "  try: .venv/bin/conveyor --api-key <key> datasets list"
	@echo "Ops dashboard: http://127.0.0.1:$${CONVEYOR_DASHBOARD_PORT:-8006}/  (paste an API key; a viewer key is enough)"
	@$(PY) -c 'from deploy.stack.config import load_settings as l; s = l(); print(f"Label Studio (labeling jobs of label_studio vendors): http://127.0.0.1:{s.ports.label_studio}  login {s.label_studio_admin_email} / {s.label_studio_admin_password}")'
	@$(PY) -c 'from deploy.stack.config import load_settings as l; from deploy.stack.jaeger import Jaeger; j = Jaeger(l()); s, _, d = j.state(); print(f"Trace viewer (Jaeger), one trace per upload: {j.url}" + ("" if s == "running" else f"  ({d})"))'
	@echo "  stop the services with 'make stop', the stack with 'make stack-down'"

stop: ## Stop the services started by make run
	@$(PY) deploy/services.py stop

status: ## Show stack and service state
	@$(STACK) status; $(PY) deploy/services.py status

test: stack-up ## Run the whole suite against the real stack (starts it if needed)
	$(PY) deploy/browser.py
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: venv ## Unit tests only (no servers)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: venv ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services conveyor_cli deploy
	$(VENV)/bin/mypy --explicit-package-bases bench

format: venv ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: bench-ingest bench-clean bench-labeling bench-qc bench-dashboard ## All benchmarks

bench-ingest: stack-up ## Upload throughput, latency to audit, RSS during a 1 GiB upload
	$(PY) bench/ingest.py

bench-clean: stack-up ## Clean accuracy vs cleanvision/imagededup, throughput, pHash lookup, mix
	$(PY) bench/clean.py

bench-clean-mix: stack-up ## Clean on a realistic mix (1080p, 12 MP, PNG, video): files/s, CPU
	$(PY) bench/clean.py --mix-only

bench-labeling: stack-up ## Signed vendor webhooks/s (vs /healthz); cleaned->dispatched latency at 50/s
	$(PY) bench/labeling.py
	$(PY) bench/labeling_dispatch.py --feed events
	$(PY) bench/labeling_dispatch.py --feed uploads
	$(PY) bench/label_studio.py

bench-qc: stack-up ## QC answers judged/s (vs in-process consensus); export of 20 000 images as COCO/YOLO: time, peak RSS
	$(PY) bench/qc.py
	$(PY) bench/qc_export.py

bench-dashboard: stack-up ## Dashboard projection catch-up events/s (vs bare consume); funnel page load at 100 000 assets in Chromium
	$(PY) bench/dashboard.py

chaos: stack-up ## Fault harness: uploads under each fault (kill -9, Kafka, Postgres, store, 2nd copy)
	$(PY) -m deploy.chaos $(CHAOS_ARGS)

clean: ## Remove the venv and all local stack data (stops everything first)
	-$(MAKE) stop stack-down
	rm -rf $(VENV) .stack
