"""Admission, for real: the API server itself (the generated CRDs' OpenAPI schemas, CEL rules and
strict field validation) refuses every Pipeline and PipelineRun that docs/reference.md forbids,
with an error naming the field, and fills in the documented defaults. Every object goes through
`kubectl apply`, as a user's would. Only the CRDs are needed, not the operator."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import kube

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO / "crds"
SAMPLES_DIR = REPO / "config" / "samples"
API_VERSION = "mmif.dev/v1alpha1"
TEXTGEN = "mmif.local/clams-textgen:dev"
TIMEFRAMES = "mmif.local/clams-timeframes:dev"


@pytest.fixture(scope="session")
def crds(cluster):
    """The project's CRDs, applied once (`kubectl apply -f crds/`) and Established."""
    kube.kubectl("apply", "-f", str(CRDS_DIR))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS_DIR), timeout=90)


@pytest.fixture(scope="module")
def admission_ns(crds):
    """One namespace for this module: rejected objects leave nothing behind."""
    name = f"t-admission-{uuid.uuid4().hex[:5]}"
    kube.kubectl("create", "namespace", name)
    yield name
    if os.environ.get("MMIF_KEEP_NAMESPACES") != "1":
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def whoami() -> str:
    """The user kubectl authenticates as (what the requester webhook records)."""
    return kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout.strip()


def spec_of(kind: str, name: str, namespace: str) -> dict:
    """The object's spec as the API server stored it, without `spec.requester`: that one is the
    operator's webhook's (recorded only while the operator is deployed, e.g. after `make demo`),
    not the CRD's. When present it must name the user who created the object."""
    spec = kube.get(kind, name, namespace)["spec"]
    requester = spec.pop("requester", None)
    if requester is not None:
        assert requester["username"] == whoami(), requester
    return spec


def apply_json(obj: dict, namespace: str, *extra: str):
    # JSON, not YAML: kubectl reads YAML 1.1, where an unquoted `y` or `no` is a boolean.
    return kube.kubectl("apply", "-n", namespace, *extra, "-f", "-", input=json.dumps(obj), check=False)


PIPELINE = {
    "apiVersion": API_VERSION,
    "kind": "Pipeline",
    "metadata": {"name": "transcribe"},
    "spec": {
        "workspace": {"claimName": "media"},
        "steps": [
            {"name": "transcript", "image": TEXTGEN},
            {"name": "segments", "image": TIMEFRAMES, "mode": "Service", "parameters": {"count": "5"}},
        ],
    },
}

RUN = {
    "apiVersion": API_VERSION,
    "kind": "PipelineRun",
    "metadata": {"name": "batch"},
    "spec": {
        "pipelineRef": {"name": "transcribe"},
        "workspace": {"claimName": "media"},
        "items": [
            {
                "name": "interview",
                "documents": [{"location": "media/interview.mp4", "mimeType": "video/mp4"}],
            },
            {"name": "lecture", "documents": [{"location": "media/lecture.wav", "mimeType": "audio/wav"}]},
        ],
    },
}


ANALYSIS = {
    "apiVersion": API_VERSION,
    "kind": "AnalysisJob",
    "metadata": {"name": "batch-seg"},
    "spec": {"runRef": {"name": "batch"}, "trigger": "Live", "app": {"image": TIMEFRAMES}},
}
TEMPLATE = {"name": "seg", "trigger": "AfterRun", "app": {"image": TIMEFRAMES}}


def doc(spec: dict) -> dict:
    """The first document of the first item (edits below change it in place)."""
    return spec["items"][0]["documents"][0]


def many_steps(n: int) -> list[dict]:
    return [{"name": f"step-{k}", "image": TEXTGEN} for k in range(n)]


def many_items(n: int) -> list[dict]:
    return [{"documents": [{"location": f"media/{k}.mp4", "mimeType": "video/mp4"}]} for k in range(n)]


def case(case_id: str, base: dict, edit: Callable[[dict], Any], *expected: str):
    """An object made from `base` by `edit(spec)`, and substrings the API server's error must hold
    (the first one names the field)."""
    return pytest.param(base, edit, expected, id=case_id)


