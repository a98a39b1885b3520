"""Test objects for the end-to-end tests: Pipeline and PipelineRun dicts made from
config/samples/ with the test-app images, and `apply` (kubectl apply). Import them
(`from tests import objects`); the e2e `build` fixture is this module."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests import kube

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO / "config" / "samples"

# The test apps (tests/apps/): image and the identifier that signs their views.
APPS = ("textgen", "timeframes", "sleeper", "failer", "spy", "bigmouth", "flaky")


def app_image(app: str) -> str:
    return f"mmif.local/clams-{app}:dev"


def app_identifier(app: str) -> str:
    return f"http://apps.mmif.dev/{app}/v1"


def apply(obj: dict | list[dict], namespace: str) -> None:
    """`kubectl apply` of objects sent as JSON (kubectl reads YAML 1.1: an unquoted `y` is a bool)."""
    body = {"apiVersion": "v1", "kind": "List", "items": obj} if isinstance(obj, list) else obj
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


# --- Pipelines and PipelineRuns ----------------------------------------------------------------


def sample(file_name: str) -> dict[str, Any]:
    """One object of config/samples/ (a fresh copy)."""
    return yaml.safe_load((SAMPLES_DIR / file_name).read_text())


def step(name: str, app: str, mode: str = "Job", **fields: Any) -> dict[str, Any]:
    """A step running the test app `app` (one gunicorn worker, as tests/apps/README.md advises)."""
    body = {
        "name": name,
        "image": app_image(app),
        "mode": mode,
        "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}],
    }
    body.update(fields)
    return body


def pipeline(name: str, steps: list[dict], claim_name: str = "media", **spec: Any) -> dict[str, Any]:
    """config/samples/pipeline.yaml with another name and steps."""
    obj = sample("pipeline.yaml")
    obj["metadata"] = {"name": name}
    obj["spec"]["steps"] = copy.deepcopy(steps)
    obj["spec"]["workspace"]["claimName"] = claim_name
    obj["spec"].update(spec)
    return obj


def item(*locations: str, name: str | None = None, mime_type: str = "video/mp4") -> dict[str, Any]:
    body: dict[str, Any] = {"documents": [{"location": loc, "mimeType": mime_type} for loc in locations]}
    if name is not None:
        body["name"] = name
    return body


def run(
    name: str, pipeline_name: str, items: list[dict], claim_name: str = "media", **spec: Any
) -> dict[str, Any]:
    """config/samples/pipelinerun.yaml for another pipeline and batch (no params unless given)."""
    obj = sample("pipelinerun.yaml")
    obj["metadata"] = {"name": name}
    obj["spec"].pop("params", None)
    obj["spec"].update(pipelineRef={"name": pipeline_name}, items=copy.deepcopy(items))
    obj["spec"]["workspace"]["claimName"] = claim_name
    obj["spec"].update(spec)
    return obj


pipeline_run = run  # the older name
