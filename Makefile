# Every target sets up what it needs: a fresh machine only needs `make run` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# ansible-runner runs the ansible-playbook it finds on PATH: the venv's bin/ comes first.
export PATH := $(abspath $(VENV))/bin:$(PATH)
EXTRAS  := train,infra,dashboards,dev

.PHONY: help venv system-deps docker-daemon run train serve test unit integration e2e bench lint dashboards stack stack-down clean

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=24'
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv with pinned dependencies (constraints.txt).

system-deps: ## Install the Debian packages tests and benchmarks need (root or sudo).
	scripts/install-system-deps.sh

docker-daemon: system-deps ## Start dockerd in the background if no daemon answers.
	scripts/start-docker.sh

run: venv ## Train if no champion model exists, then serve the API on 127.0.0.1:8000.
	$(PY) -m app.run_local

train: venv ## Train, evaluate, register; promote to champion if the quality gate passes.
	$(PY) -m app.train

serve: venv ## Serve the current champion under gunicorn on 127.0.0.1:8000 (no training).
	$(PY) -m app.run_local --no-train

test: venv system-deps docker-daemon ## Run every test: unit, integration and end-to-end.
	$(PY) -m pytest tests

unit: venv ## Unit tests only (seconds, no services).
	$(PY) -m pytest tests/unit

integration: venv system-deps ## Integration tests: real gunicorn, MLflow, Prometheus, Chromium on loopback.
	$(PY) -m pytest tests/integration

bench: venv system-deps ## Benchmark this API against `mlflow models serve` and a constant-response ceiling.
	$(PY) -m bench.run

lint: venv ## ruff + mypy (strict on config/ and stacks/).
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

dashboards: venv ## Regenerate dashboards/json/, prometheus.yml and Grafana provisioning from Python.
	$(PY) -m dashboards.build

e2e: venv system-deps docker-daemon ## End-to-end: provision a local test host (Debian 13 + sshd + Docker) like `pulumi up` does.
	$(PY) -m pytest tests/e2e

stack: venv docker-daemon ## Run the whole container stack on this machine's Docker (no cloud account needed).
	scripts/local-stack.sh up

stack-down: ## Stop the local container stack (volumes are kept).
	scripts/local-stack.sh down

lock: ## Re-pin every dependency into constraints.txt from the current virtualenv.
	$(PY) -m pip freeze --exclude-editable | sort > constraints.txt

clean: ## Remove local state (virtualenv, MLflow store, caches).
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
