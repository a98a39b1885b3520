"""batch/v1 Job dicts for a PipelineRun: prepare, one (item, step), manifest, publish.

Plain dicts, ready for `BatchV1Api.create_namespaced_job(namespace, body)`. Nothing here talks
to Kubernetes. See docs/design.md ("Execution model") for the pod layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mmif_operator.core import labels as L
from mmif_operator.core import names, runner_input, security
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.placement import place_pod
from mmif_operator.kinds.pipeline.app import App, StepMode
from mmif_operator.kinds.pipeline.children import app_env, app_resources
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step
from mmif_operator.kinds.pipelinerun.alternatives import Candidate, served_by, served_step
from mmif_operator.kinds.pipelinerun.model import KIND as KIND_RUN
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec, RunWorkspace
from mmif_operator.kinds.pipelinerun.pools import is_warm, pool_url
from mmif_operator.kinds.pipelinerun.shared_pods import span_deadline
from mmif_operator.kinds.project.planning import RecordTarget
from mmif_operator.records.publisher import RecordsContext
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import FAIL_JOB
from mmif_operator.runner.paths import run_dir

RUNNER_CONTAINER = "runner"
APP_CONTAINER = "app"
WORKSPACE_VOLUME = "workspace"
TMP_VOLUME = "tmp"
RECORDS_VOLUME = "records"  # the project's record store: read-write in the publish pod only

# Runner exit codes that are final: never retried by the Job (runner/exitcodes.py):
# 1 app error, 3 invalid output, 4 invalid items/input, 5 output conflict, 6 invalid config.
FINAL_EXIT_CODES = tuple(int(c) for c in FAIL_JOB)

# The runner's memory limit goes with the cap on what it reads of an app's answer
# (runner/appclient.py, MAX_ANSWER_BYTES = 32 MiB): mmif-python's objects take about 44 bytes per
# byte of an annotation-dense MMIF, and a step with such an answer just under the cap peaked at
# 1,424 MiB, with an input of 1 MiB and of 30 MiB alike (the input is freed before the answer is
# parsed): `python -m bench.runner_memory --input-mib N`. 2 GiB leaves 30% of room.
RUNNER_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
PREPARE_RETRIES = 2
MANIFEST_RETRIES = 2
PUBLISH_RETRIES = 2
PREPARE_DEADLINE_SECONDS = 3600
MANIFEST_DEADLINE_SECONDS = 3600
PUBLISH_DEADLINE_SECONDS = 600
WIP_RETRIES = 2
WIP_DEADLINE_SECONDS = 1800


class JobOwner(Protocol):
    """What `_job` and `_volumes` need of their owner: a RunContext or an AnalysisContext."""

    @property
    def namespace(self) -> str: ...
    @property
    def claim_name(self) -> str: ...
    def owner_reference(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunContext:
    """What every Job of a run needs to know about the PipelineRun (plain values)."""

    name: str
    namespace: str
    uid: str
    pipeline: str
    claim_name: str
    mount_path: str = str(RunWorkspace.model_fields["mount_path"].default)
    output_path: str = ""  # `<mountPath>/<outputDir>/<run>`; computed when empty

    @classmethod
    def from_run(cls, meta: Mapping[str, Any], spec: PipelineRunSpec) -> RunContext:
        """From a PipelineRun's metadata and parsed spec."""
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            pipeline=spec.pipeline_ref.name,
            claim_name=spec.workspace.claim_name,
            mount_path=spec.workspace.mount_path,
            output_path=run_output_path(meta["name"], spec.workspace),
        )

    @property
    def run_dir(self) -> str:
        return self.output_path or run_dir(self.name, self.mount_path)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND_RUN,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def run_output_path(run_name: str, workspace: RunWorkspace) -> str:
    """The run's folder as seen in pods, e.g. `/data/mmif-runs/run-1` (runner/paths.py)."""
    return run_dir(run_name, workspace.mount_path, workspace.output_dir)


def uses_sidecar(app: App) -> bool:
    """Job mode: the app runs in the step pod as a native sidecar (not a warm step's: its app is
    the run's pool, kinds/pipelinerun/pools.py)."""
    return app.mode is not StepMode.SERVICE and not app.url and not (isinstance(app, Step) and is_warm(app))