PATH_RULE = "must be a relative path (no leading '/') without '..' segments"
ABS_RULE = "must be an absolute path (leading '/') without '..' segments"

INVALID = [
    # --- Pipeline: steps -------------------------------------------------------------------
    case(
        "pipeline-duplicate-step-names",
        PIPELINE,
        lambda s: s["steps"].append({"name": "transcript", "image": TEXTGEN}),
        "spec.steps[2]: Duplicate value",
        "spec.steps: step names must be unique",
    ),
    case(
        "pipeline-no-steps",
        PIPELINE,
        lambda s: s.update(steps=[]),
        "spec.steps: Invalid value: 0",
        "should have at least 1 items",
    ),
    case(
        "pipeline-too-many-steps",
        PIPELINE,
        lambda s: s.update(steps=many_steps(21)),
        "spec.steps: Too many: 21: must have at most 20 items",
    ),
    case(
        "step-bad-mode",
        PIPELINE,
        lambda s: s["steps"][0].update(mode="Cron"),
        'spec.steps[0].mode: Unsupported value: "Cron"',
        'supported values: "Job", "Service"',
    ),
    case(
        "step-url-with-job-mode",
        PIPELINE,
        lambda s: s["steps"][0].update(url="http://asr.example.org/"),
        "spec.steps[0].url: Invalid value",
        "url is only allowed with mode Service",
    ),
    case(
        "step-url-not-http",
        PIPELINE,
        lambda s: s["steps"][1].update(url="ftp://asr.example.org/"),
        'spec.steps[1].url: Invalid value: "ftp://asr.example.org/"',
        "should match",
    ),
    case(
        "step-no-image-no-url",
        PIPELINE,
        lambda s: s["steps"][0].pop("image"),
        "spec.steps[0].image: Invalid value",
        "image is required unless url is set",
    ),
    case(
        "step-replicas-in-job-mode",
        PIPELINE,
        lambda s: s["steps"][0].update(replicas=3),
        "spec.steps[0].replicas: Invalid value",
        "replicas is only meaningful with mode Service and no url",
    ),
    case(
        "step-replicas-with-url",
        PIPELINE,
        lambda s: s["steps"][1].update(url="http://segments.example.org/", replicas=2),
        "spec.steps[1].replicas: Invalid value",
        "replicas is only meaningful with mode Service and no url",
    ),
    case(
        "step-warm-in-service-mode",
        PIPELINE,
        lambda s: s["steps"][1].update(mode="Service", warm=True),
        "spec.steps[1].warm: Invalid value",
        "warm is only meaningful with mode Job and no alternatives",
    ),
    case(
        "step-autoscaling-in-job-mode",
        PIPELINE,
        lambda s: s["steps"][0].update(autoscaling={"minReplicas": 0}),
        "spec.steps[0].autoscaling: Invalid value",
        "autoscaling is only meaningful with mode Service and no url",
    ),
    case(
        "step-autoscaling-min-above-replicas",
        PIPELINE,
        lambda s: s["steps"][1].update(mode="Service", replicas=2, autoscaling={"minReplicas": 3}),
        "spec.steps[1].autoscaling.minReplicas: Invalid value",
        "autoscaling.minReplicas must not exceed replicas",
    ),
    case(
        "step-autoscaling-negative-delay",
        PIPELINE,
        lambda s: s["steps"][1].update(mode="Service", autoscaling={"scaleDownDelaySeconds": -1}),
        "spec.steps[1].autoscaling.scaleDownDelaySeconds",
    ),
    case(
        "step-replicas-0",
        PIPELINE,
        lambda s: s["steps"][1].update(replicas=0),
        "spec.steps[1].replicas: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "service-step-without-workspace",
        PIPELINE,
        lambda s: s.pop("workspace"),
        "spec.workspace: Invalid value",
        "spec.workspace is required when a step has mode Service and no url",
    ),
    case(
        "step-name-not-dns-label",
        PIPELINE,
        lambda s: s["steps"][0].update(name="Speech_To_Text"),
        'spec.steps[0].name: Invalid value: "Speech_To_Text"',
        "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
    ),
    case(
        "step-name-trailing-dash",
        PIPELINE,
        lambda s: s["steps"][0].update(name="asr-"),
        'spec.steps[0].name: Invalid value: "asr-"',
        "should match",
    ),
    case(
        "step-name-too-long",
        PIPELINE,
        lambda s: s["steps"][0].update(name="a" * 31),
        "spec.steps[0].name: Too long: may not be more than 30 bytes",
    ),
    case(
        "step-port-above-65535",
        PIPELINE,
        lambda s: s["steps"][0].update(port=70000),
        "spec.steps[0].port: Invalid value: 70000",
        "less than or equal to 65535",
    ),
    case(
        "step-port-0",
        PIPELINE,
        lambda s: s["steps"][0].update(port=0),
        "spec.steps[0].port: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "step-retries-above-10",
        PIPELINE,
        lambda s: s["steps"][0].update(retries=11),
        "spec.steps[0].retries: Invalid value: 11",
        "less than or equal to 10",
    ),
    case(
        "step-retries-negative",
        PIPELINE,
        lambda s: s["steps"][0].update(retries=-1),
        "spec.steps[0].retries: Invalid value: -1",
        "greater than or equal to 0",
    ),
    case(
        "step-timeout-0",
        PIPELINE,
        lambda s: s["steps"][0].update(timeoutSeconds=0),
        "spec.steps[0].timeoutSeconds: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "step-run-as-user-negative",
        PIPELINE,
        lambda s: s["steps"][0].update(runAsUser=-1),
        "spec.steps[0].runAsUser: Invalid value: -1",
        "greater than or equal to 0",
    ),
    case(
        "step-bad-quantity",
        PIPELINE,
        lambda s: s["steps"][0].update(resources={"limits": {"cpu": "lots"}}),
        'spec.steps[0].resources.limits.cpu: Invalid value: "lots"',
        "should match",
    ),
    case(
        "step-parameter-not-a-string",
        PIPELINE,
        lambda s: s["steps"][1]["parameters"].update(count=5),
        "spec.steps[1].parameters.count",
        "must be of type string",
    ),
    case(
        "step-env-bad-name",
        PIPELINE,
        lambda s: s["steps"][0].update(env=[{"name": "1 BAD", "value": "x"}]),
        'spec.steps[0].env[0].name: Invalid value: "1 BAD"',
        "should match",
    ),
    case(
        "step-env-duplicate-name",
        PIPELINE,
        lambda s: s["steps"][0].update(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        "spec.steps[0].env[1]: Duplicate value",
    ),
    case(
        "step-unknown-field",
        PIPELINE,
        lambda s: s["steps"][0].update(imagePullPolicy="Always"),
        'strict decoding error: unknown field "spec.steps[0].imagePullPolicy"',
    ),
    # --- Pipeline: workspace ---------------------------------------------------------------
    case(
        "pipeline-relative-mount-path",
        PIPELINE,
        lambda s: s["workspace"].update(mountPath="data"),
        'spec.workspace.mountPath: Invalid value: "string"',
        ABS_RULE,
    ),
    case(
        "pipeline-bad-claim-name",
        PIPELINE,
        lambda s: s["workspace"].update(claimName="Media_1"),
        'spec.workspace.claimName: Invalid value: "Media_1"',
        "should match",
    ),
    # --- PipelineRun: the batch --------------------------------------------------------------
    case(
        "run-empty-items",
        RUN,
        lambda s: s.update(items=[]),
        "spec.items: Invalid value: 0",
        "should have at least 1 items",
    ),
    case(
        "run-too-many-items",
        RUN,
        lambda s: s.update(items=many_items(1001)),
        "spec.items: Too many: 1001: must have at most 1000 items",
    ),
    case(
        "run-items-and-items-from",
        RUN,
        lambda s: s.update(itemsFrom={"path": "batches/b.jsonl"}),
        "spec: Invalid value",
        "spec: exactly one of items or itemsFrom must be set",
    ),
    case(
        "run-neither-items-nor-items-from",
        RUN,
        lambda s: s.pop("items"),
        "spec: Invalid value",
        "spec: exactly one of items or itemsFrom must be set",
    ),
    case(
        "item-documents-and-mmif",
        RUN,
        lambda s: s["items"][0].update(mmif="earlier/interview.mmif"),
        "spec.items[0]: Invalid value",
        "an item needs exactly one of documents, mmif or record",
    ),
    case(
        "item-neither-documents-nor-mmif",
        RUN,
        lambda s: s["items"][1].pop("documents"),
        "spec.items[1]: Invalid value",
        "an item needs exactly one of documents, mmif or record",
    ),
    case(
        "item-no-documents",
        RUN,
        lambda s: s["items"][0].update(documents=[]),
        "spec.items[0].documents: Invalid value: 0",
        "should have at least 1 items",
    ),
    case(
        "item-too-many-documents",
        RUN,
        lambda s: s["items"][0].update(documents=[dict(doc(s), location=f"m/{k}.mp4") for k in range(11)]),
        "spec.items[0].documents: Too many: 11: must have at most 10 items",
    ),
    case(
        "item-name-too-long",
        RUN,
        lambda s: s["items"][0].update(name="n" * 64),
        "spec.items[0].name: Too long: may not be more than 63 bytes",
    ),
    case(
        "document-absolute-location",
        RUN,
        lambda s: doc(s).update(location="/etc/passwd"),
        'spec.items[0].documents[0].location: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "document-location-escapes-with-dotdot",
        RUN,
        lambda s: doc(s).update(location="media/../../etc/passwd"),
        'spec.items[0].documents[0].location: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "document-location-starts-with-dotdot",
        RUN,
        lambda s: doc(s).update(location="../secret.mp4"),
        'spec.items[0].documents[0].location: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "document-location-ends-with-dotdot",
        RUN,
        lambda s: doc(s).update(location="media/.."),
        'spec.items[0].documents[0].location: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "document-bad-mime-type",
        RUN,
        lambda s: doc(s).update(mimeType="movie"),
        'spec.items[0].documents[0].mimeType: Invalid value: "movie"',
        "should match",
    ),
    case(
        "document-unsupported-mime-type",
        RUN,
        lambda s: doc(s).update(mimeType="application/pdf"),
        'spec.items[0].documents[0].mimeType: Invalid value: "application/pdf"',
        "should match",
    ),
    case(
        "document-unknown-field",
        RUN,
        lambda s: doc(s).update(path=doc(s).pop("location")),
        'strict decoding error: unknown field "spec.items[0].documents[0].path"',
    ),
    case(
        "item-absolute-mmif",
        RUN,
        lambda s: s["items"][0].update(mmif="/data/old.mmif") or s["items"][0].pop("documents"),
        'spec.items[0].mmif: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "items-from-escapes-with-dotdot",
        RUN,
        lambda s: s.pop("items") and s.update(itemsFrom={"path": "batches/../../b.jsonl"}),
        'spec.itemsFrom.path: Invalid value: "string"',
        PATH_RULE,
    ),
    # --- PipelineRun: workspace --------------------------------------------------------------
    case(
        "run-relative-mount-path",
        RUN,
        lambda s: s["workspace"].update(mountPath="data"),
        'spec.workspace.mountPath: Invalid value: "string"',
        ABS_RULE,
    ),
    case(
        "run-mount-path-with-dotdot",
        RUN,
        lambda s: s["workspace"].update(mountPath="/data/../etc"),
        'spec.workspace.mountPath: Invalid value: "string"',
        ABS_RULE,
    ),
    case(
        "run-output-dir-with-dotdot",
        RUN,
        lambda s: s["workspace"].update(outputDir="runs/../.."),
        'spec.workspace.outputDir: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "run-absolute-output-dir",
        RUN,
        lambda s: s["workspace"].update(outputDir="/tmp/runs"),
        'spec.workspace.outputDir: Invalid value: "string"',
        PATH_RULE,
    ),
    case(
        "run-without-claim-name",
        RUN,
        lambda s: s["workspace"].pop("claimName"),
        "spec.workspace.claimName: Required value",
    ),
    case("run-without-pipeline-ref", RUN, lambda s: s.pop("pipelineRef"), "spec.pipelineRef: Required value"),
    # --- PipelineRun: knobs ------------------------------------------------------------------
    case(
        "run-parallelism-0",
        RUN,
        lambda s: s.update(parallelism=0),
        "spec.parallelism: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "run-parallelism-above-1000",
        RUN,
        lambda s: s.update(parallelism=1001),
        "spec.parallelism: Invalid value: 1001",
        "less than or equal to 1000",
    ),
    case(
        "run-timeout-0",
        RUN,
        lambda s: s.update(timeoutSeconds=0),
        "spec.timeoutSeconds: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "run-ttl-negative",
        RUN,
        lambda s: s.update(ttlSecondsAfterFinished=-1),
        "spec.ttlSecondsAfterFinished: Invalid value: -1",
        "greater than or equal to 0",
    ),
    case(
        "run-bad-status",
        RUN,
        lambda s: s.update(status="Paused"),
        'spec.status: Unsupported value: "Paused"',
        'supported values: "Cancelled"',
    ),
    case(
        "run-bad-on-item-failure",
        RUN,
        lambda s: s.update(onItemFailure="Retry"),
        'spec.onItemFailure: Unsupported value: "Retry"',
        'supported values: "Stop", "Continue"',
    ),
    case(
        "run-param-not-a-string",
        RUN,
        lambda s: s.update(params={"segments": {"count": 3}}),
        "spec.params.segments.count",
        "must be of type string",
    ),
    case(
        "run-unknown-field",
        RUN,
        lambda s: s.update(concurrency=8),
        'strict decoding error: unknown field "spec.concurrency"',
    ),
    # --- Pipeline: analyses ----------------------------------------------------------------
    case(
        "pipeline-duplicate-analysis-names",
        PIPELINE,
        lambda s: s.update(analyses=[TEMPLATE, TEMPLATE]),
        "spec.analyses[1]: Duplicate value",
    ),
    case(
        "pipeline-analysis-named-as-a-step",
        PIPELINE,
        lambda s: s.update(analyses=[{**TEMPLATE, "name": "segments"}]),
        "spec.analyses: Invalid value",
        "analysis names must be unique and differ from step names",
    ),
    case(
        "pipeline-analysis-bad-trigger",
        PIPELINE,
        lambda s: s.update(analyses=[{**TEMPLATE, "trigger": "Nightly"}]),
        'spec.analyses[0].trigger: Unsupported value: "Nightly"',
        'supported values: "Live", "AfterRun"',
    ),
    case(
        "pipeline-analysis-service-without-url",
        PIPELINE,
        lambda s: s.update(analyses=[{**TEMPLATE, "app": {"image": TIMEFRAMES, "mode": "Service"}}]),
        "spec.analyses[0].app.url: Invalid value",
        "app.url is required with mode Service",
    ),
    case(
        "pipeline-too-many-analyses",
        PIPELINE,
        lambda s: s.update(analyses=[{**TEMPLATE, "name": f"a{k}"} for k in range(9)]),
        "spec.analyses: Too many: 9: must have at most 8 items",
    ),
    # --- AnalysisJob -------------------------------------------------------------------------
    case("analysis-no-run-ref", ANALYSIS, lambda s: s.pop("runRef"), "spec.runRef: Required value"),
    case(
        "analysis-no-image-no-url",
        ANALYSIS,
        lambda s: s.update(app={"mode": "Job"}),
        "spec.app.image: Invalid value",
        "image is required unless url is set",
    ),
    case(
        "analysis-parallelism-0",
        ANALYSIS,
        lambda s: s.update(parallelism=0),
        "spec.parallelism: Invalid value: 0",
        "greater than or equal to 1",
    ),
    case(
        "analysis-service-without-url",
        ANALYSIS,
        lambda s: s["app"].update(mode="Service"),
        "spec.app.url: Invalid value",
        "app.url is required with mode Service",
    ),
    case(
        "analysis-unknown-field",
        ANALYSIS,
        lambda s: s.update(schedule="nightly"),
        'strict decoding error: unknown field "spec.schedule"',
    ),
]


@pytest.mark.parametrize(("base", "edit", "expected"), INVALID)
def test_the_api_server_rejects_an_invalid_object_naming_the_field(admission_ns, base, edit, expected):
    obj = copy.deepcopy(base)
    edit(obj["spec"])
    obj["metadata"]["name"] = f"bad-{uuid.uuid4().hex[:8]}"
    proc = apply_json(obj, admission_ns)
    if proc.returncode == 0:
        kube.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "-n", admission_ns, check=False)
        pytest.fail(f"the API server accepted it: {proc.stdout.strip()}\n{json.dumps(obj['spec'])[:2000]}")
    error = proc.stderr
    assert "is invalid" in error or "strict decoding error" in error, error  # the server's answer
    for text in expected:
        assert text in error, f"{text!r} not in the API server's answer:\n{error}"


