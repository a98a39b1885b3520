"""The logs of an item-step, as `kubectl mmif logs` (cli/logs.py) and the web console's logs panel
(console/logs.py) show them: one code path, each caller handing in how it reaches the cluster
(`Source`, with the person's own identity in both).

For each step of the item:
- while the step's pod exists: the runner's and the app's container logs, from the API (pods
  found by the run's labels, core/labels.py; in Job mode the app is the pod's sidecar `app`);
- once it is gone: the runner's log from the volume (`items/<index>/<k>-<step>.log`, written by
  `mmif-runner step`, runner/steplog.py) through a reader pod; and the app's log **when the step
  failed**: the operator keeps its tail in the run's app-log ConfigMap (core/applogs.py). A
  successful item-step's app log is not kept (by design: it says nothing the result does not),
  nor one past the run's bound of kept logs; a Service-mode step's app is a long-lived
  Deployment, whose log is the Deployment's (`kubectl logs deploy/...`); a warm Job-mode step's
  app is the run's pool, a Deployment that lives while the run's items run (its log is the
  pool's while it lives; of a failed item-step, the tail of the pool pods' log when it failed,
  kept like a sidecar's). Each case says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mmif_operator.core import applogs, names
from mmif_operator.core import labels as L
from mmif_operator.kinds.pipelinerun.children import APP_CONTAINER, RUNNER_CONTAINER
from mmif_operator.results.readerpod import run_location, run_steps

MAX_LOG_BYTES = 1024 * 1024  # per container, from the API

# Where a section's text came from.
POD = "pod"  # a container of the step's pod, which exists
VOLUME = "volume"  # the runner's log on the run's volume
KEPT = "kept"  # the app's log the operator kept when the step failed
NONE = "none"  # nothing to show; the title says why


class LogsError(Exception):
    """The run cannot have logs of that item-step (`usage`: the person named a wrong step)."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


class Unavailable(Exception):
    """A read that failed (refused, gone, the reader pod's error); the message says why."""


@dataclass(frozen=True)
class Pod:
    name: str
    containers: tuple[str, ...]  # containers and init containers (the sidecar `app` is one)
    created: str  # creationTimestamp, ISO 8601: sorts in time


@dataclass(frozen=True)
class Section:
    step: str
    title: str  # the header line (without the `==` a terminal shows around it)
    text: str  # the log ("" when there is none: the title says why)
    source: str  # POD, VOLUME, KEPT or NONE
    container: str | None = None  # RUNNER_CONTAINER or APP_CONTAINER when it is a container's log


class Source(Protocol):
    """How the caller reads the cluster (with the person's own identity)."""

    async def step_pods(self, selector: str) -> list[Pod]: ...

    async def pod_log(self, pod: str, container: str) -> str: ...  # Unavailable

    async def config_map(self, name: str) -> dict[str, Any] | None: ...  # None: none; Unavailable

    async def read_volume(self, args: list[str]) -> dict[str, Any]: ...  # the reader's answer; Unavailable


def step_selector(run: str, item_index: int, step_index: int) -> str:
    """The label selector of the pods of one item-step of a run."""
    labels = {
        L.MANAGED_BY: L.MANAGER,
        L.RUN: L.label_value(run),
        L.COMPONENT: L.COMPONENT_STEP,
        L.ITEM_INDEX: str(item_index),
        L.STEP_INDEX: str(step_index),
    }
    return ",".join(f"{k}={v}" for k, v in labels.items())


def item_index(run: dict[str, Any], ref: str) -> int | None:
    """The index of item `ref` (its index, or its name among the run's inline items)."""
    if ref.isdigit():
        return int(ref)
    for n, item in enumerate((run.get("spec") or {}).get("items") or []):
        if item.get("name") == ref:
            return n
    return None  # itemsFrom: the reader resolves the name on the volume


def service_deployment(run: dict[str, Any], step_index: int) -> str | None:
    """The Deployment serving step `step_index` when it runs in Service mode (None: Job mode, its
    app in the step pod; a step with `url` names its own server, also None here)."""
    snapshot = (run.get("status") or {}).get("pipelineSpec") or {}
    steps = snapshot.get("steps") or []
    step = steps[step_index] if 0 <= step_index < len(steps) else {}
    if step.get("mode") != "Service" or step.get("url"):
        return None
    pipeline = ((run.get("spec") or {}).get("pipelineRef") or {}).get("name") or ""
    return names.app_service_name(pipeline, step["name"])


def pool_deployment(run: dict[str, Any], step_index: int) -> str | None:
    """The run's pool serving step `step_index` when it is a warm Job-mode step (None otherwise)."""
    snapshot = (run.get("status") or {}).get("pipelineSpec") or {}
    steps = snapshot.get("steps") or []
    step = steps[step_index] if 0 <= step_index < len(steps) else {}
    if step.get("mode", "Job") != "Job" or not step.get("warm") or step.get("url"):
        return None
    return names.run_pool_name((run.get("metadata") or {}).get("name") or "", step["name"])


