"""`results RUN [ITEM] [--mmif] [--view ID]`: a run's outputs, read from its volume by the reader
pod (cli/reader.py, results/). `render_results` is pure."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mmif_operator.cli import reader
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _seconds(value: float, unit: str | None) -> float | None:
    factor = {"milliseconds": 0.001, "ms": 0.001, "seconds": 1.0, "s": 1.0}.get(unit or "")
    return None if factor is None else value * factor


def item_renderables(item: dict[str, Any]) -> list[Any]:
    """One item: a heading, its failure, its documents, a table of its views, its TimeFrames."""
    head = f"item {item['index']} ({item['name']}): {item.get('state') or 'not in the manifest yet'}"
    if item.get("mmif"):
        head += f"  {item['mmif']}"
    out: list[Any] = [Text(head, style="bold")]
    if item.get("failedStep"):
        out.append(
            Text(f"  failed at step {item['failedStep']}: {item.get('reason')}: {item.get('message') or ''}")
        )
    summary = item.get("summary")
    if item.get("summaryError"):
        out.append(Text(f"  cannot read the MMIF: {item['summaryError']}"))
    if not summary:
        if not item.get("mmif"):
            out.append(Text("  no MMIF yet"))
        return out
    for doc in summary["documents"]:
        duration = doc.get("duration")
        length = f", duration {duration['value']:g} {duration.get('unit') or ''}".rstrip() if duration else ""
        out.append(
            Text(
                f"  document {doc['id']} {doc['type']} {doc.get('mime') or ''} {doc.get('location') or ''}{length}"
            )
        )
    table = Table(show_edge=False, pad_edge=False)
    for col in ("view", "app", "version", "parameters", "annotations", "error"):
        table.add_column(col, overflow="fold")
    for v in summary["views"]:
        error = (v.get("error") or {}).get("message") or (
            "warnings: " + "; ".join(v["warnings"]) if v.get("warnings") else ""
        )
        table.add_row(
            v["id"],
            v.get("app") or "-",
            v.get("version") or "-",
            _params(v["parameters"]),
            _counts(v["annotations"]),
            error,
        )
    out.append(table)
    frames = summary.get("timeframes") or []
    if frames:
        spans = [(_seconds(f["start"], f.get("unit")), _seconds(f["end"], f.get("unit"))) for f in frames]
        known = [(a, b) for a, b in spans if a is not None and b is not None]
        extent = f", {min(a for a, _ in known):g}-{max(b for _, b in known):g} s" if known else ""
        more = "+" if summary.get("timeframesTruncated") else ""
        out.append(Text(f"  timeframes: {len(frames)}{more}{extent}"))
    return out


def render_results(result: dict[str, Any]) -> Group:
    parts: list[Any] = []
    counts = result.get("counts")
    if counts:
        parts.append(
            Text(
                f"{result['runDir']}: {result.get('phase')}, "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v or k == "total")
                + f"; steps {', '.join(result['steps'])}"
            )
        )
    else:
        parts.append(Text(f"{result['runDir']}: no manifest yet; steps {', '.join(result['steps'])}"))
    for item in result["items"]:
        parts.extend(item_renderables(item))
    if result.get("truncated"):
        parts.append(
            Text(
                f"... {result['itemCount'] - len(result['items'])} more items: name one (results RUN ITEM) or raise --limit"
            )
        )
    return Group(*parts)


async def cmd_results(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    run = await kube.get_run(args.run)
    _, _, folder = reader.run_location(run)
    steps = reader.run_steps(run)
    base = ["--run-dir", folder, "--steps", ",".join(steps)]
    if (args.mmif or args.view) and args.item is None:
        raise CliError("--mmif and --view need an ITEM (its index or name)", Exit.USAGE)
    if args.item is not None:
        base += ["--item", args.item]
    if args.view:
        got = await reader.read(kube, run, ["view", *base, "--view", args.view], args.reader_image)
        ui.out(json.dumps(got["view"], indent=2, ensure_ascii=False))
    elif args.mmif:
        got = await reader.read(kube, run, ["mmif", *base], args.reader_image)
        ui.stream.write(got["mmif"] if got["mmif"].endswith("\n") else got["mmif"] + "\n")
    else:
        got = await reader.read(kube, run, ["summary", *base, "--limit", str(args.limit)], args.reader_image)
        if args.output == "json":
            ui.out(json.dumps(got, indent=2, ensure_ascii=False))
        else:
            ui.console.print(render_results(got))
    return Exit.OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "results", parents=[common], help="a run's outputs: per item its views, annotations, errors"
    )
    p.add_argument("run")
    p.add_argument("item", nargs="?", help="one item, by its index or name")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--mmif", action="store_true", help="print the item's MMIF (final, else the newest written)"
    )
    what.add_argument("--view", metavar="ID", help="print one view of the item's MMIF as JSON")
    p.add_argument("--limit", type=int, default=20, help="items summarised without ITEM (default 20)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument(
        "--reader-image",
        help=f"the image of the reader pod (default ${reader.IMAGE_ENV} or {reader.DEFAULT_IMAGE})",
    )
    p.set_defaults(func=cmd_results)
