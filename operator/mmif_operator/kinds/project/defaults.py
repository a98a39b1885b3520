"""What admission does to a PipelineRun or AnalysisJob created in a project's namespace (pure).

Open project: the object gets the project's default legal tags and ACL where it names none of
its own (`legalTags` as a whole; `acl.owners` and `acl.viewers` each on its own). Closed project:
refused, naming the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmif_operator.kinds.project.model import ProjectSpec, ProjectState


def refusal(kind: str, project: str, namespace: str, spec: ProjectSpec) -> str | None:
    """The message refusing a new `kind` in a closed project's namespace (None: allowed)."""
    if spec.state is ProjectState.CLOSED:
        return (
            f"project {project} is Closed: no new {kind}s in namespace {namespace} "
            f"(Project {project} spec.state is Closed; an admin of the cluster may open it again)"
        )
    return None


def record_store_refusal(
    kind: str, obj_spec: Mapping[str, Any] | None, project: str, spec: ProjectSpec
) -> str | None:
    """A run or AnalysisJob may not write into the project's record store: its workspace may not be
    the record store's claim (None: allowed)."""
    if spec.records is None:
        return None
    claim = ((obj_spec or {}).get("workspace") or {}).get("claimName")
    if claim == spec.records.claim_name:
        return (
            f"spec.workspace.claimName: {claim} is project {project}'s record store, which only the "
            f"publisher writes; use another claim for the {kind}'s workspace"
        )
    return None


def defaulted_fields(obj_spec: Mapping[str, Any] | None, project: ProjectSpec) -> dict[str, Any]:
    """The `spec` fields to set on the new object (camelCase): the project's defaults for what
    it leaves out. Explicit values win, an explicit empty list included."""
    obj_spec = obj_spec or {}
    defaults = project.defaults
    if defaults is None:
        return {}
    out: dict[str, Any] = {}
    if "legalTags" not in obj_spec and defaults.legal_tags is not None:
        out["legalTags"] = list(defaults.legal_tags)
    if defaults.acl is not None:
        have = dict(obj_spec.get("acl") or {})
        acl = dict(have)
        for key, value in (("owners", defaults.acl.owners), ("viewers", defaults.acl.viewers)):
            if key not in have and value is not None:
                acl[key] = list(value)
        if acl != have:
            out["acl"] = acl
    return out
