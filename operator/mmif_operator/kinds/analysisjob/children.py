"""batch/v1 Job dicts for an AnalysisJob: one per item (`analyze`), and the manifest.

An analysis pod sees only two folders of the workspace, at the paths the run's pods use:
the source run's folder, read-only (app and runner), and the AnalysisJob's own folder under it,
read-write (runner only). Both are subPath mounts of the run's PVC, so the rest of the volume
(other runs, other analyses' raw media) is not in the pod at all.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names, runner_input
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.placement import place_pod
from mmif_operator.kinds.pipeline.app import App
from mmif_operator.kinds.pipelinerun.children import (
    MANIFEST_DEADLINE_SECONDS,
    MANIFEST_RETRIES,
    TMP_VOLUME,
    WORKSPACE_VOLUME,
    _job,
    _runner_container,
    _volumes,
    app_sidecar,
    run_output_path,
    sidecar_env,
    states_config_map,
    uses_sidecar,
)
from mmif_operator.kinds.pipelinerun.model import RunWorkspace
from mmif_operator.runner import env as E
from mmif_operator.runner.paths import analysis_dir

KIND_ANALYSIS = "AnalysisJob"


@dataclass(frozen=True)
class AnalysisContext:
    """What every Job of an AnalysisJob needs: the AnalysisJob and its source run's volume."""

    name: str
    namespace: str
    uid: str
    run: str
    claim_name: str
    mount_path: str
    run_dir: str  # the source run's folder as pods see it
    run_uid: str = ""  # the source run's UID (its folder's `.run-uid`)

    @classmethod
    def from_objects(
        cls,
        meta: Mapping[str, Any],
        run_meta: Mapping[str, Any],
        workspace: RunWorkspace,
        run_status: Mapping[str, Any],
    ) -> AnalysisContext:
        """From the AnalysisJob's metadata and its source run's (metadata, workspace, status)."""
        run_dir = run_status.get("outputPath") or run_output_path(run_meta["name"], workspace)
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            run=run_meta["name"],
            claim_name=workspace.claim_name,
            mount_path=workspace.mount_path,
            run_dir=run_dir,
            run_uid=run_meta.get("uid") or "",
        )

    @property
    def analysis_dir(self) -> str:
        return analysis_dir(self.run_dir, self.name)

    def sub_path(self, path: str) -> str:
        """`path` (under the mount path) as a subPath of the volume."""
        return posixpath.relpath(path, self.mount_path)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND_ANALYSIS,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def labels(self, component: str, item_index: int | None = None) -> dict[str, str]:
        labels = L.common_labels(component, instance=self.name)
        labels[L.ANALYSIS] = L.label_value(self.name)
        labels[L.SOURCE_RUN] = L.label_value(self.run)
        if item_index is not None:
            labels[L.ITEM_INDEX] = str(item_index)
        return labels


def _source_mount(ctx: AnalysisContext) -> dict[str, Any]:
    return {
        "name": WORKSPACE_VOLUME,
        "mountPath": ctx.run_dir,
        "subPath": ctx.sub_path(ctx.run_dir),
        "readOnly": True,
    }


def _runner_mounts(ctx: AnalysisContext) -> list[dict[str, Any]]:
    return [
        _source_mount(ctx),
        {"name": WORKSPACE_VOLUME, "mountPath": ctx.analysis_dir, "subPath": ctx.sub_path(ctx.analysis_dir)},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ]


def analysis_app_url(app: App) -> str:
    return app.url if app.url else f"http://127.0.0.1:{app.port}"


def analyze_job(ctx: AnalysisContext, app: App, item_index: int, operator_image: str) -> dict[str, Any]:
    """The Job processing item `item_index` of the source run with the AnalysisJob's `app`."""
    env = {
        E.RUN_DIR: ctx.run_dir,
        E.RUN_UID: ctx.run_uid or None,
        E.ANALYSIS_DIR: ctx.analysis_dir,
        E.ANALYSIS_UID: ctx.uid or None,
        E.ITEM_INDEX: item_index,
        E.APP_URL: analysis_app_url(app),
        E.APP_PARAMS: json.dumps(dict(app.parameters), sort_keys=True),
        **sidecar_env(app),
    }
    if app.timeout_seconds:
        env[E.HTTP_TIMEOUT] = app.timeout_seconds
    runner = _runner_container(operator_image, "analyze", env, ctx.mount_path)
    runner["volumeMounts"] = _runner_mounts(ctx)
    pod_spec: dict[str, Any] = {"containers": [runner], "volumes": _volumes(ctx)}
    if uses_sidecar(app):
        sidecar = app_sidecar(app, ctx.mount_path)
        sidecar["volumeMounts"] = [_source_mount(ctx)]
        pod_spec["initContainers"] = [sidecar]
    place_pod(pod_spec, app)
    return _job(
        ctx,
        names.analysis_job_name(ctx.name, item_index),
        ctx.labels(L.COMPONENT_ANALYZE, item_index),
        pod_spec,
        retries=app.retries,
        deadline=app.timeout_seconds,
    )


def analysis_manifest_inputs(
    ctx: AnalysisContext, item_states: str, failure_reasons: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ConfigMap `<analysis job>-astates` holding the final item states for the manifest Job
    (core/runner_input.py; runner_input.TooLarge when they do not fit)."""
    return [
        states_config_map(
            names.analysis_states_config_map_name(ctx.name, ctx.uid),
            ctx.namespace,
            ctx.labels(L.COMPONENT_ANALYSIS_MANIFEST),
            ctx.owner_reference(),
            ctx.uid,
            item_states,
            failure_reasons,
        )
    ]


def analysis_manifest_job(ctx: AnalysisContext, operator_image: str, phase: str) -> dict[str, Any]:
    """The Job writing `<analysis dir>/manifest.json` once every item is processed, from the item
    states of `analysis_manifest_inputs`."""
    env = {
        E.RUN_DIR: ctx.run_dir,
        E.RUN_UID: ctx.run_uid or None,
        E.ANALYSIS_DIR: ctx.analysis_dir,
        E.ANALYSIS_UID: ctx.uid or None,
        E.ANALYSIS_NAME: ctx.name,
        E.RUN_PHASE: phase,
    }
    runner = _runner_container(operator_image, "analysis-manifest", env, ctx.mount_path)
    runner["volumeMounts"] = _runner_mounts(ctx)
    pod_spec = {"containers": [runner], "volumes": _volumes(ctx)}
    path = runner_input.mount(
        pod_spec, runner, names.analysis_states_config_map_name(ctx.name, ctx.uid), runner_input.STATES_KEY
    )
    runner["env"].append({"name": E.ITEM_STATES_FILE, "value": path})
    return _job(
        ctx,
        names.analysis_manifest_job_name(ctx.name),
        ctx.labels(L.COMPONENT_ANALYSIS_MANIFEST),
        pod_spec,
        retries=MANIFEST_RETRIES,
        deadline=MANIFEST_DEADLINE_SECONDS,
    )