# --- the valid objects: accepted, defaults filled by the API server ---------------------------


def test_the_samples_are_accepted(admission_ns):
    proc = kube.kubectl("apply", "-n", admission_ns, "--dry-run=server", "-f", str(SAMPLES_DIR), check=False)
    assert proc.returncode == 0, proc.stderr
    kinds = {d["kind"] for f in SAMPLES_DIR.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d}
    assert {"Pipeline", "PipelineRun", "PersistentVolumeClaim"} <= kinds


def test_a_valid_pipeline_and_run_are_accepted_with_the_defaults_filled_in(admission_ns):
    pipeline = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": "minimal"},
        "spec": {
            "steps": [
                {"name": "transcript", "image": TEXTGEN},
                {"name": "segments", "image": TIMEFRAMES, "mode": "Service"},
            ],
            "workspace": {"claimName": "media"},
        },
    }
    run = {
        "apiVersion": API_VERSION,
        "kind": "PipelineRun",
        "metadata": {"name": "minimal-1"},
        "spec": {
            "pipelineRef": {"name": "minimal"},
            "workspace": {"claimName": "media"},
            "items": [
                {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}]},
                {"mmif": "earlier/b.mmif"},
            ],
        },
    }
    for obj in (pipeline, run):
        proc = apply_json(obj, admission_ns)
        assert proc.returncode == 0, proc.stderr

    assert kube.get("pipeline", "minimal", admission_ns)["spec"] == {
        "steps": [
            {
                "name": "transcript",
                "image": TEXTGEN,
                "mode": "Job",
                "port": 5000,
                "replicas": 1,
                "retries": 2,
                "startupTimeoutSeconds": 900,
                "ownPod": False,
                "warm": False,
            },
            {
                "name": "segments",
                "image": TIMEFRAMES,
                "mode": "Service",
                "port": 5000,
                "replicas": 1,
                "retries": 2,
                "startupTimeoutSeconds": 900,
                "ownPod": False,
                "warm": False,
            },
        ],
        "workspace": {"claimName": "media", "mountPath": "/data"},
        "progressDeadlineSeconds": 900,
    }
    assert spec_of("pipelinerun", "minimal-1", admission_ns) == {
        "pipelineRef": {"name": "minimal"},
        "workspace": {"claimName": "media", "mountPath": "/data", "outputDir": "mmif-runs"},
        "items": run["spec"]["items"],
        "parallelism": 4,
        "onItemFailure": "Stop",
        "startTimeoutSeconds": 900,
    }


