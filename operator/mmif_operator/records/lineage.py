"""The lineage document of a record, built from what the publisher reads (pure), and its check
against the shipped JSON Schema (`lineage.schema.json`, draft 2020-12).

Deterministic: the same run, item, MMIF and decision give the same bytes (no clock is read; the
publication time is the review decision's time), so a publish that is retried writes nothing new.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from mmif import Mmif

API_VERSION = "mmif.dev/lineage/v1alpha1"
_VERSION = re.compile(r"^v?\d+(\.\d+)*([-.+][0-9A-Za-z.]+)?$")


class LineageError(ValueError):
    """The document does not validate against the schema (the message names the field)."""


@cache
def schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("lineage.schema.json").read_text()
    return json.loads(text)


def validate(doc: Mapping[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(dict(doc)), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(the document)"
        raise LineageError(f"lineage {where}: {first.message}")


def app_version(app: str) -> str | None:
    """The version in a CLAMS app identifier (`http://apps.clams.ai/whisper-wrapper/v8` -> `v8`)."""
    last = app.rstrip("/").rsplit("/", 1)[-1]
    return last if _VERSION.match(last) else None


def _short_type(at_type: Any) -> str:
    """`TimeFrame` for `http://mmif.clams.ai/vocabulary/TimeFrame/v6` (the name without version)."""
    short = getattr(at_type, "shortname", None)
    if short:
        return str(short)
    parts = str(at_type).rstrip("/").rsplit("/", 2)
    return parts[-2] if len(parts) > 1 and _VERSION.match(parts[-1]) else parts[-1]


def view_entries(mmif_text: str, view_steps: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One entry per view of the MMIF (mmif-python): its app, version, parameters, time, counts of
    annotations by type, error; `view_steps` maps a view id to the pipeline step that added it."""
    doc = Mmif(mmif_text)
    out = []
    for view in doc.views:
        meta = view.metadata
        app = str(meta.app or "")
        params = {str(k): str(v) for k, v in (meta.parameters or {}).items()}
        counts = Counter(_short_type(a.at_type) for a in view.annotations)
        error = meta.get_error_as_text() if meta.has_error() else None
        out.append(
            {
                "view": view.id,
                "step": (view_steps or {}).get(view.id),
                "app": app,
                "appVersion": app_version(app) if app else None,
                "parameters": params,
                "timestamp": str(meta.timestamp) if meta.timestamp else None,
                "annotations": dict(sorted(counts.items())),
                "error": error,
            }
        )
    return out


def view_ids(mmif_text: str) -> list[str]:
    return [v.id for v in Mmif(mmif_text).views]


def steps_of_views(step_mmifs: Sequence[tuple[str, str | None]]) -> dict[str, str]:
    """Which step added which view: step k's MMIF holds the views of steps 0..k, so the views new in
    it are step k's. `step_mmifs`: (step name, that step's MMIF text or None when unreadable)."""
    seen: set[str] = set()
    out: dict[str, str] = {}
    for step, text in step_mmifs:
        if text is None:
            continue
        for vid in view_ids(text):
            if vid not in seen:
                seen.add(vid)
                out[vid] = step
    return out


@dataclass(frozen=True)
class Input:
    location: str
    mime_type: str | None
    sha256: str | None
    record: str | None = None


@dataclass(frozen=True)
class Publication:
    """What a publisher knows about one item it publishes."""

    run_name: str
    run_namespace: str
    run_uid: str | None
    item_index: int
    item_name: str | None
    pipeline_name: str
    pipeline_generation: int | None
    decision: str
    reviewer: str | None
    comment: str | None
    decided_at: str | None
    item_finished_at: str | None = None
    source: str | None = None
    requester: Mapping[str, Any] | None = None
    project: str | None = None
    project_id: str | None = None
    legal_tags: Sequence[str] = ()
    acl: Mapping[str, Sequence[str]] = field(default_factory=dict)
    step_images: Mapping[str, str | None] = field(default_factory=dict)  # None: a url app served
    image_digests: Mapping[str, str] = field(default_factory=dict)


def lineage(
    pub: Publication,
    *,
    sha256: str,
    size: int,
    path: str,
    inputs: Iterable[Input],
    views: Sequence[Mapping[str, Any]],
    supersedes: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The lineage document of the record `sha256` (validated by the caller with `validate`).
    `supersedes`: the conflicts a review passed it over with `onConflict: Supersede`
    ({record: the parent, kind, project, run, publishedAt}); the key is left out when there are none."""
    steps = []
    for v in views:
        entry = dict(v)
        step = entry.get("step")
        entry["image"] = pub.step_images.get(step) if step else None
        image = entry["image"]
        entry["imageDigest"] = pub.image_digests.get(image) if image else None  # from the pod (images.py)
        steps.append(entry)
    requester = None
    if pub.requester and pub.requester.get("username"):
        requester = {"username": pub.requester["username"], "groups": list(pub.requester.get("groups") or [])}
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "record": {"id": f"sha256:{sha256}", "sha256": sha256, "size": size, "path": path},
        "project": {"name": pub.project, "projectId": pub.project_id} if pub.project else None,
        "run": {
            "name": pub.run_name,
            "namespace": pub.run_namespace,
            "uid": pub.run_uid,
            "requester": requester,
        },
        "item": {"index": pub.item_index, "name": pub.item_name, "source": pub.source},
        "pipeline": {"name": pub.pipeline_name, "generation": pub.pipeline_generation},
        "inputs": [
            {"location": i.location, "mimeType": i.mime_type, "sha256": i.sha256, "record": i.record}
            for i in inputs
        ],
        "steps": steps,
        "review": {
            "decision": pub.decision,
            "reviewer": pub.reviewer,
            "comment": pub.comment,
            "decidedAt": pub.decided_at,
        },
        "legalTags": list(pub.legal_tags),
        "acl": {k: list(v) for k, v in pub.acl.items()},
        "times": {"itemFinishedAt": pub.item_finished_at, "publishedAt": pub.decided_at},
    }
    if supersedes:
        doc["supersedes"] = [
            {
                "record": s.get("record"),
                "kind": s.get("kind"),
                "project": s.get("project"),
                "run": s.get("run"),
                "publishedAt": s.get("publishedAt"),
            }
            for s in supersedes
        ]
    return doc