def merged_parameters(step: Step, params: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The step's `parameters`, overridden by the run's `params[<step name>]`."""
    merged = dict(step.parameters)
    merged.update(params.get(step.name) or {})
    return merged


def _env(pairs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"name": k, "value": str(v)} for k, v in pairs.items() if v is not None]


def _runner_base_env(ctx: RunContext) -> dict[str, Any]:
    return {
        E.RUN_DIR: ctx.run_dir,
        E.WORKSPACE: ctx.mount_path,
        E.RUN_UID: ctx.uid or None,
    }


def _step_names(pipeline_spec: PipelineSpec) -> str:
    return ",".join(s.name for s in pipeline_spec.steps)


def _runner_container(image: str, command: str, env: Mapping[str, Any], mount_path: str) -> dict[str, Any]:
    return {
        "name": RUNNER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["mmif-runner", command],
        "env": _env(env),
        "resources": json.loads(json.dumps(RUNNER_RESOURCES)),
        "securityContext": security.runner_security_context(),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": WORKSPACE_VOLUME, "mountPath": mount_path},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
        ],
    }


def _volumes(ctx: JobOwner) -> list[dict[str, Any]]:
    return [
        {"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": ctx.claim_name}},
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}},
    ]


def pod_failure_policy() -> dict[str, Any]:
    """App errors, invalid output/items and output conflicts fail the Job at once; evictions
    and other disruptions do not count against `backoffLimit`."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": RUNNER_CONTAINER,
                    "operator": "In",
                    "values": list(FINAL_EXIT_CODES),
                },
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def _job(
    ctx: JobOwner,
    name: str,
    labels: dict[str, str],
    pod_spec: dict[str, Any],
    *,
    retries: int,
    deadline: int | None,
) -> dict[str, Any]:
    security.secure_pod_spec(pod_spec)
    pod_spec["restartPolicy"] = "Never"
    spec: dict[str, Any] = {
        "backoffLimit": int(retries),
        "podFailurePolicy": pod_failure_policy(),
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if deadline:
        spec["activeDeadlineSeconds"] = int(deadline)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": dict(labels),
            "ownerReferences": [ctx.owner_reference()],
        },
        "spec": spec,
    }


def app_url(step: Step, *, pipeline: str, namespace: str, run: str = "") -> str:
    """Where the runner POSTs: the sidecar, the run's pool (a warm step), the step's Service, or
    the step's `url`."""
    if step.url:
        return step.url
    if is_warm(step):
        return pool_url(run, namespace, step)
    if uses_sidecar(step):
        return f"http://127.0.0.1:{step.port}"
    svc = names.app_service_name(pipeline, step.name)
    return f"http://{svc}.{namespace}.svc:{step.port}"


def app_sidecar(step: App, mount_path: str) -> dict[str, Any]:
    """The CLAMS app as a native sidecar: started first, then the runner, which waits for its port
    for the step's `startupTimeoutSeconds` (`sidecar_env`). No startupProbe: with one, the runner
    would not start before the app listens, and an app that never does (a wrong `port`) would
    keep the pod in Init for ever, with nothing to say why."""
    port = step.port
    container: dict[str, Any] = {
        "name": APP_CONTAINER,
        "image": step.image,
        "restartPolicy": "Always",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        # One request at a time reaches this app: one worker, one copy of the model in memory.
        "env": app_env(step),
        "securityContext": security.app_security_context(step.run_as_user, step.run_as_non_root),
        "volumeMounts": [{"name": WORKSPACE_VOLUME, "mountPath": mount_path, "readOnly": True}],
    }
    app_resources(step, container)
    return container


def sidecar_env(step: App) -> dict[str, Any]:
    """The runner's environment for an app in its own pod: how long the app may take to listen."""
    return {E.APP_STARTUP_TIMEOUT: step.startup_timeout_seconds} if uses_sidecar(step) else {}


def app_wait_env(steps: Sequence[Step]) -> dict[str, Any]:
    """How long the runner waits for the apps of `steps` to answer: an autoscaled app that may be
    at zero replicas, or a run's pool (a warm step), starts while the item waits, within its
    `startupTimeoutSeconds` (the runner's default wait is shorter)."""
    waits = [
        s.startup_timeout_seconds
        for s in steps
        if (s.autoscaling is not None and s.autoscaling.min_replicas == 0) or is_warm(s)
    ]
    if not waits or max(waits) <= E.DEFAULT_APP_WAIT:
        return {}
    return {E.APP_WAIT: max(waits)}


def _app_call(step: Step, params: Mapping[str, Mapping[str, str]], ctx: RunContext) -> dict[str, Any]:
    """How the runner calls one step's app: `url`, `params`, `timeout` (seconds, or absent)."""
    call: dict[str, Any] = {
        "url": app_url(step, pipeline=ctx.pipeline, namespace=ctx.namespace, run=ctx.name),
        "params": merged_parameters(step, params),
    }
    if step.timeout_seconds:
        call["timeout"] = step.timeout_seconds
    return call


