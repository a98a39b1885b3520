"""Commands on runs: run, status, watch, wait, review, cancel. `run_body` (arguments -> the
PipelineRun object, checked with the model) and `load_items` are pure."""

from __future__ import annotations

import argparse
import json
import mimetypes
import posixpath
from typing import Any

import yaml
from pydantic import ValidationError

from mmif_operator.cli import live, render
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube
from mmif_operator.cli.render import Frame
from mmif_operator.core.model import API_VERSION
from mmif_operator.kinds.pipelinerun.model import KIND, Item, PipelineRunSpec, RunPhase

MAX_ITEM_NAME = 63
DEFAULT_WAIT_SECONDS = 600
DEFAULT_WATCH_SECONDS = 86400


# -- pure: arguments -> PipelineRun ----------------------------------------------------------------
def _errors(e: ValidationError, where: str) -> str:
    return "; ".join(
        f"{where}{'.'.join(str(p) for p in err['loc']) or ''}: {err['msg']}" for err in e.errors()[:5]
    )


def load_items(text: str, source: str = "the items file") -> list[dict[str, Any]]:
    """Items from a YAML/JSON list (or an object with `items`), or JSON Lines (one item a line),
    each checked with the Item model."""
    raw: Any
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None
    if isinstance(raw, dict) and "items" in raw:
        raw = raw["items"]
    if not isinstance(raw, list):
        try:
            raw = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise CliError(
                f"{source}: neither a YAML list of items nor JSON Lines ({e})", Exit.USAGE
            ) from None
    if not raw:
        raise CliError(f"{source} holds no items", Exit.USAGE)
    items = []
    for n, entry in enumerate(raw):
        try:
            items.append(Item.model_validate(entry).to_dict())
        except ValidationError as e:
            raise CliError(f"{source}: {_errors(e, f'item {n}: ')}", Exit.USAGE) from None
    return items


def guess_mime(location: str) -> str:
    mime, _ = mimetypes.guess_type(location, strict=False)
    if not mime or mime.split("/", 1)[0] not in ("video", "audio", "image", "text"):
        raise CliError(
            f"cannot tell the media type of {location!r}: write it as LOCATION:TYPE, e.g. {location}:video/mp4",
            Exit.USAGE,
        )
    return mime


def document_items(docs: list[str]) -> list[dict[str, Any]]:
    """One item per document argument `LOCATION[:MIME/TYPE]` (the type guessed from the name
    otherwise), named after the file."""
    items = []
    for doc in docs:
        location, sep, mime = doc.rpartition(":")
        if not sep or "/" not in mime:
            location, mime = doc, guess_mime(doc)
        stem = posixpath.splitext(posixpath.basename(location))[0][:MAX_ITEM_NAME] or None
        items.append({"name": stem, "documents": [{"location": location, "mimeType": mime}]})
    return items


def parse_params(pairs: list[str], steps: list[str] | None = None) -> dict[str, dict[str, str]]:
    """`step.key=value` -> {step: {key: value}}; the step must be one of `steps` when given."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        step, dot, key = target.partition(".")
        if not sep or not dot or not step or not key:
            raise CliError(f"--param {pair!r}: write it as STEP.KEY=VALUE", Exit.USAGE)
        if steps is not None and step not in steps:
            raise CliError(
                f"--param {pair!r}: the pipeline has no step {step!r} (steps: {', '.join(steps)})", Exit.USAGE
            )
        out.setdefault(step, {})[key] = value
    return out


def run_body(
    pipeline: str,
    items: list[dict[str, Any]],
    *,
    claim_name: str,
    mount_path: str | None = None,
    output_dir: str | None = None,
    name: str | None = None,
    generate_name: str | None = None,
    params: dict[str, dict[str, str]] | None = None,
    parallelism: int | None = None,
    on_item_failure: str | None = None,
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The PipelineRun to create, its spec checked with PipelineRunSpec (the CRD's own schema and
    rules): CliError naming the field otherwise."""
    workspace: dict[str, Any] = {"claimName": claim_name}
    if mount_path:
        workspace["mountPath"] = mount_path
    if output_dir:
        workspace["outputDir"] = output_dir
    spec: dict[str, Any] = {"pipelineRef": {"name": pipeline}, "workspace": workspace, "items": items}
    if params:
        spec["params"] = params
    if parallelism is not None:
        spec["parallelism"] = parallelism
    if on_item_failure:
        spec["onItemFailure"] = on_item_failure
    if timeout_seconds is not None:
        spec["timeoutSeconds"] = timeout_seconds
    try:
        PipelineRunSpec.model_validate(spec)
    except ValidationError as e:
        raise CliError(_errors(e, "spec."), Exit.USAGE) from None
    metadata = {"name": name} if name else {"generateName": generate_name or f"{pipeline[:50]}-"}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


