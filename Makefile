# mmif-operator: the commands that matter are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
LOCAL_KUBECONFIG := /var/lib/mmif-cluster/admin.kubeconfig

# With KUBECONFIG set, every target that talks to a cluster uses that cluster as it is;
# without it, they use (and first bring up) the machine's local cluster.
ifeq ($(origin KUBECONFIG),undefined)
KUBECONFIG := $(LOCAL_KUBECONFIG)
USE_LOCAL_CLUSTER := 1
endif
export KUBECONFIG

.PHONY: help venv cluster cluster-down kubeconfig images crds docs deploy undeploy test test-unit test-cluster demo kwok bench

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@
venv: .venv/.installed ## the Python environment (.venv) with the project and its test tools

cluster: ## bring up the local single-node cluster (idempotent) and load the project's images
	bash cluster/up.sh
	bash images/build.sh

cluster-down: ## stop the local cluster and remove its state (the build cache stays)
	bash cluster/down.sh

kubeconfig: ## print the path of the local cluster's kubeconfig
	@echo $(LOCAL_KUBECONFIG)

images: ## build the operator and test-app images and load them into the local cluster
	bash images/build.sh

crds: venv ## regenerate crds/ from the pydantic models
	$(PY) -m mmif_operator.api.crdgen --out crds/

docs: venv ## regenerate the generated docs (state machines, resource reference)
	$(PY) -m mmif_operator.statemachine.docs > docs/state-machines.md
	$(PY) -m mmif_operator.api.docs > docs/reference.md

ensure-cluster:
ifdef USE_LOCAL_CLUSTER
	$(MAKE) --no-print-directory cluster
else
	kubectl get --raw /readyz >/dev/null
endif

test-unit: venv ## the fast tests: no cluster
	.venv/bin/pytest -q tests/unit

test-cluster: venv ensure-cluster ## the tests against the real cluster
	.venv/bin/pytest -q tests/cluster

test: venv ensure-cluster ## every test: unit tests, then the real-cluster tests
	.venv/bin/pytest -q tests

kwok: ensure-cluster ## start kwok for simulated nodes (scale tests only)
	bash cluster/kwok.sh
