"""`python -m bench`: the scale benchmark of issue 5 (bench/README.md).

For each N: the baseline (baseline.py) with the operator scaled to 0, then one PipelineRun with a
fresh operator process (operator_run.py); then the SIGKILL scenario (kill.py); then the table.
Everything runs in one namespace, `mmif-bench`, deleted at the end (with the FlowSchemas that
count the operator's requests); the operator is left deployed with 1 replica.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from mmif_operator.settings import DEFAULT_IMAGE

from . import apf
from . import operator_process as op
from . import workspace as ws
from .baseline import Baseline
from .kill import run_kill
from .kube import Kube
from .measure import integrity, percentile, transition_delays
from .operator_run import run_operator
from .profile import profile_between, profile_table, read_counts
from .report import KillFigures, Row, kill_summary, table, targets, with_ratios
from .watch import JobRecorder, record_jobs

log = logging.getLogger("bench")
REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "mmif-bench"
SELECTOR = "app.kubernetes.io/managed-by=mmif-operator"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--items", default="100,1000,10000", help="comma-separated N (default 100,1000,10000)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument(
        "--step-mode",
        default="Service",
        choices=ws.STEP_MODES,
        help="Service: Service mode with url (default); Warm: Job mode with warm (a pool per run)",
    )
    p.add_argument(
        "--parallelism", type=int, default=1000, help="items in flight (default 1000, the most a run allows)"
    )
    p.add_argument(
        "--delay-ms", type=int, default=0, help="kwok: a step pod succeeds this long after it runs"
    )
    p.add_argument("--kill-in-flight", type=int, default=1000, help="items in flight at SIGKILL (0: skip)")
    p.add_argument("--kill-runs", type=int, default=2, help="runs sharing those items")
    p.add_argument("--modes", default="baseline,operator")
    p.add_argument(
        "--baseline-items", default=None, help="the N that also get a baseline (default: all of --items)"
    )
    p.add_argument("--kwok-nodes", type=int, default=4)
    p.add_argument("--no-kwok", action="store_true", help="do not (re)start kwok (it must run already)")
    p.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    p.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG", "/var/lib/mmif-cluster/admin.kubeconfig")
    )
    return p.parse_args(argv)


def timeout_for(items: int, steps: int) -> float:
    return 300 + items * steps * 0.5


async def wait_no_pods(kube: Kube, run: str, timeout: float = 600) -> None:
    """Until the run's step pods are gone (the next scenario starts on a quiet cluster)."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    while True:
        data = await kube.call("GET", path, params={"labelSelector": f"mmif.dev/run={run}", "limit": "1"})
        if not data.get("items"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"pods of {run} still there after {timeout:.0f}s")
        await asyncio.sleep(1)


def delays_of(recorder: JobRecorder, run: str) -> tuple[float | None, float | None, float | None]:
    d = transition_delays(recorder.steps(run))
    return percentile(d, 50), percentile(d, 95), percentile(d, 99)


def steps_wall(recorder: JobRecorder, run: str) -> float | None:
    recs = recorder.steps(run)
    ends = [r.finished for r in recs if r.finished is not None]
    return (max(ends) - min(r.added for r in recs)) if recs and ends else None


async def scenario_baseline(kube: Kube, recorder: JobRecorder, baselines: dict, n: int, args) -> Row:
    run = f"base-{n}"
    await asyncio.to_thread(op.scale, 0)
    b = Baseline(
        kube,
        NAMESPACE,
        run,
        ws.run_spec(n, args.parallelism),
        ws.pipeline_spec(args.steps, args.step_mode),
        n,
        DEFAULT_IMAGE,
    )
    baselines[run] = b
    log.info("baseline: %d items x %d steps, parallelism %d", n, args.steps, min(n, args.parallelism))
    before = await read_counts(kube)
    res = await b.run_all(timeout_for(n, args.steps))
    profile = profile_between(before, await read_counts(kube), n * args.steps)
    check = integrity(recorder.steps(run), {run: n}, args.steps)
    row = Row(
        items=n,
        mode="baseline",
        wall=res.ended - res.started,
        steps_wall=steps_wall(recorder, run),
        item_steps=n * args.steps,
        delays=delays_of(recorder, run),
        reads=None,
        writes=float(res.requests),
        profile=profile,
        outcome=f"{n - res.failed_items}/{n} ok, dup {check.duplicated}, missing {check.missing}",
    )
    log.info("baseline %d: %.1f s", n, row.wall)
    await wait_no_pods(kube, run)
    log.info("deleted the %d Events the scenario left", await ws.clear_events(kube, NAMESPACE))
    return row


