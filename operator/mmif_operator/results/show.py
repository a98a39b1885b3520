"""`mmif-runner show summary|mmif|view|log --run-dir DIR --steps a,b [--item X] ...`: what the
`kubectl mmif` plugin's reader pod prints. One line of JSON on stdout, `{"ok": true, "result":
...}` or `{"ok": false, "error": "..."}` (exit 0 and 1), nothing else: the plugin reads it from
the pod's log."""

from __future__ import annotations

import argparse
import sys
import warnings

from mmif_operator.results import reader

MARKER = "mmif-show:"  # the line's prefix, so the plugin finds it among anything else in the log


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmif-runner show", description=__doc__)
    p.add_argument("what", choices=["summary", "mmif", "view", "log"])
    p.add_argument("--run-dir", required=True)
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
        if args.what == "summary":
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


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")  # mmif-python's DeprecationWarnings would mix into the log
    out = answer(list(sys.argv[1:] if argv is None else argv))
    sys.stdout.write(MARKER + reader.to_json(out) + "\n")
    sys.stdout.flush()
    return 0 if out["ok"] else 1
