"""The pydantic models accept the documented shapes and refuse what admission refuses."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from pydantic import ValidationError

from mmif_operator.core.model import RESERVED_MOUNT_PATHS, reserved_mount_path
from mmif_operator.kinds.pipeline.model import PipelineSpec, StepMode
from mmif_operator.kinds.pipelinerun.model import (
    IMMUTABLE_SPEC_FIELDS,
    PipelineRunSpec,
    PipelineRunStatus,
    RunPhase,
    Transition,
)

PIPELINE = yaml.safe_load("""
steps:
- name: swt
  image: ghcr.io/clamsproject/app-swt-detection:v7.1
  parameters: {pretty: "true"}
  resources:
    requests: {cpu: 500m, memory: 2Gi}
    limits: {nvidia.com/gpu: 1}
  nodeSelector: {nvidia.com/gpu.present: "true"}
  env: [{name: LOG_LEVEL, value: debug}]
  timeoutSeconds: 600
  retries: 3
- name: whisper
  image: ghcr.io/clamsproject/app-whisper-wrapper:v10
  mode: Service
  replicas: 2
- name: ner
  mode: Service
  url: http://ner.nlp.svc:5000/
workspace:
  claimName: media
""")

RUN = yaml.safe_load("""
pipelineRef: {name: news}
workspace: {claimName: media, outputDir: out}
items:
- name: first
  documents:
  - {location: videos/news-1.mp4, mimeType: video/mp4}
  - {location: transcripts/news-1.txt, mimeType: text/plain}
