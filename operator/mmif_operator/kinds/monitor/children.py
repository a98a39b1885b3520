"""The objects a Monitor makes, as dicts: its test PipelineRuns, the probe Pipeline of a
single-app target, and its HealthReports. Pure; every one is controlled by the Monitor (its
ownerReference), labelled `mmif.dev/monitor=<monitor>`, and named deterministically.

* test run `<monitor>-<id in lower case>` (e.g. `web-20261201t183305z`), labelled with the id
  (`mmif.dev/monitor-test`); deleted once its report exists;
* HealthReport of the same name (another kind, so the names never clash);
* probe Pipeline `<monitor>-probe`, one step `app` (a single-app target).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.model import API_VERSION
from mmif_operator.kinds.monitor.model import KIND, PROBE_STEP, REPORT_KIND, HealthReportSpec, MonitorSpec
from mmif_operator.kinds.pipeline.model import KIND as PIPELINE_KIND
from mmif_operator.kinds.pipelinerun.model import KIND as RUN_KIND

NAME_MAX = 253
# A test run left behind (its Monitor's loop could not report it) is deleted by the run's own
# TTL after this long; long enough that a loop down for a while still finds and reports it.
TEST_RUN_TTL_SECONDS = 86400


def child_name(monitor: str, report_id: str) -> str:
    """The test run's and the report's name: `<monitor>-<id in lower case>`."""
    return names.fit_name(monitor, f"-{report_id.lower()}", NAME_MAX)


def probe_pipeline_name(monitor: str) -> str:
    return names.fit_name(monitor, "-probe", NAME_MAX)


def owner_reference(monitor: Mapping[str, Any]) -> dict[str, Any]:
    meta = monitor.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(monitor: Mapping[str, Any], name: str, component: str, report_id: str | None) -> dict[str, Any]:
    mon = monitor.get("metadata") or {}
    labels = L.common_labels(component, name=L.NAME_RUNNER, instance=mon.get("name"))
    labels[L.MONITOR] = L.label_value(mon.get("name") or "")
    if report_id is not None:
        labels[L.MONITOR_TEST] = report_id
    return {
        "name": name,
        "namespace": mon.get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(monitor)],
    }


def target_pipeline_name(monitor: Mapping[str, Any], spec: MonitorSpec) -> str:
    """The Pipeline the tests run through: the target's, or the probe Pipeline."""
    if spec.target.pipeline is not None:
        return spec.target.pipeline
    return probe_pipeline_name((monitor.get("metadata") or {}).get("name") or "")


def test_run(monitor: Mapping[str, Any], spec: MonitorSpec, report_id: str) -> dict[str, Any]:
    """The PipelineRun of the test scheduled at `report_id`: the sample through the target."""
    name = child_name((monitor.get("metadata") or {}).get("name") or "", report_id)
    sample = spec.sample
    return {
        "apiVersion": API_VERSION,
        "kind": RUN_KIND,
        "metadata": _meta(monitor, name, L.COMPONENT_MONITOR_TEST, report_id),
        "spec": {
            "pipelineRef": {"name": target_pipeline_name(monitor, spec)},
            "workspace": sample.workspace.to_dict(),
            "items": [i.to_dict() for i in sample.items],
            "parallelism": len(sample.items),
            "timeoutSeconds": spec.timeout_seconds,
            "startTimeoutSeconds": spec.timeout_seconds,
            "ttlSecondsAfterFinished": TEST_RUN_TTL_SECONDS,
        },
    }


test_run.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def probe_pipeline_spec(spec: MonitorSpec) -> dict[str, Any]:
    """The probe Pipeline's spec: one step `app` made of the target app."""
    assert spec.target.app is not None
    step = {"name": PROBE_STEP, **spec.target.app.to_dict()}
    out: dict[str, Any] = {"steps": [step]}
    if spec.target.app.mode == "Service" and spec.target.app.url is None:
        out["workspace"] = {
            "claimName": spec.sample.workspace.claim_name,
            "mountPath": spec.sample.workspace.mount_path,
        }
    return out


def probe_pipeline(monitor: Mapping[str, Any], spec: MonitorSpec) -> dict[str, Any]:
    name = probe_pipeline_name((monitor.get("metadata") or {}).get("name") or "")
    return {
        "apiVersion": API_VERSION,
        "kind": PIPELINE_KIND,
        "metadata": _meta(monitor, name, L.COMPONENT_MONITOR_PROBE, None),
        "spec": probe_pipeline_spec(spec),
    }


def health_report(monitor: Mapping[str, Any], report: HealthReportSpec) -> dict[str, Any]:
    name = child_name((monitor.get("metadata") or {}).get("name") or "", report.id)
    return {
        "apiVersion": API_VERSION,
        "kind": REPORT_KIND,
        "metadata": _meta(monitor, name, L.COMPONENT_HEALTH_REPORT, report.id),
        "spec": report.to_dict(),
    }
