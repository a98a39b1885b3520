"""What a Project's reconcile pass does, decided from what it read (pure functions).

The namespace is the Project's name. It is the Project's when its annotation
`mmif.dev/project-uid` holds the Project's uid (the operator wrote it at creation); any other
namespace of that name is not the project's and is never changed: `Ready=False NameConflict`.
The namespace carries no ownerReference on purpose: deleting a Project must not delete the
namespace with the project's data and records (as a StatefulSet's claims outlive it); the
role bindings do carry one, so deleting the Project revokes its members' access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.status import FALSE, TRUE, set_condition
from mmif_operator.kinds.project.model import (
    ADMIN_ROLE,
    ADMINS_BINDING,
    CONTRIBUTOR_ROLE,
    CONTRIBUTORS_BINDING,
    KIND,
    Members,
    ProjectSpec,
    ProjectState,
)

UID_ANNOTATION = "mmif.dev/project-uid"
RECORD_CLAIM_LABEL = "mmif.dev/record-claim"  # on the namespace: the record store's claim, for the
# ValidatingAdmissionPolicy that refuses pods mounting it read-write (manifests/policy-records.yaml)
PROJECTS_INDEX = "projects_by_namespace"  # the kopf index (kinds/project/handler.py): namespace -> Project
AWAITING_REVIEW_INDEX = "runs_awaiting_review"  # the kopf index: namespace -> runs awaiting review
CLOSURE_NAMES_SHOWN = 20  # runs named in a refused closure (the rest counted)
CONDITION_READY = "Ready"
CONDITION_RECONCILING = "Reconciling"
CONDITION_STALLED = "Stalled"
R_READY = "Ready"
R_NAME_CONFLICT = "NameConflict"
R_CREATING = "Creating"
R_INVALID_SPEC = "InvalidSpec"


def namespace_of(project_name: str) -> str:
    return project_name


def project_labels(project_name: str) -> dict[str, str]:
    labels = L.common_labels(L.COMPONENT_PROJECT, name=L.NAME_PROJECT, instance=project_name)
    labels[L.PROJECT] = L.label_value(project_name)
    return labels


def desired_namespace(name: str, uid: str, spec: ProjectSpec | None = None) -> dict[str, Any]:
    labels = project_labels(name)
    if spec is not None and spec.records is not None:
        labels[RECORD_CLAIM_LABEL] = spec.records.claim_name
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_of(name), "labels": labels, "annotations": {UID_ANNOTATION: uid}},
    }


def namespace_is_ours(namespace: Mapping[str, Any], uid: str) -> bool:
    meta = namespace.get("metadata") or {}
    return (meta.get("annotations") or {}).get(UID_ANNOTATION) == uid and not meta.get("deletionTimestamp")


def namespace_label_patch(namespace: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch putting our labels back on the namespace (None: they are right). Other
    labels are left alone; the record-claim label goes when the project has no store any more."""
    have = (namespace.get("metadata") or {}).get("labels") or {}
    want = wanted["metadata"]["labels"]
    patch: dict[str, Any] = {k: v for k, v in want.items() if have.get(k) != v}
    if RECORD_CLAIM_LABEL in have and RECORD_CLAIM_LABEL not in want:
        patch[RECORD_CLAIM_LABEL] = None
    return {"metadata": {"labels": patch}} if patch else None


def _subjects(members: Members | None) -> list[dict[str, str]]:
    if members is None:
        return []
    users = [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u} for u in members.users or ()
    ]
    groups = [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g} for g in members.groups or ()
    ]
    return users + groups


def desired_role_bindings(name: str, uid: str, spec: ProjectSpec) -> list[dict[str, Any]]:
    """The two RoleBindings of the project's namespace, controlled by the Project."""
    owner = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    out = []
    for binding, role, members in (
        (ADMINS_BINDING, ADMIN_ROLE, spec.admins),
        (CONTRIBUTORS_BINDING, CONTRIBUTOR_ROLE, spec.contributors),
    ):
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {
                    "name": binding,
                    "namespace": namespace_of(name),
                    "labels": project_labels(name),
                    "ownerReferences": [owner],
                },
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": _subjects(members),
            }
        )
    return out


