# The command surface: make run | make test | make bench   (README.md explains each)
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BIN ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ENV := . scripts/env.sh &&
STAMP := $(VENV)/.installed

.PHONY: help venv db-up db-down redis-up redis-down run stop status test test-fast container-check bench lint ask clean

help:
	@echo "make run      set everything up and run the whole chain through Airflow's scheduler"
	@echo "make test     the whole test suite against a real PostgreSQL"
	@echo "make bench    benchmarks -> reports/bench.json"
	@echo "make stop     stop Airflow (and its supervisor) and PostgreSQL;  make db-up / make db-down: PostgreSQL only"
	@echo "make status   each supervised service: state, pid, uptime, restarts; PostgreSQL"
	@echo "              MLOPS_EXECUTOR=celery make run|status: the Celery profile (Redis, two workers)"
	@echo "make container-check   astro dev parse + astro dev pytest as the Astro image runs them (no Docker)"
	@echo "make lint     ruff (incl. Airflow rules AIR) and pre-commit"

# Re-installs only when a requirements file changed. torch first, the CPU build: from a local wheel
# folder when pip's configuration has one (offline machines; its dependencies then come with the
# requirements), else from PyTorch's CPU index (TORCH_INDEX; PyPI's Linux torch is the CUDA build).
# The pin is requirements.txt's, as in the Dockerfile.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN = $(shell grep -E '^torch==' requirements.txt)
$(STAMP): requirements.txt requirements-local.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-index --no-deps "$(TORCH_PIN)" 2>/dev/null || \
		$(PY) -m pip install --quiet "$(TORCH_PIN)" --index-url $(TORCH_INDEX)
	$(PY) -m pip install --quiet -r requirements-local.txt -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

db-up: $(STAMP)
	@$(ENV) scripts/db.sh up

db-down:
	@$(ENV) scripts/db.sh down

# Redis (the Celery profile's broker) runs under the stack's supervisor; these start/stop it alone.
redis-up: $(STAMP)
	@MLOPS_EXECUTOR=celery; $(ENV) $(PY) -m scripts.stack redis-up

redis-down:
	@MLOPS_EXECUTOR=celery; $(ENV) $(PY) -m scripts.stack redis-down

run: db-up
	@$(ENV) $(PY) -m scripts.run_chain

stop:
	@$(ENV) $(PY) -m scripts.stack stop || true
	@$(ENV) scripts/db.sh down

status:
	@$(ENV) $(PY) -m scripts.stack status; rc=$$?; \
	if $(ENV) scripts/db.sh status; then echo "PostgreSQL      running (127.0.0.1:$${MLOPS_PG_PORT:-55432})"; \
	else echo "PostgreSQL      stopped"; rc=1; fi; exit $$rc

# MLOPS_REQUIRE_PG=1: a test that needs PostgreSQL is an error here when none is reachable, never a skip.
test: db-up
	@$(ENV) MLOPS_REQUIRE_PG=1 $(PY) -m pytest tests .astro $(PYTEST_ARGS)

test-fast: db-up
	@$(ENV) MLOPS_REQUIRE_PG=1 $(PY) -m pytest tests -m "not e2e" $(PYTEST_ARGS)

# The Astro image's view, without Docker: the tree after .dockerignore, no .venv, only the
# Dockerfile's ENV and .env, then `astro dev parse` and `astro dev pytest` (scripts/container_check.py).
# Not scripts/env.sh: the container does not get it.
container-check: $(STAMP)
	@$(PY) -m scripts.container_check

bench: db-up
	@$(ENV) $(PY) -m scripts.bench $(BENCH_ARGS)

ask: db-up
	@$(ENV) $(PY) -m include.rag.ask "$(Q)"

clean: stop
	rm -rf .pgdata .airflow data reports/*.json reports/lineage reports/drift reports/alerts .s3

# Lint: ruff with the project rules (pyproject.toml, incl. the Airflow rules AIR), the preview AIR
# rules on the Airflow code, ruff format, lint-imports (import-linter: the layers of include/, no
# import cycle; contracts in pyproject.toml), actionlint on .github/workflows, then pre-commit's hygiene
# hooks (trailing whitespace, end of files, YAML, large files, private keys; ruff already ran).
# pre-commit builds its hook environments from PyPI on first use; LINT_PRECOMMIT=0 skips it.
# Its fixers rewrite files in place (tracked files only): commit or stash your work first.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check --select AIR --preview dags include plugins
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/actionlint
	@if [ "$${LINT_PRECOMMIT:-1}" != "0" ]; then \
		SKIP=ruff-check,ruff-format $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure; fi
