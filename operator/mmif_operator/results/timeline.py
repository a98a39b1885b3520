"""The geometry of a timeline of TimeFrames (results/summary.py's `timeframes`) over a media's
duration: one lane per view, each TimeFrame a bar placed by percentages of the extent (the
document's duration, or the last TimeFrame's end when the MMIF does not say it). Pure."""

from __future__ import annotations

from typing import Any

# Seconds per unit of a TimeFrame's `timeUnit` (CLAMS vocabulary: milliseconds, seconds; frames
# need the video's frame rate, which the MMIF does not always hold: such TimeFrames are listed, not drawn).
UNIT_SECONDS = {
    "milliseconds": 0.001,
    "millisecond": 0.001,
    "ms": 0.001,
    "seconds": 1.0,
    "second": 1.0,
    "s": 1.0,
}


def to_seconds(value: Any, unit: str | None) -> float | None:
    factor = UNIT_SECONDS.get((unit or "").lower())
    if factor is None:
        return None
    try:
        return float(value) * factor
    except (TypeError, ValueError):
        return None


def media_duration(documents: list[dict[str, Any]]) -> float | None:
    """The longest duration (seconds) a document of the MMIF states, or None."""
    known = [
        to_seconds(d["duration"]["value"], d["duration"].get("unit") or "seconds")
        for d in documents
        if d.get("duration")
    ]
    found = [s for s in known if s is not None and s > 0]
    return max(found) if found else None


def timeline(summary: dict[str, Any]) -> dict[str, Any]:
    """Lanes of bars: `extent` (seconds), `durationKnown` (from a document, not guessed from the
    TimeFrames), per lane the view, its app and its bars (id, label, start/end in seconds, left
    and width in % of the extent, clamped to it), and `undrawn`: TimeFrames whose unit is not a
    time (frames) or whose interval is not one."""
    frames = summary.get("timeframes") or []
    apps = {v["id"]: v.get("app") for v in summary.get("views") or []}
    placed: list[tuple[dict[str, Any], float, float]] = []
    undrawn = []
    for f in frames:
        start, end = to_seconds(f.get("start"), f.get("unit")), to_seconds(f.get("end"), f.get("unit"))
        if start is None or end is None or end < start or start < 0:
            undrawn.append(
                {
                    "view": f.get("view"),
                    "id": f.get("id"),
                    "start": f.get("start"),
                    "end": f.get("end"),
                    "unit": f.get("unit"),
                }
            )
            continue
        placed.append((f, start, end))
    duration = media_duration(summary.get("documents") or [])
    last = max((end for _, _, end in placed), default=0.0)
    extent = duration if duration is not None else last
    lanes: dict[str, dict[str, Any]] = {}
    for f, start, end in placed:
        lane = lanes.setdefault(f["view"], {"view": f["view"], "app": apps.get(f["view"]), "bars": []})
        if extent > 0:
            left = min(start, extent) / extent * 100
            width = (min(end, extent) - min(start, extent)) / extent * 100
        else:  # every TimeFrame is an instant at 0
            left, width = 0.0, 0.0
        lane["bars"].append(
            {
                "id": f["id"],
                "label": f.get("label") or f.get("frameType"),
                "start": start,
                "end": end,
                "left": round(left, 3),
                "width": round(width, 3),
            }
        )
    return {
        "extent": extent,
        "durationKnown": duration is not None,
        "lanes": list(lanes.values()),
        "undrawn": undrawn,
        "truncated": bool(summary.get("timeframesTruncated")),
    }
