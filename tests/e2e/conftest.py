"""Fixtures of the operator's end-to-end tests, on the real cluster, through kubectl:

- `operator_deployed` (session): `make deploy` (CRDs, the operator, its rollout); left running.
- `workspace`: an RWX volume in the test's namespace, made from config/samples/workspace-pvc.yaml,
  with `write_media({...})` and `read_file(path)` going through a pod that mounts it.
- `build`: Pipeline / PipelineRun dicts made from config/samples/ with the test-app images.
- `runs`: wait for a run to finish (without waiting out the timeout when it failed), and the
  diagnostics to print when a run did not do what a test expected.
"""

from __future__ import annotations

import os
import subprocess
import types
from pathlib import Path

import pytest

from tests import kube, objects
from tests import runs as runs_module
from tests.objects import app_identifier, app_image, apply, item, pipeline, sample, step  # noqa: F401
from tests.objects import run as pipeline_run  # noqa: F401
from tests.runs import (  # noqa: F401
    OPERATOR_DEPLOYMENT,
    OPERATOR_NS,
    operator_logs,
    run_diagnostics,
    succeeded_condition,
    wait_for_run_to_finish,
)
from tests.volume import (  # noqa: F401
    MOUNT_PATH,
    VOLUME_POD_IMAGE,
    Workspace,
    ensure_volume_pod,
    list_files,
    read_file,
    write_media,
)

REPO = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = "/var/lib/mmif-cluster/admin.kubeconfig"


@pytest.fixture(scope="session")
def operator_deployed(cluster):
    """The operator, installed with `make deploy` (on the local cluster after `make images`, so the
    images hold this checkout's code; set MMIF_E2E_BUILD=0 to skip that). Left running afterwards."""
    targets = ["deploy"]
    local = os.path.realpath(os.environ["KUBECONFIG"]) == os.path.realpath(LOCAL_KUBECONFIG)
    if local and os.environ.get("MMIF_E2E_BUILD", "1") != "0":
        targets.insert(0, "images")
    proc = subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).splitlines()
        pytest.fail(
            f"`make {' '.join(targets)}` failed ({proc.returncode}):\n" + "\n".join(out[-40:]), pytrace=False
        )
    return types.SimpleNamespace(namespace=OPERATOR_NS, deployment=OPERATOR_DEPLOYMENT)


# --- the volume ---------------------------------------------------------------------------------


@pytest.fixture
def workspace(namespace) -> Workspace:
    """config/samples/workspace-pvc.yaml (1Gi) in the test's namespace, mounted by a helper pod."""
    pvc = sample("workspace-pvc.yaml")
    pvc["spec"]["resources"]["requests"]["storage"] = "1Gi"
    apply(pvc, namespace)
    claim = pvc["metadata"]["name"]
    ensure_volume_pod(namespace, claim)
    kube.wait(f"pvc/{claim}", "jsonpath={.status.phase}=Bound", namespace, timeout=60)
    return Workspace(namespace, claim)


# --- Pipelines and PipelineRuns -----------------------------------------------------------------


@pytest.fixture(scope="session")
def build():
    """The builders, for tests: `build.pipeline(...)`, `build.step(...)`, `build.run(...)`, ...
    (the module tests/objects.py)."""
    return objects


# --- waiting and diagnostics --------------------------------------------------------------------


@pytest.fixture(scope="session")
def runs():
    """Run helpers, for tests: `runs.wait_to_finish(ns, name)`, `runs.condition(run)`,
    `runs.diagnostics(ns, name)`, `runs.operator_logs()` (the module tests/runs.py)."""
    return runs_module