def kept_section(
    run: dict[str, Any], data: dict[str, str] | None, index: int, label: str, step: str, k: int
) -> Section:
    """The app's log of item `index` step `k` once its pod is gone: the kept one, or why none."""
    meta = run.get("metadata") or {}
    deployment = service_deployment(run, k)
    head = f"item {label} step {step}"
    if deployment is not None:
        ns = meta.get("namespace") or "NAMESPACE"
        return Section(
            step,
            f"{head}: the app runs as a service (Deployment {deployment}); its log is the Deployment's: "
            f"kubectl logs deploy/{deployment} -n {ns}",
            "",
            NONE,
        )
    cm = applogs.config_map_name(meta.get("name") or "", meta.get("uid") or "")
    key = applogs.key(index, k)
    pool = pool_deployment(run, k)
    if data and key in data:
        where = "the app" if pool is None else f"the app in the run's pool (Deployment {pool})"
        return Section(
            step,
            f"{head}: {where}, kept by the operator when the step failed (ConfigMap {cm}, key {key}; "
            f"at most its last {applogs.TAIL_BYTES // 1024} KiB)",
            data[key],
            KEPT,
            APP_CONTAINER,
        )
    if pool is not None and data is None:  # its pod is live: where the app's log is
        ns = meta.get("namespace") or "NAMESPACE"
        return Section(
            step,
            f"{head}: the app runs in the run's pool (Deployment {pool}, removed once every item is "
            f"done); its log is the pool's: kubectl logs deploy/{pool} -n {ns}",
            "",
            NONE,
        )
    kept = len([k for k in (data or {}) if applogs.parse_key(k)])
    why = (
        f"the run keeps the app logs of its first {applogs.MAX_KEPT} failed item-steps only"
        if kept >= applogs.MAX_KEPT
        else "the operator keeps the app's log of failed item-steps only"
    )
    gone = "the step's pod is gone" + ("" if pool is None else f" (its app ran in the run's pool {pool})")
    return Section(step, f"{head}: {gone} and the app's log was not kept ({why})", "", NONE)


async def gather(run: dict[str, Any], item: str, step: str | None, source: Source) -> list[Section]:
    """The sections of item `item`'s logs (one step, or each step of the run), in step order."""
    name = (run.get("metadata") or {}).get("name") or ""
    steps = run_steps(run)
    if not steps:
        raise LogsError(f"pipelinerun {name} has not started its steps yet")
    if step is not None and step not in steps:
        raise LogsError(f"pipelinerun {name} has no step {step!r} (steps: {', '.join(steps)})", usage=True)
    index = item_index(run, item)
    _, _, folder = run_location(run)
    kept: dict[str, str] | None = None
    kept_read = False
    out: list[Section] = []
    for s in [step] if step else steps:
        k = steps.index(s)
        live = await _live(source, name, index, k, item, s) if index is not None else []
        if live:
            out.extend(live)
            if service_deployment(run, k) is not None or pool_deployment(run, k) is not None:
                out.append(kept_section(run, None, index or 0, item, s, k))  # says where its log is
            continue
        args = ["log", "--run-dir", folder, "--steps", ",".join(steps), "--item", item, "--step", s]
        label, at = item, index
        try:
            got = await source.read_volume(args)
            label, at = f"{got['index']} ({got['name']})", int(got["index"])
            text = got["log"] or ""
            out.append(
                Section(
                    s,
                    f"item {label} step {s}: the runner, from the volume ({got['path']}); the step's pod is gone",
                    text,
                    VOLUME,
                    RUNNER_CONTAINER,
                )
            )
        except Unavailable as e:
            out.append(Section(s, f"item {item} step {s}: no runner log ({e})", "", NONE))
        if at is None:
            continue
        if not kept_read:
            try:
                kept = ((await source.config_map(_kept_name(run))) or {}).get("data") or {}
            except Unavailable as e:
                out.append(
                    Section(s, f"item {label} step {s}: the kept app logs cannot be read ({e})", "", NONE)
                )
                continue
            kept_read = True
        out.append(kept_section(run, kept, at, label, s, k))
    return out


def _kept_name(run: dict[str, Any]) -> str:
    meta = run.get("metadata") or {}
    return applogs.config_map_name(meta.get("name") or "", meta.get("uid") or "")


async def _live(source: Source, run: str, index: int, k: int, item: str, step: str) -> list[Section]:
    """The sections of the step's pods that exist, oldest first."""
    pods = sorted(await source.step_pods(step_selector(run, index, k)), key=lambda p: p.created)
    out = []
    for pod in pods:
        for container in (RUNNER_CONTAINER, APP_CONTAINER):
            if container in pod.containers:
                try:
                    text = await source.pod_log(pod.name, container)
                except Unavailable as e:  # e.g. a container that has not started yet
                    text = f"(no log: {e})\n"
                who = "the runner" if container == RUNNER_CONTAINER else "the app"
                out.append(
                    Section(
                        step,
                        f"item {item} step {step}: {who}, pod {pod.name} container {container}",
                        text,
                        POD,
                        container,
                    )
                )
    return out


def has_log(sections: list[Section]) -> bool:
    return any(s.source != NONE for s in sections)
