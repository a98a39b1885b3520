"""`mmif-runner show summary|mmif|view|log --run-dir DIR --steps a,b [--item X] ...` and
`mmif-runner show records|record --store DIR [query | --id ID]`: what the
`kubectl mmif` plugin's reader pod prints. One line of JSON on stdout, `{"ok": true, "result":
...}` or `{"ok": false, "error": "..."}` (exit 0 and 1), nothing else: the plugin reads it from
the pod's log."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from datetime import datetime

from mmif_operator.records import search, store
from mmif_operator.results import reader

MARKER = "mmif-show:"  # the line's prefix, so the plugin finds it among anything else in the log


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmif-runner show", description=__doc__)
    p.add_argument("what", choices=["summary", "mmif", "view", "log", "records", "record"])
    p.add_argument("--run-dir", help="the run's folder (summary, mmif, view, log)")
    p.add_argument("--store", help="the record store's folder (records, record)")
    p.add_argument("--id", help="record: its id (sha256:<hex>, or the hex)")
    p.add_argument("--record-mmif", action="store_true", help="record: its MMIF too")
    p.add_argument("--input")
    p.add_argument("--app")
    p.add_argument("--legal-tag")
    p.add_argument("--run")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--steps", default="", help="the run's step names, comma-separated, in order")
    p.add_argument("--item")
    p.add_argument("--view")
    p.add_argument("--step")
    p.add_argument("--limit", type=int, default=reader.MAX_ITEMS)
    return p


def answer(argv: list[str]) -> dict:
    args = _parser().parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    try:
        if args.what in ("records", "record"):
            if not args.store:
                raise reader.NotFound(f"`{args.what}` needs --store")
            result = _records(args)
        elif not args.run_dir:
            raise reader.NotFound(f"`{args.what}` needs --run-dir")
        elif args.what == "summary":
            result = reader.run_results(args.run_dir, steps, args.item, limit=args.limit)
        elif args.item is None:
            raise reader.NotFound(f"`{args.what}` needs --item")
        elif args.what == "mmif":
            result = reader.item_mmif(args.run_dir, steps, args.item)
        elif args.what == "view":
            result = reader.item_view(args.run_dir, steps, args.item, args.view or "")
        else:
            result = reader.item_step_log(args.run_dir, steps, args.item, args.step or "")
    except reader.NotFound as e:
        return {"ok": False, "error": str(e)}
    except OSError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "result": result}


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _records(args: argparse.Namespace) -> dict:
    if args.what == "records":
        query = search.Query(
            input=args.input,
            app=args.app,
            legal_tag=args.legal_tag,
            run=args.run,
            since=_time(args.since),
            until=_time(args.until),
            limit=args.limit,
        )
        return {"records": search.search(args.store, query)}
    sha = (args.id or "").removeprefix("sha256:")
    if len(sha) != 64:
        raise reader.NotFound(f"{args.id!r} is no record id (sha256:<64 hex digits>)")
    try:
        with open(os.path.join(args.store, store.lineage_path(sha)), encoding="utf-8") as f:
            out: dict = {"lineage": json.load(f)}
    except FileNotFoundError:
        raise reader.NotFound(f"no record sha256:{sha} in the store") from None
    if args.record_mmif:
        with open(os.path.join(args.store, store.object_path(sha)), encoding="utf-8") as f:
            out["mmif"] = f.read()
    return out


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")  # mmif-python's DeprecationWarnings would mix into the log
    out = answer(list(sys.argv[1:] if argv is None else argv))
    sys.stdout.write(MARKER + reader.to_json(out) + "\n")
    sys.stdout.flush()
    return 0 if out["ok"] else 1
