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

.PHONY: help venv cluster cluster-down kubeconfig images crds docs deploy undeploy test test-unit test-cluster demo kwok bench lint

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
	$(PY) -m mmif_operator.core.crdgen --out crds/

docs: venv ## regenerate the generated docs (state machines, resource reference, argocd-cm health snippet)
	$(PY) -m mmif_operator.kinds.pipelinerun.phases_doc > docs/state-machines.md
	$(PY) -m mmif_operator.core.refdocs > docs/reference.md
	$(PY) -m tests.health write

ensure-cluster:
ifdef USE_LOCAL_CLUSTER
	$(MAKE) --no-print-directory cluster
else
	kubectl get --raw /readyz >/dev/null
endif

OPERATOR_NS := mmif-system
OPERATOR_IMAGE := mmif.local/mmif-operator:dev
# The Deployments that run the operator image (the operator, the web console).
OPERATOR_DEPLOYMENTS := mmif-operator mmif-console

# On the local cluster the operator's pods restart only when the image in containerd changed: its
# config digest goes into a pod-template annotation (an unchanged digest patches nothing).
# Elsewhere the image cannot be inspected, so an existing Deployment is simply restarted.
deploy: ensure-cluster ## install the CRDs, the operator and the web console (restarted when their image changed)
	kubectl apply -f crds/
	kubectl wait --for=condition=Established --timeout=60s -f crds/
	@set -e; existed=$$(kubectl -n $(OPERATOR_NS) get deployment mmif-operator -o name --ignore-not-found); \
	kubectl apply -k manifests/; \
	if [ "$(KUBECONFIG)" = "$(LOCAL_KUBECONFIG)" ]; then \
	  source cluster/lib.sh; \
	  ref=$$(ctr --address "$$CONTAINERD_SOCK" -n k8s.io images ls "name==$(OPERATOR_IMAGE)" "name==docker.io/$(OPERATOR_IMAGE)" | awk 'NR>1 {print $$3; exit}'); \
	  [ -n "$$ref" ] || { echo "$(OPERATOR_IMAGE) is not in the local cluster: run make images" >&2; exit 1; }; \
	  digest=$$(ctr --address "$$CONTAINERD_SOCK" -n k8s.io content get "$$ref" | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])'); \
	  for d in $(OPERATOR_DEPLOYMENTS); do kubectl -n $(OPERATOR_NS) patch deployment $$d --type=merge \
	    -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"mmif.dev/image-config-digest\":\"$$digest\"}}}}}"; done; \
	elif [ -n "$$existed" ]; then \
	  for d in $(OPERATOR_DEPLOYMENTS); do kubectl -n $(OPERATOR_NS) rollout restart deployment/$$d; done; \
	fi
	kubectl -n $(OPERATOR_NS) rollout status deployment/mmif-operator --timeout=180s || { \
	  kubectl -n $(OPERATOR_NS) get pods -o wide; \
	  kubectl -n $(OPERATOR_NS) logs deployment/mmif-operator --tail=30; exit 1; }
	kubectl -n $(OPERATOR_NS) rollout status deployment/mmif-console --timeout=120s || { \
	  kubectl -n $(OPERATOR_NS) get pods -o wide; \
	  kubectl -n $(OPERATOR_NS) logs deployment/mmif-console --tail=30; exit 1; }
	@# The admission webhook answers (caBundle set, Service endpoints ready): a server-side dry run.
	@for i in $$(seq 60); do \
	  kubectl -n $(OPERATOR_NS) create --dry-run=server -o name -f config/samples/webhook-probe.yaml >/dev/null 2>&1 && exit 0; \
	  sleep 1; done; kubectl -n $(OPERATOR_NS) create --dry-run=server -f config/samples/webhook-probe.yaml; exit 1

undeploy: ## remove the operator (namespace mmif-system, RBAC); the CRDs, Pipelines and runs stay
	kubectl delete -k manifests/ --ignore-not-found
	@echo "CRDs kept. Pipelines and runs carry the finalizer mmif.dev/finalizer, which only the operator"
	@echo "removes: delete them (and \`kubectl delete -f crds/\`) before undeploying to remove everything."

# Not part of `make test` yet: the format check passes only once the tree is formatted.
lint: venv ## ruff (lint), mypy, then the ruff format check
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/ruff format --check .

test-unit: venv ## the fast tests: no cluster
	.venv/bin/pytest -q tests/unit

test-cluster: venv ensure-cluster ## the tests against the real cluster
	.venv/bin/pytest -q tests/cluster

test: venv lint ensure-cluster ## every test: lint, unit tests, then the real-cluster tests
	.venv/bin/pytest -q --durations=40 tests

demo: venv deploy ## run a real two-step pipeline over the sample media, live, and summarise the results
	.venv/bin/python demo/demo.py

kwok: ensure-cluster ## start kwok for simulated nodes (scale benchmark only; KWOK_COMPLETE_DELAY_MS=N)
	bash cluster/kwok.sh

BENCH_ARGS ?=
bench: venv deploy ## the scale benchmark: the operator vs a minimal client on kwok nodes (bench/README.md)
	.venv/bin/python -m bench $(BENCH_ARGS)
