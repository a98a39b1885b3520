"""`kubectl mmif wip delete|archive|keep RUN`: what becomes of a finished run's work in progress
(its folder on the workspace), as `spec.workInProgress` (kinds/pipelinerun/wip.py).

The plugin patches the field as you (your own RBAC decides), then waits (bounded) for the
operator's answer on the run, the `WorkInProgress` condition of that generation, and prints it:
done (exit 0), refused with the descendants named (exit 1), not finished yet (exit 0: it is done
once the run ends), or still going after --timeout (exit 3)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mmif_operator.cli.errors import Exit
from mmif_operator.cli.kube import Kube
from mmif_operator.core.status import find_condition
from mmif_operator.kinds.pipelinerun import wip as W
from mmif_operator.kinds.pipelinerun.model import WorkInProgress

DEFAULT_WAIT_SECONDS = 300.0
ACTIONS = {"delete": WorkInProgress.DELETE, "archive": WorkInProgress.ARCHIVE, "keep": WorkInProgress.KEEP}
DONE = (W.R_DELETED, W.R_ARCHIVED)
REFUSED = (W.R_HAS_DESCENDANTS, W.R_PUBLISHED, W.R_FAILED, W.R_JOB_CONFLICT)


def answer(run: dict[str, Any], generation: int) -> dict[str, Any] | None:
    """The operator's answer to the request of `generation` (None: not yet)."""
    cond = find_condition((run.get("status") or {}).get("conditions"), W.CONDITION)
    if cond is None or (cond.get("observedGeneration") or 0) < generation:
        # An outcome reached before (e.g. Deleted, then asked again) stays the answer.
        return cond if cond is not None and cond.get("reason") == W.R_DELETED else None
    return cond if cond.get("reason") in (*DONE, *REFUSED, W.R_NOT_FINISHED) else None


async def _answer(kube: Kube, name: str, generation: int) -> dict[str, Any]:
    async for run in kube.watch_run(name):
        cond = answer(run, generation)
        if cond is not None:
            return cond
    raise AssertionError("unreachable: the watch ends only with an error")


async def cmd_wip(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    want = ACTIONS[args.action]
    run = await kube.patch_run(args.run, {"spec": {"workInProgress": want.value}})
    generation = int((run.get("metadata") or {}).get("generation") or 0)
    if want is WorkInProgress.KEEP:
        ui.out(f"pipelinerun {args.run}: work in progress kept")
        return Exit.OK
    if args.no_wait:
        ui.out(f"pipelinerun {args.run}: workInProgress {want.value} requested")
        return Exit.OK
    try:
        cond = await asyncio.wait_for(_answer(kube, args.run, generation), args.timeout)
    except TimeoutError:
        ui.err(f"pipelinerun {args.run}: no answer from the operator within {args.timeout:g}s")
        return Exit.TIMEOUT
    reason, message = cond.get("reason"), cond.get("message") or ""
    if reason in REFUSED:
        ui.err(f"pipelinerun {args.run}: work in progress not {want.value.lower()}d ({reason}): {message}")
        return Exit.RUN_FAILED
    ui.out(f"pipelinerun {args.run}: work in progress {reason}: {message}")
    return Exit.OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "wip", parents=[common], help="delete or archive a finished run's work in progress (its folder)"
    )
    p.add_argument(
        "action", choices=sorted(ACTIONS), help="delete, archive (move to <outputDir>/.archive/), keep"
    )
    p.add_argument("run")
    p.add_argument("--no-wait", action="store_true", help="only set spec.workInProgress")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds to wait for the answer"
    )
    p.set_defaults(func=cmd_wip)