def step_job(
    ctx: RunContext,
    params: Mapping[str, Mapping[str, str]],
    pipeline_spec: PipelineSpec,
    item_index: int,
    step_index: int,
    operator_image: str,
    served: Candidate | None = None,
    last: int | None = None,
) -> dict[str, Any]:
    """The Job running step `step_index` of item `item_index` (and the steps after it up to
    `last`, when they share the item's pod: kinds/pipelinerun/shared_pods.py); `params`: the
    run's `spec.params` (per-step overrides of the steps' `parameters`); `served`: for a step
    with alternatives, the app chosen to serve the item (kinds/pipelinerun/alternatives.py)."""
    step = pipeline_spec.steps[step_index]
    last = step_index if last is None else last
    chosen: dict[str, Any] = {}
    alternative: str | None = None
    if served is not None and step.alternatives:
        chosen = {E.SERVED_BY: json.dumps(served_by(served), sort_keys=True)}
        alternative = served.name
        step = served_step(step, served)
    name = names.step_job_name(ctx.name, item_index, step_index)
    labels = L.run_job_labels(
        ctx.name,
        ctx.pipeline,
        L.COMPONENT_STEP,
        step=step.name,
        step_index=step_index,
        item_index=item_index,
    )
    if alternative is not None:
        labels[L.ALTERNATIVE] = alternative
    env = _runner_base_env(ctx)
    env.update(
        {**chosen, E.ITEM_INDEX: item_index, E.STEP_INDEX: step_index, E.STEPS: _step_names(pipeline_spec)}
    )
    deadline = step.timeout_seconds
    if last > step_index:
        span = pipeline_spec.steps[step_index : last + 1]
        labels[L.LAST_STEP_INDEX] = str(last)
        env[E.STEP_CALLS] = json.dumps([_app_call(s, params, ctx) for s in span], sort_keys=True)
        deadline = span_deadline(span)
        env.update(app_wait_env(span))
    else:
        env.update(
            {
                E.APP_URL: app_url(step, pipeline=ctx.pipeline, namespace=ctx.namespace, run=ctx.name),
                E.APP_PARAMS: json.dumps(merged_parameters(step, params), sort_keys=True),
                **sidecar_env(step),
                **app_wait_env([step]),
            }
        )
        if step.timeout_seconds:
            # Answer within the step's deadline or count as timed out (the Job's deadline kills anyway).
            env[E.HTTP_TIMEOUT] = step.timeout_seconds
    pod_spec: dict[str, Any] = {
        "containers": [_runner_container(operator_image, "step", env, ctx.mount_path)],
        "volumes": _volumes(ctx),
    }
    if uses_sidecar(step):
        pod_spec["initContainers"] = [app_sidecar(step, ctx.mount_path)]
    place_pod(pod_spec, step)
    return _job(ctx, name, labels, pod_spec, retries=step.retries, deadline=deadline)


def prepare_inputs(ctx: RunContext, run_spec: PipelineRunSpec) -> list[dict[str, Any]]:
    """The ConfigMap `<run>-items` holding the inline items for the prepare Job (none for
    `itemsFrom`); runner_input.TooLarge when they do not fit (core/runner_input.py)."""
    if run_spec.items is None:
        return []
    payload = runner_input.encode(ctx.uid, {"items": [item.to_dict() for item in run_spec.items]})
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_PREPARE)
    return [
        runner_input.config_map(
            names.items_config_map_name(ctx.name, ctx.uid),
            ctx.namespace,
            labels,
            ctx.owner_reference(),
            runner_input.ITEMS_KEY,
            payload,
            f"the {len(run_spec.items)} inline items",
        )
    ]


def reads_records(run_spec: PipelineRunSpec) -> bool:
    """The prepare Job may have to read records: an inline item names one, or the items come from
    a file (which only prepare reads)."""
    if run_spec.items_from is not None:
        return True
    return any(item.record is not None for item in run_spec.items or ())


