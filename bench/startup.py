"""`python -m bench.startup`: what an app's start-up costs, on the real node (issue 15).

A CLAMS app loads its model before it listens. The textgen test app waits
`CLAMS_STARTUP_DELAY_SECONDS` first (tests/apps/README.md); this runs N items x S textgen steps
through the operator once per mode, on the real node (real pods, real containers), and prints the
wall time of each, its ratio to Service mode's, and the control plane's requests per item-step:

* `Job`: the app in every item's step pod (the start-up paid per item-step; the yardstick of
  one pod per item-step);
* `Service`: one Deployment per step, started once (its readiness waited for by the operator);
* `Autoscaled`: Service mode with `autoscaling` (`minReplicas: 0`, at most `--replicas`): no app
  pod before the run, each step's app started for it (the run pays each start-up once), and
  the time from the run's end until every app is back to zero replicas (`to zero s`);
* `Warm`: Job mode with `warm: true`: each step's app started once for the run, in `--replicas`
  pods the run owns (its pool), and removed when the run's items are done (`to zero s`: from
  the run's end until its pools and their pods are gone).

`--disrupt` (Warm): once half the items succeeded, one app pod of each pool is deleted and the
operator SIGKILLed; the run must still succeed with every item, no item-step's Job made twice.

Run as root on the cluster's machine, with the operator deployed (`make deploy`), holding the
cluster lock on a shared machine:

    flock /tmp/mmif-cluster.lock .venv/bin/python -m bench.startup --items 100 --steps 2 --startup-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

from . import operator_process as op
from . import workspace as ws
from .kube import Kube
from .measure import integrity
from .operator_run import run_path, wait_terminal
from .profile import Profile, profile_between, profile_table, read_counts
from .watch import JobRecorder, record_jobs

log = logging.getLogger("bench.startup")
NAMESPACE = "mmif-bench-startup"
IMAGE = "mmif.local/clams-textgen:dev"
MODES = ("Job", "Service", "Autoscaled", "Warm")
SCALE_DOWN_DELAY = 10  # Autoscaled: autoscaling.scaleDownDelaySeconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=100)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--startup-seconds", type=float, default=20.0, help="the app's start-up delay")
    p.add_argument("--parallelism", type=int, default=20, help="items in flight")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    p.add_argument(
        "--replicas", type=int, default=1, help="Service: replicas; Autoscaled: the most; Warm: per run"
    )
    p.add_argument(
        "--disrupt",
        action="store_true",
        help="Warm: once half the items succeeded, delete one app pod of each pool and SIGKILL the "
        "operator; count item-steps whose Job was made twice, and items lost",
    )
    p.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    p.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG", "/var/lib/mmif-cluster/admin.kubeconfig")
    )
    return p.parse_args(argv)


def pipeline_body(
    name: str, mode: str, steps: int, startup_seconds: float, replicas: int = 1
) -> dict[str, Any]:
    """S textgen steps of one mode, each app waiting `startup_seconds` before it listens."""
    step: dict[str, Any] = {
        "image": IMAGE,
        "mode": "Job" if mode in ("Job", "Warm") else "Service",
        "env": [
            {"name": "CLAMS_GUNICORN_WORKERS", "value": "1"},
            {"name": "CLAMS_STARTUP_DELAY_SECONDS", "value": f"{startup_seconds:g}"},
        ],
        # the start-up is expected: it must not be taken for an app that cannot start
        "startupTimeoutSeconds": int(startup_seconds) + 300,
    }
    if mode != "Job":
        step["replicas"] = replicas
    if mode == "Warm":
        step["warm"] = True
    if mode == "Autoscaled":
        step["autoscaling"] = {"minReplicas": 0, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "labels": dict(ws.BENCH_LABEL)},
        "spec": {
            "workspace": {"claimName": ws.CLAIM},
            "steps": [{"name": f"s{k + 1}", **step} for k in range(steps)],
            "analyses": [],
        },
    }


def run_body(name: str, pipeline: str, items: int, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "labels": dict(ws.BENCH_LABEL)},
        "spec": {
            "pipelineRef": {"name": pipeline},
            "workspace": {"claimName": ws.CLAIM},
            "itemsFrom": {"path": ws.items_path(items)},
            "parallelism": min(parallelism, items),
        },
    }


@dataclass(frozen=True)
class Result:
    mode: str
    wall: float  # run created -> run seen terminal (a Service-mode Pipeline's Deployments made before)
    ready: float  # Pipeline created -> Ready (Service mode: the apps started)
    phase: str
    succeeded: int
    profile: Profile
    to_zero: float | None = None  # Autoscaled: run seen terminal -> every app at 0 pods; Warm: pools gone
    disrupted: str | None = None  # --disrupt: what was done mid-batch and what it cost


async def wait_apps_at_zero(kube: Kube, pipeline: str, timeout: float) -> None:
    """Every app Deployment of `pipeline` asks for 0 replicas and has no pod left."""
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments?labelSelector=mmif.dev/pipeline={pipeline}"
    deadline = time.monotonic() + timeout
    while True:
        deps = (await kube.get(path) or {}).get("items") or []
        if deps and all(
            (d.get("spec") or {}).get("replicas") == 0 and not (d.get("status") or {}).get("replicas")
            for d in deps
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the apps of {pipeline} not at zero after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def wait_pools_gone(kube: Kube, run: str, timeout: float) -> None:
    """The run's app pools (warm steps) and their pods are gone."""
    sel = f"app.kubernetes.io/component=app-pool,mmif.dev/run={run}"
    paths = [
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments?labelSelector={sel}",
        f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={sel}",
    ]
    deadline = time.monotonic() + timeout
    while True:
        if not any([(await kube.get(p) or {}).get("items") for p in paths]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the app pools of {run} still there after {timeout:.0f} s")
        await asyncio.sleep(0.5)


POOL_PODS = "app.kubernetes.io/component=app-pool,mmif.dev/run={run}"


async def disrupt(kube: Kube, run: str, items: int, timeout: float) -> tuple[int, float]:
    """Once half the run's items succeeded: delete one app pod of each of its pools (their
    Deployments make new ones; the items they were serving fail their call and are retried),
    then SIGKILL the operator. (pool pods deleted, seconds until the new operator process)."""
    deadline = time.monotonic() + timeout
    path = f"/apis/mmif.dev/v1alpha1/namespaces/{NAMESPACE}/pipelineruns/{run}"
    while int(((await kube.get(path) or {}).get("status") or {}).get("itemsSucceeded") or 0) < items // 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{run}: half its items never succeeded")
        await asyncio.sleep(0.2)
    pods = (
        await kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={POOL_PODS.format(run=run)}") or {}
    ).get("items") or []
    one_per_step: dict[str, str] = {}
    for pod in pods:
        meta = pod["metadata"]
        one_per_step.setdefault((meta.get("labels") or {}).get("mmif.dev/step", ""), meta["name"])
    for name in one_per_step.values():
        await kube.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    pid, pod_uid = await asyncio.to_thread(op.operator_pid)
    killed_at = time.monotonic()
    op.sigkill(pid)
    _, new_at = await asyncio.to_thread(op.wait_new_pid, pid, pod_uid)
    log.info("%s: deleted pool pods %s, operator SIGKILLed", run, sorted(one_per_step.values()))
    return len(one_per_step), new_at - killed_at


async def wait_pipeline_ready(kube: Kube, name: str, timeout: float) -> None:
    path = f"/apis/mmif.dev/v1alpha1/namespaces/{NAMESPACE}/pipelines/{name}"
    deadline = time.monotonic() + timeout
    while True:
        p = await kube.get(path) or {}
        for c in (p.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready" and c.get("status") == "True":
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"pipeline {name} not Ready after {timeout:.0f} s: {p.get('status')}")
        await asyncio.sleep(0.5)


async def scenario(kube: Kube, mode: str, args: argparse.Namespace) -> Result:
    name = f"startup-{mode.lower()}"
    before = await read_counts(kube)
    t0 = time.monotonic()
    await kube.call(
        "POST",
        f"/apis/mmif.dev/v1alpha1/namespaces/{NAMESPACE}/pipelines",
        body=pipeline_body(name, mode, args.steps, args.startup_seconds, args.replicas),
    )
    await wait_pipeline_ready(kube, name, args.startup_seconds + 600)
    ready = time.monotonic() - t0
    recorder = JobRecorder()
    ready_watch = asyncio.Event()
    watch = asyncio.ensure_future(
        record_jobs(kube, NAMESPACE, "app.kubernetes.io/managed-by=mmif-operator", recorder, ready_watch)
    )
    await asyncio.wait_for(ready_watch.wait(), 30)
    started = time.monotonic()
    await kube.call("POST", run_path(NAMESPACE), body=run_body(name, name, args.items, args.parallelism))
    timeout = 600 + args.items * args.steps * (args.startup_seconds + 10)
    disrupting = (
        asyncio.ensure_future(disrupt(kube, name, args.items, timeout))
        if args.disrupt and mode == "Warm"
        else None
    )
    try:
        run, ended = await wait_terminal(kube, NAMESPACE, name, timeout)
        disrupted = None
        if disrupting is not None:
            deleted, new_after = await disrupting
            await asyncio.sleep(2)  # the last Job events
            check = integrity(recorder.steps(name), {name: args.items}, args.steps)
            disrupted = (
                f"{deleted} pool pods deleted and the operator SIGKILLed at half the items (new "
                f"process after {new_after:.1f} s): {check.duplicated} item-steps with a Job made "
                f"twice, {check.missing} never made, {check.items_lost} items lost"
            )
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    profile = profile_between(before, await read_counts(kube), args.items * args.steps)
    status = run.get("status") or {}
    log.info("%s: %s in %.1f s", mode, status.get("phase"), ended - started)
    to_zero = None
    if mode == "Autoscaled":
        await wait_apps_at_zero(kube, name, SCALE_DOWN_DELAY + 300)
        to_zero = time.monotonic() - ended
    elif mode == "Warm":
        await wait_pools_gone(kube, name, 300)
        to_zero = time.monotonic() - ended
    return Result(
        mode=mode,
        wall=ended - started,
        ready=ready,
        phase=str(status.get("phase")),
        succeeded=int(status.get("itemsSucceeded") or 0),
        profile=profile,
        to_zero=to_zero,
        disrupted=disrupted,
    )


def table(results: list[Result], items: int) -> str:
    service = next((r for r in results if r.mode == "Service"), None)
    lines = [
        "| mode | app ready s | run wall s | x Service | item-steps/s | writes/item-step | to zero s | outcome |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.wall / service.wall:.2f}" if service and service.wall else "–"
        rate = r.profile.item_steps / r.wall if r.wall else 0.0
        lines.append(
            f"| {r.mode} | {r.ready:.1f} | {r.wall:.1f} | {ratio} | {rate:.2f} | "
            f"{r.profile.per_item_step(r.profile.writes):.2f} | "
            f"{'–' if r.to_zero is None else f'{r.to_zero:.1f}'} | {r.phase} {r.succeeded}/{items} |"
        )
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown modes {unknown}: choose from {', '.join(MODES)}")
    started = time.monotonic()
    results: list[Result] = []
    async with Kube(args.kubeconfig) as kube:
        await ws.delete_namespace(kube, NAMESPACE)
        await ws.create_namespace(kube, NAMESPACE)
        try:
            root = await ws.volume_dir(kube, NAMESPACE)
            ws.write_batches(root, [args.items])
            for mode in modes:
                results.append(await scenario(kube, mode, args))
        finally:
            if not args.keep:
                await ws.delete_namespace(kube, NAMESPACE)
    print()
    print(f"# app start-up benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs; {args.items} items x {args.steps} textgen "
        f"steps, start-up {args.startup_seconds:g} s, parallelism {args.parallelism}, replicas "
        f"{args.replicas} (Autoscaled: the most, scale-down delay {SCALE_DOWN_DELAY} s); "
        f"total {time.monotonic() - started:.0f} s"
    )
    print()
    print(table(results, args.items))
    print()
    for r in results:
        if r.disrupted:
            print(f"{r.mode}: {r.disrupted}")
            print()
    for r in results:
        print(profile_table(f"{r.mode} mode", r.profile))
        print()
    print(json.dumps({r.mode: round(r.wall, 1) for r in results}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench %(asctime)s] %(message)s", datefmt="%H:%M:%S")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
