"""`records [--input X] [--app A] [--legal-tag T] [--run R] [--since T] [--until T]` and
`record ID [--mmif]`: a project's records, searched and read on its record store by the reader
pod (cli/reader.py; records/search.py does the search in the pod). The store is the claim
`--claim` (default `records`, the name docs/howto.md uses) of the namespace, mounted read-only.
`render_records` is pure."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from mmif_operator.cli import reader
from mmif_operator.cli.errors import Exit
from mmif_operator.cli.kube import Kube

STORE_MOUNT = "/records"
DEFAULT_CLAIM = "records"


def render_records(found: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(found)} record(s), newest first")
    for column in ("id", "published", "run", "item", "apps", "legal tags", "inputs"):
        table.add_column(column)
    for r in found:
        table.add_row(
            r["id"][:19] + "…",
            r.get("publishedAt") or "-",
            r.get("run") or "-",
            str(r.get("itemName") or r.get("item")),
            ", ".join(a.rstrip("/").rsplit("/", 2)[-2] if "/" in a else a for a in r.get("apps", ())),
            ", ".join(r.get("legalTags", ())) or "-",
            ", ".join(i["location"] for i in r.get("inputs", ())),
        )
    return table


def _pod(kube: Kube, args: argparse.Namespace, show: list[str]) -> dict[str, Any]:
    return reader.volume_reader_pod(
        args.claim, STORE_MOUNT, args.claim, [*show, "--store", STORE_MOUNT], args.reader_image
    )


async def cmd_records(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    show = ["records", "--limit", str(args.limit)]
    for flag, value in (
        ("--input", args.input),
        ("--app", args.app),
        ("--legal-tag", args.legal_tag),
        ("--run", args.run),
        ("--since", args.since),
        ("--until", args.until),
    ):
        if value:
            show += [flag, value]
    got = await reader.read_with(kube, _pod(kube, args, show))
    if args.output == "json":
        ui.out(json.dumps(got["records"], indent=2, ensure_ascii=False))
    else:
        ui.console.print(render_records(got["records"]))
    return Exit.OK


async def cmd_record(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    show = ["record", "--id", args.id] + (["--record-mmif"] if args.mmif else [])
    got = await reader.read_with(kube, _pod(kube, args, show))
    if args.mmif:
        ui.stream.write(got["mmif"] if got["mmif"].endswith("\n") else got["mmif"] + "\n")
    else:
        ui.out(json.dumps(got["lineage"], indent=2, ensure_ascii=False))
    return Exit.OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--claim", default=DEFAULT_CLAIM, help="the record store's claim (default records)")
    store.add_argument("--reader-image", help=f"the reader pod's image (default {reader.DEFAULT_IMAGE})")
    p = sub.add_parser("records", parents=[common, store], help="search a project's records")
    p.add_argument("--input", help="an input's sha256, or part of its location")
    p.add_argument("--app", help="part of an app identifier, e.g. whisper")
    p.add_argument("--legal-tag", help="one of the record's legal tags")
    p.add_argument("--run", help="the run that published it")
    p.add_argument("--since", help="published at or after (RFC 3339)")
    p.add_argument("--until", help="published before (RFC 3339)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_records)
    r = sub.add_parser("record", parents=[common, store], help="one record's lineage, or its MMIF")
    r.add_argument("id", help="the record's id, sha256:<hex>")
    r.add_argument("--mmif", action="store_true", help="print the record's MMIF instead")
    r.set_defaults(func=cmd_record)
