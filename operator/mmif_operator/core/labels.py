"""Standard labels of every object the operator creates, and label-value fitting."""

from __future__ import annotations

import re

from mmif_operator.core.names import HASH_LEN, app_service_name, run_pool_name, short_hash

# Keys.
MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
RUN = "mmif.dev/run"
PIPELINE = "mmif.dev/pipeline"
STEP = "mmif.dev/step"
STEP_INDEX = "mmif.dev/step-index"
# a step Job whose pod runs the steps after its own too (they share the item's pod): the last one
LAST_STEP_INDEX = "mmif.dev/last-step-index"
ITEM_INDEX = "mmif.dev/item-index"
ANALYSIS = "mmif.dev/analysis"
APP = "mmif.dev/app"  # a Service-mode app's pods: the app's (injective) object name
REQUEST = "mmif.dev/request"  # on PipelineRuns: the request the run is a version of (set by whoever makes it)
PROJECT = "mmif.dev/project"  # on a Project's namespace and role bindings: the Project's name
SOURCE_RUN = "mmif.dev/source-run"  # on an AnalysisJob's Jobs (not `mmif.dev/run`: not the run's Jobs)
ALTERNATIVE = "mmif.dev/alternative"  # a step Job of a step with alternatives: the app serving it
MONITOR = "mmif.dev/monitor"  # a Monitor's test runs, probe Pipeline and HealthReports
MONITOR_TEST = "mmif.dev/monitor-test"  # the report id (scheduled time) a test run or report is for

# Values.
MANAGER = "mmif-operator"
PART_OF_VALUE = "mmif-operator"
NAME_RUNNER = "mmif-runner"  # pods whose main container is mmif-runner (prepare, step, manifest)
NAME_APP = "clams-app"  # Service-mode app Deployments

COMPONENT_STEP = "step"
COMPONENT_PREPARE = "prepare"
COMPONENT_MANIFEST = "manifest"
COMPONENT_PUBLISH = "publish"
COMPONENT_APP_SERVICE = "app-service"
COMPONENT_APP_POOL = "app-pool"  # a run's pool of a warm Job-mode step's app (not in RUN_COMPONENTS: no Job)
COMPONENT_ANALYZE = "analyze"
COMPONENT_ANALYSIS_MANIFEST = "analysis-manifest"
COMPONENT_WIP = "wip"  # a finished run's dispose Job (not in RUN_COMPONENTS: the run loop never sees it)
COMPONENT_PROJECT = "project"
NAME_PROJECT = "mmif-project"
COMPONENT_MONITOR_TEST = "monitor-test"  # a Monitor's test PipelineRuns
COMPONENT_MONITOR_PROBE = "monitor-probe"  # the Pipeline a single-app Monitor tests through
COMPONENT_HEALTH_REPORT = "health-report"
ANALYSIS_COMPONENTS = (COMPONENT_ANALYZE, COMPONENT_ANALYSIS_MANIFEST)
RUN_COMPONENTS = (COMPONENT_PREPARE, COMPONENT_STEP, COMPONENT_MANIFEST, COMPONENT_PUBLISH)

MAX_VALUE = 63
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_INVALID = re.compile(r"[^-A-Za-z0-9_.]+")


def is_label_value(value: str) -> bool:
    return len(value) <= MAX_VALUE and bool(_VALUE.match(value))


def label_value(text: str) -> str:
    """`text` as a valid label value: as is when valid, else cleaned, cut and hashed.

    Deterministic, so selectors can be built from the same function (`label_value(run_name)`).
    """
    text = str(text)
    if is_label_value(text):
        return text
    cleaned = _INVALID.sub("-", text)
    head = cleaned[: MAX_VALUE - HASH_LEN - 1]
    head = re.sub(r"^[^A-Za-z0-9]+", "", head)
    head = re.sub(r"[^A-Za-z0-9]+$", "", head)
    digest = short_hash(text)
    return f"{head}-{digest}" if head else digest


def common_labels(component: str, *, name: str = NAME_RUNNER, instance: str | None = None) -> dict[str, str]:
    labels = {
        MANAGED_BY: MANAGER,
        PART_OF: PART_OF_VALUE,
        NAME: name,
        COMPONENT: component,
    }
    if instance is not None:
        labels[INSTANCE] = label_value(instance)
    return labels


def run_selector(run: str) -> dict[str, str]:
    """Labels selecting every Job of a run (use as a label selector)."""
    return {MANAGED_BY: MANAGER, RUN: label_value(run)}


def run_job_labels(
    run: str,
    pipeline: str,
    component: str,
    *,
    step: str | None = None,
    step_index: int | None = None,
    item_index: int | None = None,
) -> dict[str, str]:
    labels = common_labels(component, instance=run)
    labels[RUN] = label_value(run)
    labels[PIPELINE] = label_value(pipeline)
    if step is not None:
        labels[STEP] = label_value(step)
    if step_index is not None:
        labels[STEP_INDEX] = str(step_index)
    if item_index is not None:
        labels[ITEM_INDEX] = str(item_index)
    return labels


def app_service_selector(pipeline: str, step: str) -> dict[str, str]:
    """The (immutable) selector of a Service-mode Deployment, its Service and NetworkPolicy.
    `mmif.dev/app` is the app's object name (names.app_service_name, injective), so no two
    steps' selectors can match the same pods, whatever the pipeline and step names."""
    return {
        COMPONENT: COMPONENT_APP_SERVICE,
        PIPELINE: label_value(pipeline),
        STEP: label_value(step),
        APP: app_service_name(pipeline, step),
    }


def app_service_labels(pipeline: str, step: str, instance: str) -> dict[str, str]:
    labels = common_labels(COMPONENT_APP_SERVICE, name=NAME_APP, instance=instance)
    labels.update(app_service_selector(pipeline, step))
    return labels


def run_pool_selector(run: str, step: str) -> dict[str, str]:
    """The (immutable) selector of a run's app pool (a warm Job-mode step): its Deployment's pods,
    its Service and NetworkPolicy. `mmif.dev/app` is the pool's (injective) object name."""
    return {
        COMPONENT: COMPONENT_APP_POOL,
        RUN: label_value(run),
        STEP: label_value(step),
        APP: run_pool_name(run, step),
    }


def run_pool_labels(run: str, pipeline: str, step: str) -> dict[str, str]:
    labels = common_labels(COMPONENT_APP_POOL, name=NAME_APP, instance=run_pool_name(run, step))
    labels[PIPELINE] = label_value(pipeline)
    labels.update(run_pool_selector(run, step))
    return labels


def run_step_pods(run: str) -> dict[str, str]:
    """The labels of a run's item pods (the only clients of its app pools)."""
    return {MANAGED_BY: MANAGER, COMPONENT: COMPONENT_STEP, RUN: label_value(run)}


#: The label the Job controller puts on a Job's pods: the current name, then the older one.
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
