"""What an MMIF holds, as plain JSON-ready dicts, computed with mmif-python: its documents, its
views (the app, its version and parameters from the view's metadata, annotation counts per type,
error and warnings) and its TimeFrames (start, end, unit). Bounded whatever the MMIF's size."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from mmif import AnnotationTypes, Mmif

MAX_TIMEFRAMES = 500  # per MMIF, for a timeline; `truncated` says when there were more
MAX_TEXT = 2000  # characters of an error message or a stack trace kept


def _cut(text: Any, limit: int = MAX_TEXT) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def app_and_version(identifier: str | None) -> tuple[str | None, str | None]:
    """A CLAMS app identifier is `<app url>/<version>` (`http://apps.clams.ai/whisper-wrapper/v8`):
    the app and the version, or the whole identifier and None when it has no version segment."""
    if not identifier:
        return None, None
    head, _, last = str(identifier).rstrip("/").rpartition("/")
    if head and last[:1] in "vV0123456789" and any(c.isdigit() for c in last):
        return head, last
    return str(identifier), None


def _type_name(at_type: Any) -> str:
    """The short name of a vocabulary type (`TimeFrame`), or the URI of a type outside it."""
    name = getattr(at_type, "shortname", None)
    return str(name) if name else str(at_type)


def _duration(document: Any) -> dict[str, Any] | None:
    """A document's duration when its properties say it (`duration`, with `timeUnit`)."""
    props = document.properties
    for key in ("duration", "length"):
        if key in props:
            try:
                value = float(props[key])
            except (TypeError, ValueError):
                continue
            unit = props.get("timeUnit", None)
            return {"value": value, "unit": unit}
    return None


def documents(mmif: Mmif) -> list[dict[str, Any]]:
    out = []
    for doc in mmif.documents:
        props = doc.properties
        out.append(
            {
                "id": doc.id,
                "type": _type_name(doc.at_type),
                "mime": props.get("mime", None),
                "location": doc.location or None,
                "duration": _duration(doc),
            }
        )
    return out


def _contains_unit(view: Any, at_type: Any) -> str | None:
    contains = view.metadata.contains or {}
    for key, props in contains.items():
        if str(key) == str(at_type) and props is not None and "timeUnit" in props:
            return str(props["timeUnit"])
    return None


def view_summary(view: Any) -> dict[str, Any]:
    md = view.metadata
    app, version = app_and_version(str(md.app) if md.app else None)
    counts: Counter[str] = Counter()
    for ann in view.get_annotations():
        counts[_type_name(ann.at_type)] += 1
    error = None
    if view.has_error():
        err = md.error
        error = {
            "message": _cut(getattr(err, "message", err)),
            "stackTrace": _cut(getattr(err, "stackTrace", None)),
        }
    warnings = [_cut(w, 500) for w in (md.warnings or [])][:20]
    return {
        "id": view.id,
        "app": app,
        "appIdentifier": str(md.app) if md.app else None,
        "version": version,
        "timestamp": str(md.timestamp) if md.timestamp else None,
        "parameters": {str(k): v for k, v in dict(md.parameters or {}).items()},
        "appConfiguration": {str(k): v for k, v in dict(md.appConfiguration or {}).items()},
        "annotations": dict(sorted(counts.items())),
        "annotationCount": sum(counts.values()),
        "error": error,
        "warnings": warnings,
    }


def timeframes(mmif: Mmif, limit: int = MAX_TIMEFRAMES) -> tuple[list[dict[str, Any]], bool]:
    """Every TimeFrame with a start and an end (view, id, start, end, unit, label, frameType,
    document), in view order; at most `limit`, and whether there were more."""
    out: list[dict[str, Any]] = []
    for view in mmif.views:
        unit = _contains_unit(view, AnnotationTypes.TimeFrame)
        for ann in view.get_annotations(AnnotationTypes.TimeFrame):
            props = ann.properties
            if "start" not in props or "end" not in props:
                continue  # a TimeFrame by its targets only: no interval of its own
            if len(out) == limit:
                return out, True
            out.append(
                {
                    "view": view.id,
                    "id": ann.id,
                    "start": props["start"],
                    "end": props["end"],
                    "unit": str(props["timeUnit"]) if "timeUnit" in props else unit,
                    "label": props.get("label", None),
                    "frameType": props.get("frameType", None),
                    "document": props.get("document", None),
                }
            )
    return out, False


def summarize(text: str | bytes) -> dict[str, Any]:
    """The summary of one MMIF (mmif-python validates it: ValueError-like errors propagate)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    mmif = Mmif(text)
    frames, truncated = timeframes(mmif)
    return {
        "mmifVersion": str(mmif.metadata.mmif) if mmif.metadata.mmif else None,
        "documents": documents(mmif),
        "views": [view_summary(v) for v in mmif.views],
        "timeframes": frames,
        "timeframesTruncated": truncated,
    }


def view_json(text: str | bytes, view_id: str) -> dict[str, Any]:
    """One view of an MMIF as JSON (KeyError naming the views there when it is not)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    mmif = Mmif(text)
    for view in mmif.views:
        if view.id == view_id:
            return json.loads(view.serialize())
    raise KeyError(f"no view {view_id!r}; the views are {', '.join(v.id for v in mmif.views) or 'none'}")