def test_an_external_service_step_needs_no_image_and_no_workspace(admission_ns):
    pipeline = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": "external"},
        "spec": {"steps": [{"name": "asr", "mode": "Service", "url": "https://asr.example.org/"}]},
    }
    proc = apply_json(pipeline, admission_ns)
    assert proc.returncode == 0, proc.stderr


# --- immutability: every spec field but status and ttlSecondsAfterFinished -------------------


@pytest.fixture
def created_run(admission_ns) -> str:
    run = copy.deepcopy(RUN)
    run["metadata"]["name"] = f"run-{uuid.uuid4().hex[:8]}"
    run["spec"].update(params={"segments": {"count": "2"}})
    proc = apply_json(run, admission_ns)
    assert proc.returncode == 0, proc.stderr
    return run["metadata"]["name"]


def patch_run(namespace: str, name: str, spec: dict):
    return kube.kubectl(
        "patch",
        "pipelinerun",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
        check=False,
    )


IMMUTABLE = [
    pytest.param({"pipelineRef": {"name": "other"}}, ["pipelineRef"], id="pipelineRef"),
    pytest.param({"workspace": {"outputDir": "elsewhere"}}, ["workspace"], id="workspace"),
    pytest.param({"items": many_items(3)}, ["items"], id="items"),
    pytest.param(
        {"items": None, "itemsFrom": {"path": "batch.jsonl"}}, ["items", "itemsFrom"], id="itemsFrom"
    ),
    pytest.param({"parallelism": 8}, ["parallelism"], id="parallelism"),
    pytest.param({"params": {"segments": {"count": "9"}}}, ["params"], id="params"),
    pytest.param({"timeoutSeconds": 60}, ["timeoutSeconds"], id="timeoutSeconds"),
    pytest.param({"onItemFailure": "Continue"}, ["onItemFailure"], id="onItemFailure"),
]


