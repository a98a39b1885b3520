"""Plain-value views of the API objects the builders read.

The builders and the reconciler work on plain camelCase dicts, as kopf hands them over (and as
`status.pipelineSpec` stores the snapshot). A pydantic model of the kinds (`kinds/*/model.py`) is accepted
too and dumped by alias. Every default is read from the models (`_default`), so a dict written by hand (a test,
an object created before a default existed) reads the same as a defaulted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from mmif_operator.core.model import API_VERSION as API_VERSION  # re-exported for the builders
from mmif_operator.core.model import GROUP
from mmif_operator.kinds.pipeline import model as pipeline_api
from mmif_operator.kinds.pipeline.app import App, StepMode
from mmif_operator.kinds.pipelinerun import model as run_api
from mmif_operator.kinds.pipelinerun.model import OnItemFailure, PipelineRunSpec, RunWorkspace
from mmif_operator.runner.paths import run_dir


def _default(model: type[BaseModel], field: str) -> Any:
    """A field's default, as the model declares it (the one place a default is written)."""
    return model.model_fields[field].default


DEFAULT_PORT = int(_default(App, "port"))
DEFAULT_RETRIES = int(_default(App, "retries"))
DEFAULT_REPLICAS = int(_default(App, "replicas"))
DEFAULT_MOUNT_PATH = str(_default(RunWorkspace, "mount_path"))
DEFAULT_OUTPUT_DIR = str(_default(RunWorkspace, "output_dir"))
DEFAULT_PARALLELISM = int(_default(PipelineRunSpec, "parallelism"))
DEFAULT_STARTUP_TIMEOUT = int(_default(App, "startup_timeout_seconds"))
DEFAULT_START_TIMEOUT = int(_default(PipelineRunSpec, "start_timeout_seconds"))
DEFAULT_PROGRESS_DEADLINE = int(_default(pipeline_api.PipelineSpec, "progress_deadline_seconds"))
MODE_JOB = StepMode.JOB.value
MODE_SERVICE = StepMode.SERVICE.value
ON_FAILURE_STOP = OnItemFailure.STOP.value
ON_FAILURE_CONTINUE = OnItemFailure.CONTINUE.value

API_GROUP = GROUP
KIND_PIPELINE = pipeline_api.KIND
KIND_RUN = run_api.KIND


def plain(obj: Any) -> dict[str, Any]:
    """A camelCase dict of `obj` (a Mapping, a pydantic model, or None → {})."""
    if obj is None:
        return {}
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected a mapping or a pydantic model, got {type(obj).__name__}")


def step_mode(step: Mapping[str, Any]) -> str:
    return step.get("mode") or MODE_JOB


def step_port(step: Mapping[str, Any]) -> int:
    return int(step.get("port") or DEFAULT_PORT)


def step_retries(step: Mapping[str, Any]) -> int:
    value = step.get("retries")
    return DEFAULT_RETRIES if value is None else int(value)


def step_startup_timeout(step: Mapping[str, Any]) -> int:
    """Seconds an item's pod of this step (or analysis app) may take to start (`startupTimeoutSeconds`)."""
    value = step.get("startupTimeoutSeconds")
    return DEFAULT_STARTUP_TIMEOUT if value is None else int(value)


def run_start_timeout(spec: Mapping[str, Any]) -> int:
    """Seconds a run may wait to start, and its prepare/manifest pods to start (`startTimeoutSeconds`)."""
    value = spec.get("startTimeoutSeconds")
    return DEFAULT_START_TIMEOUT if value is None else int(value)


def step_replicas(step: Mapping[str, Any]) -> int:
    return int(step.get("replicas") or DEFAULT_REPLICAS)


def step_uses_sidecar(step: Mapping[str, Any]) -> bool:
    """Job mode: the app runs in the step pod as a native sidecar."""
    return step_mode(step) != MODE_SERVICE and not step.get("url")


def step_needs_deployment(step: Mapping[str, Any]) -> bool:
    """Service mode without url: the operator keeps a Deployment + Service."""
    return step_mode(step) == MODE_SERVICE and not step.get("url")


def workspace_mount_path(workspace: Mapping[str, Any] | None) -> str:
    return (workspace or {}).get("mountPath") or DEFAULT_MOUNT_PATH


def workspace_output_dir(workspace: Mapping[str, Any] | None) -> str:
    return (workspace or {}).get("outputDir") or DEFAULT_OUTPUT_DIR


def run_output_path(run_name: str, workspace: Mapping[str, Any] | None) -> str:
    """The run's folder as seen in pods, e.g. `/data/mmif-runs/run-1` (runner/paths.py)."""
    return run_dir(run_name, workspace_mount_path(workspace), workspace_output_dir(workspace))


def run_parallelism(spec: Mapping[str, Any]) -> int:
    return int(spec.get("parallelism") or DEFAULT_PARALLELISM)


def run_on_item_failure(spec: Mapping[str, Any]) -> str:
    return spec.get("onItemFailure") or ON_FAILURE_STOP


def merged_parameters(step: Mapping[str, Any], run_spec: Mapping[str, Any]) -> dict[str, str]:
    """The step's `parameters`, overridden by the run's `params[<step name>]`."""
    params = {str(k): str(v) for k, v in (step.get("parameters") or {}).items()}
    overrides = (run_spec.get("params") or {}).get(step.get("name"), {}) or {}
    params.update({str(k): str(v) for k, v in overrides.items()})
    return params