def binding_drifted(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    def key(subjects: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
        return sorted((s.get("kind", ""), s.get("name", "")) for s in subjects or ())

    return key(existing.get("subjects")) != key(wanted.get("subjects")) or existing.get(
        "roleRef"
    ) != wanted.get("roleRef")


@dataclass(frozen=True)
class Outcome:
    """How the pass ended: Ready, or why not."""

    ready: bool
    reason: str
    message: str


def project_status(
    name: str,
    spec: ProjectSpec,
    generation: int | None,
    conditions: Sequence[Mapping[str, Any]] | None,
    outcome: Outcome,
    now: datetime,
) -> dict[str, Any]:
    """The status patch: phase (once Ready), namespace, project id, Ready/Reconciling/Stalled.

    kstatus: Ready -> both False; a name conflict only a person can resolve -> Stalled; anything
    else not Ready (the namespace being made) -> Reconciling."""
    conds = [dict(c) for c in conditions or ()]
    if outcome.ready:
        ready, reconciling, stalled = (
            (TRUE, R_READY, outcome.message),
            (FALSE, R_READY, ""),
            (FALSE, R_READY, ""),
        )
    elif outcome.reason in (R_NAME_CONFLICT, R_INVALID_SPEC):
        ready = (FALSE, outcome.reason, outcome.message)
        reconciling = (FALSE, outcome.reason, "stalled: see the Stalled condition")
        stalled = (TRUE, outcome.reason, outcome.message)
    else:
        ready = (FALSE, outcome.reason, outcome.message)
        reconciling = (TRUE, outcome.reason, outcome.message)
        stalled = (FALSE, outcome.reason, "")
    for type_, (status, reason, message) in (
        (CONDITION_READY, ready),
        (CONDITION_RECONCILING, reconciling),
        (CONDITION_STALLED, stalled),
    ):
        conds = set_condition(conds, type_, status, reason, message, now, generation)
    out: dict[str, Any] = {
        "conditions": conds,
        "namespace": namespace_of(name),
        "projectId": spec.project_id or name,
        "phase": spec.state.value if outcome.ready else None,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def ready_message(spec: ProjectSpec, name: str) -> str:
    admins = len(_subjects(spec.admins))
    contributors = len(_subjects(spec.contributors))
    return (
        f"namespace {namespace_of(name)} with {admins} admin and {contributors} contributor "
        f"subject(s); {spec.state.value}"
    )


@dataclass(frozen=True)
class RecordTarget:
    """Where a reviewed run of a project's namespace publishes its records."""

    project: str
    project_id: str
    claim_name: str
    mount_path: str


def record_target(entries: Sequence[Mapping[str, Any]]) -> RecordTarget | None:
    """The record store of the project whose namespace a run is in (the `projects_by_namespace`
    index's entries for that namespace); None outside a project, or for one without a store."""
    for entry in entries:
        try:
            spec = ProjectSpec.from_obj(entry.get("spec"))
        except ValueError:  # pydantic's ValidationError: its own status says so
            return None
        if spec.records is None:
            return None
        name = str(entry.get("name"))
        return RecordTarget(name, spec.project_id or name, spec.records.claim_name, spec.records.mount_path)
    return None


def closure_refusal(
    project: str, old_state: str | None, new_state: str | None, awaiting: Iterable[str]
) -> str | None:
    """Why closing `project` is refused now, or None. Closing (state `Closed`, from anything
    else) waits for every run of its namespace awaiting review to be passed, failed or cancelled:
    closing would otherwise strand work a person still has to decide on."""
    if new_state != ProjectState.CLOSED.value or old_state == ProjectState.CLOSED.value:
        return None
    runs = sorted(set(awaiting))
    if not runs:
        return None
    shown = ", ".join(runs[:CLOSURE_NAMES_SHOWN])
    more = f" and {len(runs) - CLOSURE_NAMES_SHOWN} more" if len(runs) > CLOSURE_NAMES_SHOWN else ""
    return (
        f"project {project} cannot be closed while {len(runs)} PipelineRun(s) in namespace "
        f"{namespace_of(project)} await review: {shown}{more}. Pass, fail or cancel them first "
        f"(kubectl mmif review pass|fail RUN, kubectl mmif cancel RUN)."
    )
