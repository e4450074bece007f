# Every target sets up what it needs: a fresh machine only needs `make run` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# ansible-runner runs the ansible-playbook it finds on PATH: the venv's bin/ comes first.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# `make run` needs only serving + training; tests, lint and deployment need everything.
RUN_EXTRAS := train
ALL_EXTRAS := train,infra,dashboards,dev

.PHONY: help venv venv-run system-deps docker-daemon run train serve test unit integration e2e bench lint lint-ci release generate stack stack-down restore lock clean

help: ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Python 3.11+ with venv (Debian/Ubuntu: apt-get install python3-venv).
define install_extras
	@$(PYTHON) -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11+ with the venv module is needed (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=24'
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(1)]'
endef

$(VENV)/.installed-run: pyproject.toml constraints.txt
	$(call install_extras,$(RUN_EXTRAS))
	touch $@

# The full set includes what `make run` needs: it marks both as installed.
$(VENV)/.installed-all: pyproject.toml constraints.txt
	$(call install_extras,$(ALL_EXTRAS))
	touch $@ $(VENV)/.installed-run

venv-run: $(VENV)/.installed-run ## Create the virtualenv for `make run`: serving + training only.

venv: $(VENV)/.installed-all ## Create the virtualenv with every extra (tests, lint, deploy), pinned by constraints.txt.

system-deps: ## Install the Debian packages tests and benchmarks need (root or sudo).
	scripts/install-system-deps.sh

docker-daemon: system-deps ## Start dockerd in the background if no daemon answers.
	scripts/start-docker.sh

run: venv-run ## Train if no champion model exists, then serve the API on 127.0.0.1:8000.
	$(PY) -m app.serving.run_local

train: venv-run ## Train, evaluate, register; promote to champion if the quality gate passes.
	$(PY) -m app.training.train

serve: venv-run ## Serve the current champion under gunicorn on 127.0.0.1:8000 (no training).
	$(PY) -m app.serving.run_local --no-train

test: venv system-deps docker-daemon ## Run every test: unit, integration and end-to-end.
	$(PY) -m pytest tests

unit: venv system-deps ## Unit tests only: no services, no Docker; promtool checks the rules (about 35 s; pytest prints the time).
	$(PY) -m pytest tests/unit

integration: venv system-deps ## Integration tests: real gunicorn, MLflow, Prometheus, nginx, pebble, Chromium on loopback.
	$(PY) -m pytest tests/integration

bench: venv system-deps ## Benchmark this API against `mlflow models serve`, a constant-response ceiling, and itself behind the edge.
	$(PY) -m bench.run

lint: venv ## ruff, mypy (strict on config/ and stacks/), import contracts, and no stale generated file.
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(VENV)/bin/lint-imports
	$(PY) -m stacks.generate --check
	$(MAKE) --no-print-directory lint-ci

lint-ci: venv ## Offline checks of .github/: GitHub's workflow schema, zizmor (nothing at medium or above), pinned actions, run steps.
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(VENV)/bin/zizmor --offline --min-severity medium .github/
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/ci

release: venv ## Build the images for the VM and push them by digest: REGISTRY=path TAG=<git SHA> [CACHE_REGISTRY=path] [DIGESTS=file].
	$(if $(REGISTRY),,$(error REGISTRY=<registry path, e.g. REGION-docker.pkg.dev/PROJECT/mlops-images> is required))
	$(PY) -m stacks.images release --registry $(REGISTRY) --tag $(or $(TAG),$(shell git rev-parse HEAD)) $(if $(CACHE_REGISTRY),--cache-registry $(CACHE_REGISTRY)) --digests-file $(or $(DIGESTS),var/image-digests.json)

generate: venv ## Render every generated file from config/ (CHECK=1: only say which are stale).
	$(PY) -m stacks.generate $(if $(CHECK),--check)

e2e: venv system-deps docker-daemon ## End-to-end: provision a local test host (Debian 13 + sshd + Docker) like `pulumi up` does.
	$(PY) -m pytest tests/e2e

stack: venv docker-daemon ## Run the whole container stack on this machine's Docker, by the VM's own Ansible role.
	$(PY) -m stacks.local_stack up $(STACK_ARGS)

stack-down: venv ## Stop the local container stack (volumes are kept).
	$(PY) -m stacks.local_stack down

restore: venv ## Restore a VM's MLflow store from a backup: HOST=address [BACKUP=id] [PORT=22] [DEPLOY_USER=deploy]; SSH key in MLOPS_SSH_PRIVATE_KEY.
	$(if $(HOST),,$(error HOST=<the VM's address> is required))
	$(PY) -m stacks.backup restore --host $(HOST) --port $(or $(PORT),22) --user $(or $(DEPLOY_USER),deploy) $(if $(BACKUP),--backup $(BACKUP))

lock: ## Re-pin every dependency into constraints.txt from the current virtualenv.
	$(PY) -m pip freeze --exclude-editable | sort > constraints.txt

clean: ## Remove local state (virtualenv, MLflow store, caches).
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