def prepare_job(
    ctx: RunContext, run_spec: PipelineRunSpec, operator_image: str, records: RecordTarget | None = None
) -> dict[str, Any]:
    """The Job that normalises the batch into `<runDir>/items.jsonl` and claims `<runDir>`. Inline
    items come from the ConfigMap of `prepare_inputs`, mounted read-only (never the environment).

    `records`: the run's project has a record store; when items may name records
    (`reads_records`), the prepare pod mounts it read-only and copies each named record's MMIF
    as that item's source MMIF (runner/prepare.py)."""
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_PREPARE)
    env = _runner_base_env(ctx)
    if run_spec.items_from is not None:
        env[E.ITEMS_FROM] = run_spec.items_from.path
    runner = _runner_container(operator_image, "prepare", env, ctx.mount_path)
    pod_spec = {"containers": [runner], "volumes": _volumes(ctx)}
    if run_spec.items is not None:
        path = runner_input.mount(
            pod_spec, runner, names.items_config_map_name(ctx.name, ctx.uid), runner_input.ITEMS_KEY
        )
        runner["env"].append({"name": E.ITEMS_FILE, "value": path})
    if records is not None and reads_records(run_spec):
        runner["env"].append({"name": E.RECORDS_DIR, "value": records.mount_path})
        runner["volumeMounts"].append(
            {"name": RECORDS_VOLUME, "mountPath": records.mount_path, "readOnly": True}
        )
        pod_spec["volumes"].append(
            {
                "name": RECORDS_VOLUME,
                "persistentVolumeClaim": {"claimName": records.claim_name, "readOnly": True},
            }
        )
    return _job(
        ctx,
        names.prepare_job_name(ctx.name),
        labels,
        pod_spec,
        retries=PREPARE_RETRIES,
        deadline=PREPARE_DEADLINE_SECONDS,
    )


def states_config_map(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner_reference: Mapping[str, Any],
    owner_uid: str,
    item_states: str,
    failure_reasons: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap holding final item states for a manifest Job (a run's or an AnalysisJob's),
    and why items failed where no pod wrote it (`failurereasons.payload`)."""
    data: dict[str, Any] = {"itemStates": item_states}
    if failure_reasons:
        data["failureReasons"] = dict(failure_reasons)
    payload = runner_input.encode(owner_uid, data)
    return runner_input.config_map(
        name, namespace, labels, owner_reference, runner_input.STATES_KEY, payload, "the item states"
    )


def manifest_inputs(
    ctx: RunContext, item_states: str, failure_reasons: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ConfigMap `<run>-states` holding `item_states` (and `failure_reasons`) for the
    manifest Job."""
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_MANIFEST)
    return [
        states_config_map(
            names.states_config_map_name(ctx.name, ctx.uid),
            ctx.namespace,
            labels,
            ctx.owner_reference(),
            ctx.uid,
            item_states,
            failure_reasons,
        )
    ]


def manifest_job(
    ctx: RunContext, pipeline_spec: PipelineSpec, operator_image: str, run_phase: str
) -> dict[str, Any]:
    """The Job writing `<runDir>/manifest.json` from the final item states.

    It reads the item states from the ConfigMap of `manifest_inputs`: `status.itemStates` once
    every item is terminal, where an item that failed a step and went on (onItemFailure
    Continue) is FAILED at its first failing step. `run_phase` is the phase the run will end in
    (Succeeded, Failed, Cancelled).
    """
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_MANIFEST)
    env = {
        E.RUN_DIR: ctx.run_dir,
        E.RUN_UID: ctx.uid or None,
        E.RUN_NAME: ctx.name,
        E.STEPS: _step_names(pipeline_spec),
        E.RUN_PHASE: run_phase,
    }
    runner = _runner_container(operator_image, "manifest", env, ctx.mount_path)
    pod_spec = {"containers": [runner], "volumes": _volumes(ctx)}
    path = runner_input.mount(
        pod_spec, runner, names.states_config_map_name(ctx.name, ctx.uid), runner_input.STATES_KEY
    )
    runner["env"].append({"name": E.ITEM_STATES_FILE, "value": path})
    return _job(
        ctx,
        names.manifest_job_name(ctx.name),
        labels,
        pod_spec,
        retries=MANIFEST_RETRIES,
        deadline=MANIFEST_DEADLINE_SECONDS,
    )