async def scenario_operator(kube: Kube, recorder: JobRecorder, n: int, args) -> Row:
    run = f"op-{n}"
    log.info("operator: %d items x %d steps, parallelism %d", n, args.steps, min(n, args.parallelism))
    before = await read_counts(kube)
    res = await run_operator(kube, NAMESPACE, run, n, args.parallelism, timeout_for(n, args.steps))
    profile = profile_between(before, await read_counts(kube), n * args.steps)
    check = integrity(recorder.steps(run), {run: n}, args.steps)
    ok = int(res.status.get("itemsSucceeded") or 0)
    row = Row(
        items=n,
        mode="operator",
        wall=res.ended - res.started,
        steps_wall=steps_wall(recorder, run),
        item_steps=n * args.steps,
        delays=delays_of(recorder, run),
        reads=res.reads,
        writes=res.writes,
        cpu_seconds=res.cpu_seconds,
        peak_rss_mib=res.peak_rss_kib / 1024,
        object_bytes=res.object_bytes,
        profile=profile,
        outcome=f"{res.phase} {ok}/{n}, dup {check.duplicated}, missing {check.missing}",
    )
    log.info("operator %d: %.1f s, %s", n, row.wall, row.outcome)
    await wait_no_pods(kube, run)
    log.info("deleted the %d Events the scenario left", await ws.clear_events(kube, NAMESPACE))
    return row


async def bench(args) -> int:
    sizes = [int(x) for x in args.items.split(",") if x.strip()]
    modes = {m.strip() for m in args.modes.split(",")}
    baseline_sizes = (
        {int(x) for x in args.baseline_items.split(",") if x.strip()} if args.baseline_items else None
    )
    rows: list[Row] = []
    kill: KillFigures | None = None
    started = time.monotonic()
    async with Kube(args.kubeconfig) as kube:
        for leftover in await ws.leftover_bench_namespaces(kube):
            log.info("deleting the leftover namespace %s", leftover)
            await ws.delete_namespace(kube, leftover)
        await ws.create_namespace(kube, NAMESPACE)
        watch_task = None
        try:
            root = await ws.volume_dir(kube, NAMESPACE)
            kill_items = 0
            if args.kill_in_flight:
                per_run = max(1, args.kill_in_flight // args.kill_runs)
                kill_items = per_run + per_run // 5  # items keep waiting while the operator is down
            ws.write_batches(root, sorted(set(sizes + ([kill_items] if kill_items else []))))
            await ws.create_pipeline(kube, NAMESPACE, args.steps, args.step_mode)
            await apf.install(kube)
            baselines: dict[str, Baseline] = {}
            recorder = JobRecorder(
                on_finished=lambda rec: baselines[rec.run].on_finished(rec) if rec.run in baselines else None
            )
            ready = asyncio.Event()
            watch_task = asyncio.ensure_future(record_jobs(kube, NAMESPACE, SELECTOR, recorder, ready))
            await asyncio.wait_for(ready.wait(), 30)
            for n in sizes:
                if "baseline" in modes and (baseline_sizes is None or n in baseline_sizes):
                    rows.append(await scenario_baseline(kube, recorder, baselines, n, args))
                if "operator" in modes:
                    rows.append(await scenario_operator(kube, recorder, n, args))
            if args.kill_in_flight:
                per_run = args.kill_in_flight // args.kill_runs
                log.info(
                    "SIGKILL: %d runs x %d items, %d in flight",
                    args.kill_runs,
                    kill_items,
                    args.kill_in_flight,
                )
                k = await run_kill(
                    kube,
                    recorder,
                    NAMESPACE,
                    args.kill_runs,
                    kill_items,
                    per_run,
                    args.steps,
                    timeout_for(kill_items * args.kill_runs, args.steps),
                )
                kill = KillFigures(
                    in_flight=k.in_flight,
                    runs=args.kill_runs,
                    new_process_after=k.new_process_after,
                    progress_all=k.progress_all,
                    duplicated=k.integrity.duplicated,
                    lost=k.lost,
                    outcome=", ".join(f"{r} {p} {k.succeeded[r]}/{k.items}" for r, p in k.phases.items()),
                )
                log.info(kill_summary(kill))
        finally:
            if watch_task is not None:
                watch_task.cancel()
                await asyncio.gather(watch_task, return_exceptions=True)
            await asyncio.to_thread(op.scale, 1)
            await apf.remove(kube)
            if not args.keep:
                await ws.delete_namespace(kube, NAMESPACE)
    rows = with_ratios(rows)
    print()
    print(f"# mmif-operator scale benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
        f"steps {args.steps} ({args.step_mode}), parallelism {args.parallelism}, kwok completion delay {args.delay_ms} ms; "
        f"total {time.monotonic() - started:.0f} s"
    )
    print()
    print(table(rows))
    print()
    for r in rows:
        if r.profile is not None:
            print(profile_table(f"{r.mode} {r.items}", r.profile))
            print()
    if kill is not None:
        print(kill_summary(kill))
        print()
    print("\n".join(targets(rows, kill)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench %(asctime)s] %(message)s", datefmt="%H:%M:%S")
    os.environ["KUBECONFIG"] = args.kubeconfig
    if not args.no_kwok:
        env = {**os.environ, "KWOK_COMPLETE_DELAY_MS": str(args.delay_ms)}
        subprocess.run(["bash", str(REPO / "cluster" / "kwok.sh"), str(args.kwok_nodes)], env=env, check=True)
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