WAIT_FOR = ("Succeeded", "Failed", "Cancelled", "Ended", "AwaitingReview", "Running")


def wait_decision(f: Frame, target: str) -> bool | None:
    """True when `target` holds, False when the run can no longer reach it, None: not yet."""
    reached = {
        "Ended": f.ended,
        "Running": f.phase != RunPhase.PENDING,
        "AwaitingReview": f.awaiting_review,
    }.get(target, f.phase == target)
    if reached:
        return True
    if f.ended:
        return False
    if target == "AwaitingReview" and f.phase == RunPhase.PUBLISHING:
        return False
    return None


# -- commands ------------------------------------------------------------------------------------
async def _items_from_args(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.items and args.docs:
        raise CliError("give either --items FILE or documents, not both", Exit.USAGE)
    if args.items:
        try:
            with open(args.items, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CliError(f"--items: {e}", Exit.USAGE) from None
        return load_items(text, args.items)
    if not args.docs:
        raise CliError("no items: give --items FILE or documents (paths on the volume)", Exit.USAGE)
    return document_items(args.docs)


async def cmd_run(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    items = await _items_from_args(args)
    pipeline = await kube.get_pipeline(args.pipeline)
    spec = pipeline.get("spec") or {}  # read as it is: a newer operator's fields are no error here
    workspace = spec.get("workspace") or {}
    claim, mount = args.claim, args.mount_path
    if not claim:
        if not workspace.get("claimName"):
            raise CliError(f"pipeline {args.pipeline} names no workspace: give --claim", Exit.USAGE)
        claim, mount = workspace["claimName"], mount or workspace.get("mountPath")
    body = run_body(
        args.pipeline,
        items,
        claim_name=claim,
        mount_path=mount,
        output_dir=args.output_dir,
        name=args.name,
        generate_name=args.generate_name,
        params=parse_params(args.param, [s.get("name") for s in spec.get("steps") or []]),
        parallelism=args.parallelism,
        on_item_failure=args.on_item_failure,
        timeout_seconds=args.timeout_seconds,
    )
    created = await kube.create_run(body)
    name = created["metadata"]["name"]
    ui.out(f"pipelinerun.mmif.dev/{name} created ({len(items)} items, namespace {kube.namespace})")
    if not args.watch:
        return Exit.OK
    return await _watch(kube, name, ui, args.timeout)


async def _watch(kube: Kube, name: str, ui: Any, timeout: float | None) -> int:
    final = await live.follow(kube, name, live.renderer_for(ui.console, ui.stream), live.until_ended, timeout)
    live.print_summary(ui.console, final)
    return live.exit_code(final)


async def cmd_watch(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    return await _watch(kube, args.run, ui, args.timeout)


async def cmd_status(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    f = render.frame(await kube.get_run(args.run))
    if not ui.console.is_terminal:
        for line in f.lines():
            ui.out(line)
    live.print_summary(ui.console, f)
    if f.output_path:
        ui.out(f"outputs: {f.output_path}" + (f" (manifest {f.manifest_path})" if f.manifest_path else ""))
    return Exit.OK


async def cmd_wait(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    decided: dict[str, bool] = {}

    def done(f: Frame) -> bool:
        d = wait_decision(f, args.for_)
        if d is not None:
            decided["ok"] = d
        return d is not None

    final = await live.follow(kube, args.run, _quiet(), done, args.timeout)
    ui.out(final.outcome())
    if decided["ok"]:
        return Exit.OK
    ui.err(f"pipelinerun {args.run} cannot become {args.for_} any more: it is {final.phase}")
    return Exit.RUN_FAILED


async def cmd_review(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    decision = {"pass": "Pass", "fail": "Fail"}[args.decision]
    body: dict[str, Any] = {"decision": decision, "comment": args.comment}
    on_conflict = getattr(args, "on_conflict", None)
    if on_conflict:
        if decision != "Pass":
            ui.err("--on-conflict goes with pass: a failed run publishes nothing")
            return Exit.USAGE
        body["onConflict"] = on_conflict
    patch = {"spec": {"review": body}}
    run = await kube.patch_run(args.run, patch)
    review = (run.get("spec") or {}).get("review") or {}
    ui.out(
        f"pipelinerun {args.run}: review {review.get('decision', decision)} recorded"
        f" (reviewer {review.get('reviewer', '?')}, at {review.get('decidedAt', '?')}): {review.get('comment') or ''}"
    )
    if args.wait:
        # A Pass that conflicts block stays AwaitingReview: that is an answer too.
        final = await live.follow(
            kube, args.run, _quiet(), lambda f: f.ended or f.reason == "PublishBlocked", args.timeout
        )
        ui.out(final.outcome())
        if not final.ended:
            return Exit.AWAITING_REVIEW
        return live.exit_code(final) if decision == "Pass" else Exit.OK
    return Exit.OK


def _quiet() -> live.Renderer:
    class Quiet:
        def update(self, frame: Frame) -> None: ...
        def close(self) -> None: ...

    return Quiet()


async def cmd_cancel(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    f = render.frame(await kube.get_run(args.run))
    if f.ended:
        ui.out(f"pipelinerun {args.run} already ended ({f.phase}): nothing to cancel")
        return Exit.OK
    await kube.patch_run(args.run, {"spec": {"status": "Cancelled"}})
    ui.out(
        f"pipelinerun {args.run}: cancellation requested (it was {f.phase}, {f.done}/{f.total or '?'} items done)"
    )
    if args.wait:
        final = await live.follow(kube, args.run, _quiet(), lambda fr: fr.ended, args.timeout)
        ui.out(final.outcome())
    return Exit.OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common], help="create a PipelineRun (and --watch it)")
    p.add_argument("pipeline", help="the Pipeline's name")
    p.add_argument(
        "docs", nargs="*", metavar="DOC", help="documents on the volume, one item each: LOCATION[:MIME/TYPE]"
    )
    p.add_argument(
        "--items", metavar="FILE", help="the batch: a YAML list of items (as spec.items) or JSON Lines"
    )
    names = p.add_mutually_exclusive_group()
    names.add_argument("--name", help="the run's name")
    names.add_argument(
        "--generate-name", metavar="PREFIX", help="a name made by the API server (default: PIPELINE-)"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="STEP.KEY=VALUE", help="a step parameter (repeatable)"
    )
    p.add_argument("--claim", help="the PersistentVolumeClaim (default: the Pipeline's workspace)")
    p.add_argument("--mount-path", help="where the claim is mounted (default: the Pipeline's, else /data)")
    p.add_argument("--output-dir", help="the folder under which the run writes (default mmif-runs)")
    p.add_argument("--parallelism", type=int, help="items in flight at once (default 4)")
    p.add_argument("--on-item-failure", choices=["Stop", "Continue"])
    p.add_argument("--timeout-seconds", type=int, help="the run's own deadline (spec.timeoutSeconds)")
    p.add_argument("-w", "--watch", action="store_true", help="show live progress until the run ends")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_WATCH_SECONDS, help="how long --watch follows the run (s)"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", parents=[common], help="a run's progress, counts and latest failures")
    p.add_argument("run")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("watch", parents=[common], help="live progress bars until the run ends")
    p.add_argument("run")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_WATCH_SECONDS, help="give up after this many seconds"
    )
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("wait", parents=[common], help="wait (bounded) until a run is in a phase")
    p.add_argument("run")
    p.add_argument(
        "--for", dest="for_", choices=WAIT_FOR, default="Succeeded", help="default Succeeded; Ended: any end"
    )
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds (default 600)")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("review", parents=[common], help="pass or fail a run awaiting review")
    p.add_argument("decision", choices=["pass", "fail"])
    p.add_argument("run")
    p.add_argument("--comment", required=True, help="why, in your words (recorded with the decision)")
    p.add_argument(
        "--on-conflict",
        choices=["Block", "Supersede", "Ignore"],
        help="pass: what publishing does when it finds conflicts (default Block: nothing is "
        "published, the run stays AwaitingReview; Supersede: publish, the lineage names them; "
        "Ignore: publish, only where the project allows it). On a run whose publishing "
        "conflicts blocked, pass again with Supersede or Ignore.",
    )
    p.add_argument("--wait", action="store_true", help="then wait until the run ends")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS)
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("cancel", parents=[common], help="cancel a run")
    p.add_argument("run")
    p.add_argument("--wait", action="store_true", help="then wait until the run ends")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS)
    p.set_defaults(func=cmd_cancel)