- mmif: earlier/news-2.mmif
parallelism: 8
params: {swt: {timeUnit: seconds}}
onItemFailure: Continue
""")


def _with(base: dict, path: str, value) -> dict:
    """A copy of `base` with `value` at dotted `path` (list indexes as numbers); None deletes."""
    obj = copy.deepcopy(base)
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = obj
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return obj


def test_pipeline_example_parses_with_defaults():
    spec = PipelineSpec.from_obj(PIPELINE)
    swt, whisper, ner = spec.steps
    assert swt.mode is StepMode.JOB and swt.port == 5000 and swt.replicas == 1
    assert swt.resources.limits == {"nvidia.com/gpu": 1}
    assert whisper.replicas == 2 and ner.url == "http://ner.nlp.svc:5000/"
    assert spec.workspace.mount_path == "/data"


def test_pipeline_round_trips_by_alias():
    dumped = PipelineSpec.from_obj(PIPELINE).to_dict()
    assert dumped["steps"][0]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "url" not in dumped["steps"][0]  # None fields are left out
    assert PipelineSpec.from_obj(dumped) == PipelineSpec.from_obj(PIPELINE)


def test_run_example_parses_with_defaults():
    spec = PipelineRunSpec.from_obj(RUN)
    assert spec.workspace.mount_path == "/data" and spec.workspace.output_dir == "out"
    assert spec.items[1].mmif == "earlier/news-2.mmif" and spec.items[1].documents is None
    assert spec.params == {"swt": {"timeUnit": "seconds"}}
    assert spec.status is None and spec.ttl_seconds_after_finished is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("steps.1.name", "swt", "step names must be unique"),
        ("steps.0.image", None, "image is required unless url is set"),
        ("steps.0.url", "http://x/", "url is only allowed with mode Service"),
        ("steps.0.replicas", 2, "replicas is only meaningful with mode Service and no url"),
        ("steps.2.replicas", 2, "replicas is only meaningful with mode Service and no url"),
        ("workspace", None, "spec.workspace is required when a step has mode Service"),
        ("workspace.mountPath", "data", "must be an absolute path"),
        ("steps.0.name", "Upper_Case", "String should match pattern"),
        ("steps.0.mode", "Daemon", "Input should be 'Job' or 'Service'"),
        ("steps.0.retries", 11, "less than or equal to 10"),
        ("steps.0.resources.requests.cpu", "lots", "String should match pattern"),
        ("steps.0.colour", "red", "Extra inputs are not permitted"),
        ("steps", [], "at least 1 item"),
    ],
)
def test_pipeline_rejects_invalid_spec(path, value, message):
    with pytest.raises(ValidationError, match=message):
        PipelineSpec.from_obj(_with(PIPELINE, path, value))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("items.0.mmif", "a.mmif", "exactly one of documents, mmif or record"),
        ("items.1.mmif", None, "exactly one of documents, mmif or record"),
        ("itemsFrom", {"path": "batch.jsonl"}, "exactly one of items or itemsFrom"),
        ("items", None, "exactly one of items or itemsFrom"),
        ("items", [], "at least 1 item"),
        ("items.0.documents.0.location", "/etc/passwd", "must be a relative path"),
        ("items.0.documents.0.location", "../secret.mp4", "must be a relative path"),
        ("items.0.documents.0.location", "a/../../b.mp4", "must be a relative path"),
        ("items.0.documents.0.location", "a/..", "must be a relative path"),
        ("items.0.documents.0.mimeType", "application/pdf", "String should match pattern"),
        ("workspace.outputDir", "/abs", "must be a relative path"),
        ("workspace.mountPath", "/data/../etc", "must be an absolute path"),
        ("parallelism", 0, "greater than or equal to 1"),
        ("status", "Paused", "Input should be 'Cancelled'"),
        ("pipelineRef", None, "Field required"),
    ],
)
def test_run_rejects_invalid_spec(path, value, message):
    with pytest.raises(ValidationError, match=message):
        PipelineRunSpec.from_obj(_with(RUN, path, value))


@pytest.mark.parametrize("location", ["a..b/c.mp4", "..hidden/x.mp4", "a/.../b", "./a.mp4"])
def test_relative_path_allows_dots_that_are_not_parent_segments(location):
    PipelineRunSpec.from_obj(_with(RUN, "items.0.documents.0.location", location))


RESERVED_MESSAGE = "must not be one of the folders the pods need for themselves"


@pytest.mark.parametrize(
    "mount_path",
    [
        "/",
        "/tmp",
        "/tmp/media",
        "/dev",
        "/proc/x",
        "/sys",
        "/etc",
        "/usr/local/data",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/opt",
        "/opt/venv",
        "/run",
        "/var/run",
        "/var",
        "/app",
        "/app/data",
    ],
)
@pytest.mark.parametrize("model", ["run", "pipeline"])
def test_a_workspace_cannot_be_mounted_at_or_inside_or_above_a_reserved_folder(model, mount_path):
    # /tmp is the runner's emptyDir in every pod (the API server refused every Job with a 422, and
    # the run said "preparing the batch" forever); /var lies above /var/run.
    parse, base = (PipelineRunSpec.from_obj, RUN) if model == "run" else (PipelineSpec.from_obj, PIPELINE)
    with pytest.raises(ValidationError, match=RESERVED_MESSAGE):
        parse(_with(base, "workspace.mountPath", mount_path))


@pytest.mark.parametrize("mount_path", ["/data/", "//data", "/data//x", "/./data", "/data/."])
def test_a_mount_path_is_written_clean_so_the_reserved_check_cannot_be_dodged(mount_path):
    with pytest.raises(ValidationError, match="must be a clean absolute path"):
        PipelineRunSpec.from_obj(_with(RUN, "workspace.mountPath", mount_path))


@pytest.mark.parametrize(
    "mount_path",
    [
        "/data",
        "/mnt/media",
        "/media",
        "/srv/clams",
        "/tmpdata",
        "/apps",
        "/var/lib/media",
        "/home/me/data",
        "/data.d",
    ],
)
def test_ordinary_mount_paths_are_accepted(mount_path):
    assert (
        PipelineRunSpec.from_obj(_with(RUN, "workspace.mountPath", mount_path)).workspace.mount_path
        == mount_path
    )
    assert reserved_mount_path(mount_path) is None


def test_the_reserved_folders_are_declared_once_and_the_schema_rule_lists_them_all():
    from mmif_operator.core.crdgen import rendered_files

    files = rendered_files()
    for name in ("mmif.dev_pipelines.yaml", "mmif.dev_pipelineruns.yaml"):
        rule = next(line for line in files[name].splitlines() if "].exists(r," in line)
        assert all(f"''{p}''" in files[name] for p in RESERVED_MOUNT_PATHS), (name, rule)
    assert reserved_mount_path("/tmp") == "/tmp" and reserved_mount_path("/var") == "/var/run"


def test_start_bounds_have_defaults_for_real_apps():
    spec = PipelineRunSpec.from_obj(RUN)
    step = PipelineSpec.from_obj(PIPELINE).steps[0]
    assert spec.start_timeout_seconds == 900 and step.startup_timeout_seconds == 900
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        PipelineRunSpec.from_obj(_with(RUN, "startTimeoutSeconds", 0))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        PipelineSpec.from_obj(_with(PIPELINE, "steps.0.startupTimeoutSeconds", 0))


def test_every_run_spec_field_but_status_review_ttl_and_wip_is_immutable():
    aliases = {f.alias for f in PipelineRunSpec.model_fields.values()}
    mutable = {"status", "review", "ttlSecondsAfterFinished", "workInProgress"}
    assert set(IMMUTABLE_SPEC_FIELDS) == aliases - mutable


def test_empty_status_parses_from_none():
    status = PipelineRunStatus.from_obj(None)
    assert status.phase is None and status.failures == []
    assert status.to_status_patch() == {
        "conditions": [],
        "itemsSucceeded": 0,
        "itemsFailed": 0,
        "itemsCancelled": 0,
        "steps": [],
        "alternatives": [],
        "failures": [],
        "history": [],
        "analyses": [],
    }


def test_status_patch_uses_aliases_and_rfc3339_utc_times():
    at = datetime(2025, 1, 2, 4, 5, 6, 789, tzinfo=timezone(timedelta(hours=1)))
    status = PipelineRunStatus(
        phase=RunPhase.RUNNING,
        history=[Transition(to=RunPhase.PENDING, reason="Pending", time=at)],
        pipeline_spec=PipelineSpec.from_obj(PIPELINE),
    )
    patch = status.to_status_patch()
    assert patch["phase"] == "Running"
    assert patch["history"] == [{"to": "Pending", "reason": "Pending", "time": "2025-01-02T03:05:06Z"}]
    assert patch["pipelineSpec"]["steps"][0]["name"] == "swt"
    assert "startTime" not in patch


def test_status_reads_history_entry_by_alias_and_ignores_unknown_fields():
    status = PipelineRunStatus.from_obj(
        {
            "history": [
                {"from": "Pending", "to": "Running", "reason": "Running", "time": "2025-01-02T03:04:05Z"}
            ],
            "somethingNew": 1,
        }
    )
    assert status.history[0].from_ is RunPhase.PENDING


def test_step_tolerations():
    spec = PipelineSpec.from_obj(
        {
            "steps": [
                {
                    "name": "a",
                    "image": "a:1",
                    "tolerations": [
                        {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"},
                        {"operator": "Exists"},
                    ],
                }
            ]
        }
    )
    assert spec.to_dict()["steps"][0]["tolerations"] == [
        {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"},
        {"operator": "Exists"},
    ]
    with pytest.raises(ValueError, match="value must be empty with operator Exists"):
        PipelineSpec.from_obj(
            {"steps": [{"name": "a", "image": "a:1", "tolerations": [{"operator": "Exists", "value": "x"}]}]}
        )
    with pytest.raises(ValueError):
        PipelineSpec.from_obj(
            {"steps": [{"name": "a", "image": "a:1", "tolerations": [{"effect": "Sometimes"}]}]}
        )
