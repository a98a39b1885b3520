"""What the publish Job does for records: every Succeeded item of a passed run becomes a record
(its final MMIF, byte for byte, and its lineage) in the project's record store.

The context comes from the operator in one environment variable (`MMIF_RECORDS`, JSON:
`RecordsContext`); without it (a run outside a project with a record store) nothing is recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from mmif import Mmif

from mmif_operator.records import lineage as LIN
from mmif_operator.records import store
from mmif_operator.runner.items import read_items
from mmif_operator.runner.paths import RunLayout


@dataclass(frozen=True)
class RecordsContext:
    dir: str  # where the record store is mounted (read-write in the publish pod only)
    workspace: str  # the workspace mount path (inputs are hashed there)
    pipeline: str
    pipeline_generation: int | None = None
    project: str | None = None
    project_id: str | None = None
    requester: Mapping[str, Any] | None = None
    legal_tags: Sequence[str] = ()
    acl: Mapping[str, Sequence[str]] = field(default_factory=dict)
    step_images: Mapping[str, str] = field(default_factory=dict)
    image_digests: Mapping[str, str] = field(default_factory=dict)  # image -> sha256:... it ran as
    # parent record -> what a record made from it supersedes (a Pass with onConflict: Supersede,
    # kinds/pipelinerun/conflicts.py): [{kind, project, run, publishedAt}]
    supersedes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> RecordsContext:
        obj = json.loads(text)
        return cls(
            dir=obj["dir"],
            workspace=obj["workspace"],
            pipeline=obj["pipeline"],
            pipeline_generation=obj.get("pipelineGeneration"),
            project=obj.get("project"),
            project_id=obj.get("projectId"),
            requester=obj.get("requester"),
            legal_tags=tuple(obj.get("legalTags") or ()),
            acl=dict(obj.get("acl") or {}),
            step_images=dict(obj.get("stepImages") or {}),
            image_digests=dict(obj.get("imageDigests") or {}),
            supersedes={str(k): list(v) for k, v in (obj.get("supersedes") or {}).items()},
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "dir": self.dir,
                "workspace": self.workspace,
                "pipeline": self.pipeline,
                "pipelineGeneration": self.pipeline_generation,
                "project": self.project,
                "projectId": self.project_id,
                "requester": self.requester,
                "legalTags": list(self.legal_tags),
                "acl": {k: list(v) for k, v in self.acl.items()},
                "stepImages": dict(self.step_images),
                "imageDigests": dict(self.image_digests),
                "supersedes": {k: [dict(x) for x in v] for k, v in self.supersedes.items()},
            },
            sort_keys=True,
        )


def _inputs(source_text: str | None, workspace: str, parent: str | None = None) -> list[LIN.Input]:
    """The item's documents with the sha256 of their files (None when unreadable); `parent`: the
    record the item started from (its source MMIF is that record's), named on each input."""
    if source_text is None:
        return []
    out = []
    for doc in Mmif(source_text).documents:
        location = str(doc.location or "")
        path = unquote(urlparse(location).path) if location.startswith("file:") else location
        sha = store.sha256_file(path) if os.path.isfile(path) else None
        rel = os.path.relpath(path, workspace) if path.startswith(workspace.rstrip("/") + "/") else path
        out.append(LIN.Input(rel, doc.properties.mime or None, sha, parent))
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def publish_records(
    layout: RunLayout, manifest: Mapping[str, Any], ctx: RecordsContext, pub: LIN.Publication
) -> list[dict[str, Any]]:
    """One record per Succeeded item with a final MMIF: [{item, name, id}], in item order (the
    same on a retry: a record that exists is the same record)."""
    steps = list(manifest.get("steps") or [])
    # The record each item started from (prepare wrote it in items.jsonl), for `inputs[].record`.
    parents = {i.index: i.record for i in read_items(layout.items)} if os.path.isfile(layout.items) else {}
    out = []
    for entry in manifest.get("items") or ():
        if entry.get("state") != "Succeeded":
            continue
        index = int(entry["index"])
        final_path = layout.final_mmif(index)
        with open(final_path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")
        step_texts = [(s, _read(layout.step_mmif(index, k, s))) for k, s in enumerate(steps)]
        views = LIN.view_entries(text, LIN.steps_of_views(step_texts))
        sha = hashlib.sha256(data).hexdigest()
        # A step with alternatives: the app that served this item there (manifest `servedBy`).
        served = {s.get("step"): s for s in entry.get("servedBy") or () if isinstance(s, dict)}
        item_pub = dataclasses.replace(
            pub,
            step_images={
                **pub.step_images,
                **{str(step): s.get("image") for step, s in served.items() if step},
            },
            item_index=index,
            item_name=entry.get("name"),
            item_finished_at=entry.get("finishedAt"),
            source=layout.relative(final_path),
        )
        parent = parents.get(index)
        doc = LIN.lineage(
            item_pub,
            sha256=sha,
            size=len(data),
            path=store.object_path(sha),
            inputs=_inputs(_read(layout.source_mmif(index)), ctx.workspace, parent),
            views=views,
            supersedes=[{"record": parent, **s} for s in ctx.supersedes.get(parent, ())] if parent else (),
        )
        LIN.validate(doc)
        stored = store.put(ctx.dir, data, doc)
        out.append({"item": index, "name": entry.get("name"), "id": stored.id})
    return out


def publication(
    ctx: RecordsContext, *, run_name: str, run_namespace: str, run_uid: str | None, review: Mapping[str, Any]
) -> LIN.Publication:
    """The run-wide part of every record's lineage."""
    return LIN.Publication(
        run_name=run_name,
        run_namespace=run_namespace,
        run_uid=run_uid,
        item_index=0,
        item_name=None,
        pipeline_name=ctx.pipeline,
        pipeline_generation=ctx.pipeline_generation,
        decision=str(review.get("decision")),
        reviewer=review.get("reviewer"),
        comment=review.get("comment"),
        decided_at=review.get("decidedAt"),
        requester=ctx.requester,
        project=ctx.project,
        project_id=ctx.project_id,
        legal_tags=tuple(ctx.legal_tags),
        acl=ctx.acl,
        step_images=ctx.step_images,
        image_digests=ctx.image_digests,
    )
