"""`logs RUN ITEM [--step S]`: the runner's and the app's logs of an item-step. While the step's
pod exists they come from the API (pods found by the run's labels, core/labels.py; in Job mode
the app is the pod's sidecar container `app`); once it is gone, the runner's log comes from the
volume (`items/<index>/<k>-<step>.log`, written by `mmif-runner step`, runner/steplog.py) through
the reader pod. The app container's log is not kept after its pod is gone."""

from __future__ import annotations

import argparse
from typing import Any

from mmif_operator.cli import reader
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube
from mmif_operator.core import labels as L
from mmif_operator.kinds.pipelinerun.children import APP_CONTAINER, RUNNER_CONTAINER

MAX_LOG_BYTES = 1024 * 1024  # per container, from the API


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


async def _live(kube: Kube, run: str, index: int, k: int) -> list[tuple[str, str, str]]:
    """(pod, container, log) of the step's pods that exist, oldest first."""
    pods = sorted(
        await kube.list_pods(step_selector(run, index, k)), key=lambda p: p.metadata.creation_timestamp
    )
    out = []
    for pod in pods:
        names = [c.name for c in pod.spec.containers] + [c.name for c in pod.spec.init_containers or []]
        for container in (RUNNER_CONTAINER, APP_CONTAINER):
            if container in names:
                try:
                    text = await kube.pod_log(pod.metadata.name, container, limit_bytes=MAX_LOG_BYTES)
                except CliError as e:  # e.g. a container that has not started yet
                    text = f"(no log: {e})\n"
                out.append((pod.metadata.name, container, text))
    return out


async def cmd_logs(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    run = await kube.get_run(args.run)
    steps = reader.run_steps(run)
    if not steps:
        raise CliError(f"pipelinerun {args.run} has not started its steps yet")
    if args.step is not None and args.step not in steps:
        raise CliError(
            f"pipelinerun {args.run} has no step {args.step!r} (steps: {', '.join(steps)})", Exit.USAGE
        )
    chosen = [args.step] if args.step else steps
    index = item_index(run, args.item)
    _, _, folder = reader.run_location(run)
    shown = 0
    for step in chosen:
        k = steps.index(step)
        live = await _live(kube, args.run, index, k) if index is not None else []
        if live:
            for pod, container, text in live:
                who = "the runner" if container == RUNNER_CONTAINER else "the app"
                ui.out(f"== item {args.item} step {step}: {who}, pod {pod} container {container} ==")
                ui.stream.write(text if text.endswith("\n") or not text else text + "\n")
                shown += 1
            continue
        try:
            got = await reader.read(
                kube,
                run,
                ["log", "--run-dir", folder, "--steps", ",".join(steps), "--item", args.item, "--step", step],
                args.reader_image,
            )
        except CliError as e:
            if args.step:
                raise
            ui.out(f"== item {args.item} step {step}: no log ({e}) ==")
            continue
        ui.out(
            f"== item {got['index']} ({got['name']}) step {step}: the runner, from the volume ({got['path']});"
            " the step's pod is gone, and with it the app's log =="
        )
        ui.stream.write(got["log"] if got["log"].endswith("\n") or not got["log"] else got["log"] + "\n")
        shown += 1
    return Exit.OK if shown else Exit.ERROR


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("logs", parents=[common], help="the runner's and the app's logs of an item-step")
    p.add_argument("run")
    p.add_argument("item", help="the item's index or name")
    p.add_argument("--step", help="one step (default: every step of the item)")
    p.add_argument(
        "--reader-image",
        help=f"the image of the reader pod (default ${reader.IMAGE_ENV} or {reader.DEFAULT_IMAGE})",
    )
    p.set_defaults(func=cmd_logs)