def publish_job(
    ctx: RunContext,
    operator_image: str,
    review: Mapping[str, Any],
    manifest_path: str,
    records: RecordTarget | None = None,
    run_spec: PipelineRunSpec | None = None,
    pipeline_spec: PipelineSpec | None = None,
    image_digests: Mapping[str, str] | None = None,
    supersedes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The Job publishing a reviewed run's outputs (`mmif-runner publish`): it writes
    `<runDir>/review.json` (the decision, from `review` = status.review) and marks the manifest
    published. Named `<run>-publish`, owned by the run, bounded like the manifest Job (its pod's
    start by the run's `startTimeoutSeconds`, its run by `activeDeadlineSeconds`).

    `records`: the run's project has a record store: the publish pod, alone of all pods, mounts
    it read-write, and makes a record of each item that succeeded (records/publisher.py), with
    the run's requester, legal tags and ACL (`run_spec`), its steps' images (`pipeline_spec`) and
    the digests they ran as (`image_digests`, from status.appImages: images.py) in each lineage;
    `supersedes`: parent record -> the conflicts a Pass with `onConflict: Supersede` overrides
    (kinds/pipelinerun/conflicts.py), named in the lineage of each record made from that parent."""
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_PUBLISH)
    env = {
        E.RUN_DIR: ctx.run_dir,
        E.RUN_UID: ctx.uid or None,
        E.RUN_NAME: ctx.name,
        E.RUN_NAMESPACE: ctx.namespace,
        E.MANIFEST_PATH: manifest_path,
        E.REVIEW_DECISION: review.get("decision"),
        E.REVIEW_COMMENT: review.get("comment"),
        E.REVIEWER: review.get("reviewer"),
        E.REVIEW_DECIDED_AT: review.get("decidedAt"),
    }
    runner = _runner_container(operator_image, "publish", env, ctx.mount_path)
    pod_spec = {"containers": [runner], "volumes": _volumes(ctx)}
    if records is not None:
        runner["env"].append(
            {
                "name": E.RECORDS,
                "value": records_context(ctx, records, run_spec, pipeline_spec, image_digests, supersedes),
            }
        )
        runner["volumeMounts"].append({"name": RECORDS_VOLUME, "mountPath": records.mount_path})
        pod_spec["volumes"].append(
            {"name": RECORDS_VOLUME, "persistentVolumeClaim": {"claimName": records.claim_name}}
        )
    return _job(
        ctx,
        names.publish_job_name(ctx.name),
        labels,
        pod_spec,
        retries=PUBLISH_RETRIES,
        deadline=PUBLISH_DEADLINE_SECONDS,
    )


def wip_job(ctx: RunContext, operator_image: str, action: str, archive_dir: str) -> dict[str, Any]:
    """The Job deleting or archiving a finished run's folder (`mmif-runner dispose`,
    kinds/pipelinerun/wip.py). Named `<run>-wip-delete` / `<run>-wip-archive`, owned by the run,
    the same pod security as every runner Job; it mounts the workspace only (never a record store)."""
    labels = L.run_job_labels(ctx.name, ctx.pipeline, L.COMPONENT_WIP)
    env = {
        **_runner_base_env(ctx),
        E.WIP_ACTION: action,
        E.ARCHIVE_DIR: archive_dir,
    }
    runner = _runner_container(operator_image, "dispose", env, ctx.mount_path)
    pod_spec = {"containers": [runner], "volumes": _volumes(ctx)}
    return _job(
        ctx,
        names.wip_job_name(ctx.name, action),
        labels,
        pod_spec,
        retries=WIP_RETRIES,
        deadline=WIP_DEADLINE_SECONDS,
    )


def records_context(
    ctx: RunContext,
    records: RecordTarget,
    run_spec: PipelineRunSpec | None,
    pipeline_spec: PipelineSpec | None,
    image_digests: Mapping[str, str] | None = None,
    supersedes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> str:
    """`MMIF_RECORDS` of the publish pod: the record store and the run-wide part of each lineage."""
    requester = None
    if run_spec is not None and run_spec.requester is not None:
        requester = {"username": run_spec.requester.username, "groups": list(run_spec.requester.groups or [])}
    acl: dict[str, list[str]] = {}
    if run_spec is not None and run_spec.acl is not None:
        acl = {
            k: list(v) for k, v in (("owners", run_spec.acl.owners), ("viewers", run_spec.acl.viewers)) if v
        }
    return RecordsContext(
        dir=records.mount_path,
        workspace=ctx.mount_path,
        pipeline=ctx.pipeline,
        project=records.project,
        project_id=records.project_id,
        requester=requester,
        legal_tags=tuple(run_spec.legal_tags or ()) if run_spec is not None else (),
        acl=acl,
        step_images={s.name: s.image for s in (pipeline_spec.steps if pipeline_spec else ()) if s.image},
        image_digests=dict(image_digests or {}),
        supersedes={k: [dict(x) for x in v] for k, v in (supersedes or {}).items()},
    ).to_json()