@pytest.mark.parametrize(("change", "fields"), IMMUTABLE)
def test_a_run_spec_field_cannot_change_after_creation(admission_ns, created_run, change, fields):
    before = kube.get("pipelinerun", created_run, admission_ns)["spec"]
    proc = patch_run(admission_ns, created_run, change)
    assert proc.returncode != 0, f"the change was accepted: {proc.stdout}"
    for field in fields:
        assert (
            f"spec.{field}: Invalid value" in proc.stderr and f"spec.{field} is immutable" in proc.stderr
        ), proc.stderr
    assert kube.get("pipelinerun", created_run, admission_ns)["spec"] == before


def test_reapplying_an_edited_run_file_is_rejected(admission_ns, created_run):
    run = copy.deepcopy(RUN)
    run["metadata"]["name"] = created_run
    run["spec"].update(params={"segments": {"count": "2"}}, parallelism=16)
    proc = apply_json(run, admission_ns)
    assert proc.returncode != 0
    assert "spec.parallelism is immutable" in proc.stderr, proc.stderr


def test_a_run_can_be_cancelled_and_given_a_ttl_but_not_resumed(admission_ns, created_run):
    # No TTL of 0 once cancelled: with the operator deployed, a cancelled run with `ttl: 0` is
    # deleted at once (as documented), and this test is about what the API server accepts.
    for change in (
        {"ttlSecondsAfterFinished": 3600},
        {"ttlSecondsAfterFinished": 0},
        {"ttlSecondsAfterFinished": None},
        {"status": "Cancelled"},
        {"ttlSecondsAfterFinished": 3600},
    ):
        proc = patch_run(admission_ns, created_run, change)
        assert proc.returncode == 0, f"{change}: {proc.stderr}"
    spec = kube.get("pipelinerun", created_run, admission_ns)["spec"]
    assert spec["status"] == "Cancelled" and spec["ttlSecondsAfterFinished"] == 3600

    proc = patch_run(admission_ns, created_run, {"status": None})
    assert proc.returncode != 0
    assert "spec.status: Invalid value" in proc.stderr
    assert "a cancelled run cannot be resumed" in proc.stderr


def test_an_analysis_job_spec_cannot_change_after_creation(admission_ns):
    aj = copy.deepcopy(ANALYSIS)
    aj["metadata"]["name"] = f"aj-{uuid.uuid4().hex[:6]}"
    proc = apply_json(aj, admission_ns)
    assert proc.returncode == 0, proc.stderr
    created = spec_of("analysisjob", aj["metadata"]["name"], admission_ns)
    assert (created["trigger"], created["parallelism"]) == ("Live", 4)  # defaults filled in
    proc = kube.kubectl(
        "patch",
        "analysisjob",
        aj["metadata"]["name"],
        "-n",
        admission_ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"trigger": "AfterRun"}}),
        check=False,
    )
    assert proc.returncode != 0 and "spec is immutable" in proc.stderr, proc.stderr
    assert spec_of("analysisjob", aj["metadata"]["name"], admission_ns) == created
