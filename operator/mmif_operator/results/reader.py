"""A run's outputs, read from its folder on the volume (layout: runner/paths.py): which items it
has, per item its state and per-step records, the summary of its output MMIF, the MMIF itself,
one view, and the runner's log of one item-step. Pure file reading; every answer is bounded."""

from __future__ import annotations

import json
import os
from typing import Any

from mmif_operator.results import summary
from mmif_operator.runner import files
from mmif_operator.runner.items import Item, read_items
from mmif_operator.runner.paths import RunLayout, step_log

MAX_ITEMS = 20  # items summarised in one answer without an item named
MAX_LOG_BYTES = 1024 * 1024  # of a step log returned (its tail)
MAX_MMIF_BYTES = 32 * 1024 * 1024  # the runner's own cap on an MMIF (runner/appclient.py)


class NotFound(Exception):
    """What was asked for is not in the run's folder (yet): the message says what is missing."""


def _items(layout: RunLayout) -> list[Item]:
    if not os.path.isfile(layout.items):
        raise NotFound(f"{layout.items} does not exist: the run was not prepared (yet)")
    return read_items(layout.items)


def _manifest(layout: RunLayout) -> dict[str, Any] | None:
    data = files.read_json(layout.manifest)
    return data if isinstance(data, dict) else None


def find_item(layout: RunLayout, ref: str) -> Item:
    """An item by its index (digits) or its name."""
    items = _items(layout)
    if ref.isdigit():
        index = int(ref)
        if index < len(items):
            return items[index]
        raise NotFound(f"the run has {len(items)} item(s): no item {index}")
    for item in items:
        if item.name == ref:
            return item
    raise NotFound(f"no item named {ref!r} (name an item by its index or its name)")


def output_mmif(layout: RunLayout, item: Item, steps: list[str]) -> str | None:
    """The item's newest MMIF: final.mmif, else the last step's MMIF written, else its source."""
    candidates = [layout.final_mmif(item.index)]
    candidates += [
        layout.step_mmif(item.index, k, s) for k in range(len(steps) - 1, -1, -1) for s in [steps[k]]
    ]
    candidates.append(layout.source_mmif(item.index))
    return next((p for p in candidates if os.path.isfile(p)), None)


def _step_records(layout: RunLayout, item: Item, steps: list[str]) -> list[dict[str, Any]]:
    out = []
    for k, step in enumerate(steps):
        rec = files.read_json(layout.step_record(item.index, k, step))
        rec = rec if isinstance(rec, dict) else {}
        out.append(
            {
                "step": step,
                "state": rec.get("state"),
                "reason": rec.get("reason"),
                "message": rec.get("message"),
                "attempt": rec.get("attempt"),
                "finishedAt": rec.get("finishedAt"),
                "hasLog": os.path.isfile(step_log(layout, item.index, k, step)),
            }
        )
    return out


def _read_text(path: str, limit: int = MAX_MMIF_BYTES) -> str:
    size = os.path.getsize(path)
    if size > limit:
        raise NotFound(f"{path} is {size} bytes long, more than the {limit} read here")
    with open(path, encoding="utf-8") as f:
        return f.read()


def item_result(
    layout: RunLayout, item: Item, steps: list[str], entry: dict[str, Any] | None
) -> dict[str, Any]:
    """One item: its manifest entry (state, failing step, reason, message), its steps' records,
    and the summary of its newest MMIF (or why there is none)."""
    path = output_mmif(layout, item, steps)
    result: dict[str, Any] = {
        "index": item.index,
        "name": item.name,
        "state": (entry or {}).get("state"),
        "failedStep": (entry or {}).get("failedStep"),
        "reason": (entry or {}).get("reason"),
        "message": (entry or {}).get("message"),
        "steps": _step_records(layout, item, steps),
        "mmif": layout.relative(path) if path else None,
        "summary": None,
        "summaryError": None,
    }
    if path is not None:
        try:
            result["summary"] = summary.summarize(_read_text(path))
        except Exception as e:  # noqa: BLE001 - an unreadable MMIF is a result too, said as such
            result["summaryError"] = f"{layout.relative(path)}: {type(e).__name__}: {e}"
    return result


def run_results(
    run_dir: str, steps: list[str], item: str | None = None, limit: int = MAX_ITEMS
) -> dict[str, Any]:
    """The run's results: the manifest's counts, and per item (all, up to `limit`, or the one
    named) `item_result`."""
    layout = RunLayout(run_dir)
    manifest = _manifest(layout)
    steps = list((manifest or {}).get("steps") or steps)
    entries = {e.get("index"): e for e in (manifest or {}).get("items") or [] if isinstance(e, dict)}
    chosen = [find_item(layout, item)] if item is not None else _items(layout)
    total = len(chosen)
    chosen = chosen[:limit]
    return {
        "runDir": run_dir,
        "steps": steps,
        "manifest": layout.relative(layout.manifest) if manifest else None,
        "phase": (manifest or {}).get("phase"),
        "counts": (manifest or {}).get("counts"),
        "itemCount": total,
        "items": [item_result(layout, i, steps, entries.get(i.index)) for i in chosen],
        "truncated": total > len(chosen),
    }


def item_mmif(run_dir: str, steps: list[str], item: str) -> dict[str, Any]:
    layout = RunLayout(run_dir)
    found = find_item(layout, item)
    path = output_mmif(layout, found, steps)
    if path is None:
        raise NotFound(f"item {found.index} ({found.name}) has no MMIF yet")
    return {"index": found.index, "name": found.name, "path": layout.relative(path), "mmif": _read_text(path)}


def item_view(run_dir: str, steps: list[str], item: str, view_id: str) -> dict[str, Any]:
    got = item_mmif(run_dir, steps, item)
    try:
        view = summary.view_json(got["mmif"], view_id)
    except KeyError as e:
        raise NotFound(f"item {got['index']} ({got['name']}), {got['path']}: {e.args[0]}") from None
    return {"index": got["index"], "name": got["name"], "path": got["path"], "view": view}


def item_step_log(run_dir: str, steps: list[str], item: str, step: str) -> dict[str, Any]:
    """The runner's log of one item-step (its tail, at most MAX_LOG_BYTES)."""
    layout = RunLayout(run_dir)
    found = find_item(layout, item)
    if step not in steps:
        raise NotFound(f"no step {step!r}; the steps are {', '.join(steps)}")
    k = steps.index(step)
    path = step_log(layout, found.index, k, step)
    if not os.path.isfile(path):
        raise NotFound(
            f"item {found.index} ({found.name}) has no runner log for step {step} ({layout.relative(path)})"
        )
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - MAX_LOG_BYTES))
        text = f.read().decode("utf-8", errors="replace")
    return {
        "index": found.index,
        "name": found.name,
        "step": step,
        "path": layout.relative(path),
        "log": text,
    }


def to_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
