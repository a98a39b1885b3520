"""What a Project's reconcile pass does, decided from what it read (pure functions).

The namespace is the Project's name. It is the Project's when its annotation
`mmif.dev/project-uid` holds the Project's uid (the operator wrote it at creation); any other
namespace of that name is not the project's and is never changed: `Ready=False NameConflict`.
The namespace carries no ownerReference on purpose: deleting a Project must not delete the
namespace with the project's data and records (as a StatefulSet's claims outlive it); the
role bindings do carry one, so deleting the Project revokes its members' access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.status import FALSE, TRUE, find_condition, parse_time, rfc3339, set_condition
from mmif_operator.kinds.monitor.model import parse_duration
from mmif_operator.kinds.project.model import (
    ADMIN_ROLE,
    ADMINS_BINDING,
    CONTRIBUTOR_ROLE,
    CONTRIBUTORS_BINDING,
    KIND,
    MAX_REFERENCED_RECORDS,
    MAX_REFERENCING_RUNS,
    MAX_SHARED_RECORDS,
    Members,
    ProjectSpec,
    ProjectState,
)
from mmif_operator.notifications.model import NotificationEvent

UID_ANNOTATION = "mmif.dev/project-uid"
RECORD_CLAIM_LABEL = "mmif.dev/record-claim"  # on the namespace: the record store's claim, for the
# ValidatingAdmissionPolicy that refuses pods mounting it read-write (manifests/policy-records.yaml)
PROJECTS_INDEX = "projects_by_namespace"  # the kopf index (kinds/project/handler.py): namespace -> Project
CLOSURE_INDEX = "runs_holding_closure"  # the kopf index: namespace -> runs not finished (closure webhook)
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
    allow_ignore: bool = False  # spec.conflicts.allowIgnore: a reviewer may publish ignoring conflicts


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
        allow_ignore = spec.conflicts is not None and spec.conflicts.allow_ignore
        return RecordTarget(
            name, spec.project_id or name, spec.records.claim_name, spec.records.mount_path, allow_ignore
        )
    return None


def closure_refusal(
    project: str, old_state: str | None, new_state: str | None, unfinished: Iterable[str]
) -> str | None:
    """Why closing `project` is refused now, or None. Closing (state `Closed`, from anything
    else) waits for every run of its namespace that is Pending, Running or AwaitingReview to
    finish, be passed, failed or cancelled: closing would otherwise strand work a person still
    has to decide on, and nothing may run while the project closes. `unfinished`: the
    `runs_holding_closure` index's entries of the namespace, `<run> (<phase>)`."""
    if new_state != ProjectState.CLOSED.value or old_state == ProjectState.CLOSED.value:
        return None
    runs = sorted(set(unfinished))
    if not runs:
        return None
    return (
        f"project {project} cannot be closed while {len(runs)} PipelineRun(s) in namespace "
        f"{namespace_of(project)} are pending, running or await review: {named(runs)}. Let them "
        f"finish, or pass, fail or cancel them first (kubectl mmif review pass|fail RUN, "
        f"kubectl mmif cancel RUN)."
    )


def named(names: Sequence[str], shown: int = CLOSURE_NAMES_SHOWN) -> str:
    """`a, b, c` (the first `shown`) and `and N more` for the rest."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# -- closure: a process (spec.state Closed -> phase Closing -> Closed) ----------------------------
CONDITION_CLOSED = "Closed"
PHASE_CLOSING = "Closing"
R_PROJECT_OPEN = "ProjectOpen"
R_WAITING_FOR_RUNS = "WaitingForRuns"
R_WAITING_FOR_PUBLISHING = "WaitingForPublishing"
R_DELETING_WIP = "DeletingWorkInProgress"
R_PROJECT_CLOSED = "ProjectClosed"
R_NOTIFYING = "Notifying"
EV_PROJECT_CLOSED = "ProjectClosed"
_UNFINISHED = ("Pending", "Running", "AwaitingReview")
# A run's WorkInProgress condition reasons (kinds/pipelinerun/wip.py) after which its folder
# holds no work in progress to delete: deleted, archived, or the run's published output.
_WIP_DONE = ("Deleted", "Archived", "Published")


def unfinished_entry(name: str, status: Mapping[str, Any] | None) -> str | None:
    """What the `runs_holding_closure` index keeps of a run that holds a closure back:
    `<run> (<phase>)` while Pending (no phase yet included), Running or AwaitingReview."""
    phase = (status or {}).get("phase") or "Pending"
    return f"{name} ({phase})" if phase in _UNFINISHED else None


def disposal_patch(project: str) -> dict[str, Any]:
    """The patch by which a project has a finished run's work in progress deleted (its
    disposal window and its closure alike): `spec.workInProgress: Delete`, and the annotation
    naming the project. The run's own WIP timer then deletes the folder; records are never
    touched (the Job mounts the workspace only)."""
    return {
        "metadata": {"annotations": {DISPOSED_BY_ANNOTATION: project}},
        "spec": {"workInProgress": "Delete"},
    }


@dataclass(frozen=True)
class ClosurePlan:
    """What a pass does about closure: the phase and `Closed` condition to show, the runs to
    set `workInProgress: Delete` on (`disposal_patch`), and whether the project just closed
    (then: `status.closedAt`, an Event and the `ProjectClosed` notification)."""

    phase: str
    condition: tuple[str, str, str]  # status, reason, message
    dispose: tuple[str, ...] = ()
    closed_now: bool = False


def plan_closure(
    project: str, spec: ProjectSpec, previous_phase: str | None, runs: Sequence[Mapping[str, Any]] | None
) -> ClosurePlan:
    """The closure step, from the runs of the project's namespace (`runs`: None when they were
    not listed, i.e. the project is Open or already Closed).

    Closed in the spec: phase `Closing` while something is left, each wait named in the
    condition's message (looked at again at every pass): runs not finished (`WaitingForRuns`:
    admission refuses the closure while there are, but one created before it may be left),
    runs `Publishing` (`WaitingForPublishing`: what is approved gets published), finished runs
    whose work in progress is not deleted yet (`DeletingWorkInProgress`: the unset ones are set
    `Delete`, as the disposal window does; a run's own `Keep`, `Delete` or `Archive` wins; a run
    that never made its folder, `status.outputPath`, has none to delete). Then
    phase `Closed` (`ProjectClosed`). Records are never touched."""
    if spec.state is not ProjectState.CLOSED:
        return ClosurePlan(ProjectState.OPEN.value, (FALSE, R_PROJECT_OPEN, "the project is Open"))
    closed_message = (
        f"project {project} is Closed: no new PipelineRuns or AnalysisJobs in namespace "
        f"{namespace_of(project)}; its records are kept"
    )
    if previous_phase == ProjectState.CLOSED.value or runs is None:
        return ClosurePlan(ProjectState.CLOSED.value, (TRUE, R_PROJECT_CLOSED, closed_message))
    unfinished: list[str] = []
    publishing: list[str] = []
    dispose: list[str] = []
    deleting: list[str] = []
    kept = 0
    for run in sorted(runs, key=lambda r: str((r.get("metadata") or {}).get("name"))):
        meta = run.get("metadata") or {}
        status = run.get("status") or {}
        name = str(meta.get("name") or "")
        if meta.get("deletionTimestamp"):
            continue  # being deleted: its folder with it
        phase = status.get("phase") or "Pending"
        if phase in _UNFINISHED:
            unfinished.append(f"{name} ({phase})")
            continue
        if phase == "Publishing":
            publishing.append(name)
            continue
        if phase not in _TERMINAL:
            continue
        wip = find_condition(status.get("conditions"), "WorkInProgress")
        if wip is not None and wip.get("reason") in _WIP_DONE:
            continue
        if not status.get("outputPath"):
            continue  # it never made its folder (ended before its prepare Job): nothing to delete
        want = (run.get("spec") or {}).get("workInProgress")
        if want == "Keep":
            kept += 1
            continue
        if not want:
            dispose.append(name)
            deleting.append(f"{name} (set Delete now)")
        else:
            why = (wip or {}).get("reason") or "not looked at yet"
            deleting.append(f"{name} ({want}: {why})")
    if unfinished:
        return ClosurePlan(
            PHASE_CLOSING,
            (
                FALSE,
                R_WAITING_FOR_RUNS,
                f"closing: waiting for {len(unfinished)} PipelineRun(s) to finish: "
                f"{named(unfinished)} (cancel them to close sooner)",
            ),
            tuple(dispose),
        )
    if publishing:
        return ClosurePlan(
            PHASE_CLOSING,
            (
                FALSE,
                R_WAITING_FOR_PUBLISHING,
                f"closing: waiting for {len(publishing)} PipelineRun(s) publishing: {named(publishing)}",
            ),
            tuple(dispose),
        )
    if deleting:
        return ClosurePlan(
            PHASE_CLOSING,
            (
                FALSE,
                R_DELETING_WIP,
                f"closing: deleting the work in progress of {len(deleting)} finished PipelineRun(s): "
                f"{named(deleting)} (see each run's WorkInProgress condition)",
            ),
            tuple(dispose),
        )
    if kept:
        closed_message += f"; {kept} run(s) keep their work in progress (spec.workInProgress: Keep)"
    return ClosurePlan(ProjectState.CLOSED.value, (TRUE, R_PROJECT_CLOSED, closed_message), closed_now=True)


def closed_not_notified(plan: ClosurePlan, error: str) -> ClosurePlan:
    """A closure with nothing left whose `ProjectClosed` notification could not be queued:
    still `Closing`, saying why (the next pass tries again)."""
    return ClosurePlan(
        PHASE_CLOSING,
        (
            FALSE,
            R_NOTIFYING,
            f"closing: nothing left, but the ProjectClosed notification could not be queued: {error}",
        ),
    )


def with_closure_status(
    status: dict[str, Any],
    plan: ClosurePlan,
    ready: bool,
    closed_at: str | None,
    now: datetime,
    generation: int | None,
) -> dict[str, Any]:
    """The status patch with the closure's phase (once Ready), its `Closed` condition and
    `closedAt` (set when the project closes, kept while Closed, removed when opened again)."""
    out = dict(status)
    out["conditions"] = set_condition(
        status.get("conditions"), CONDITION_CLOSED, *plan.condition, now, generation
    )
    if ready:
        out["phase"] = plan.phase
    if plan.phase == ProjectState.CLOSED.value:
        out["closedAt"] = rfc3339(now) if plan.closed_now or not closed_at else closed_at
    else:
        out["closedAt"] = None
    return out


# -- records as inputs: the project's referenced records, and records shared with others ---------
RUN_RECORDS_INDEX = "run_records_by_namespace"  # kopf index (handler.py): namespace -> runs naming records
CONDITION_SHARED_RECORDS = "SharedRecords"
R_SHARED = "SharedWithOtherProjects"
R_NOT_SHARED = "NotShared"
R_CLOSED = "ProjectClosed"
EV_SHARED_RECORDS = "SharedRecords"


def run_records_entry(
    name: str,
    spec: Mapping[str, Any] | None,
    created: str | None,
    status: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """What the runs index keeps of a PipelineRun: the distinct records its inline items name
    (in item order), its name and creation time; None when it names none. For the conflicts
    found at publish time (kinds/pipelinerun/conflicts.py) also: its phase, its request (label
    `mmif.dev/request`), whether it may publish records (its pipeline snapshot requires review,
    or it has no snapshot yet) and, once a review passed it and it publishes or published, the
    decision's time (its records' `publishedAt`)."""
    ids: dict[str, None] = {}
    for item in (spec or {}).get("items") or ():
        record = item.get("record") if isinstance(item, Mapping) else None
        if isinstance(record, str):
            ids[record] = None
    if not ids:
        return None
    status = status or {}
    phase = status.get("phase")
    snapshot = status.get("pipelineSpec")
    review = status.get("review") if isinstance(status.get("review"), Mapping) else {}
    published = None
    if phase in ("Publishing", "Succeeded") and (review or {}).get("decision") == "Pass":
        published = (review or {}).get("decidedAt") or status.get("completionTime")
    publishes = not isinstance(snapshot, Mapping) or bool((snapshot.get("review") or {}).get("required"))
    return {
        "run": name,
        "created": created or "",
        "records": list(ids),
        "phase": phase,
        "request": (labels or {}).get(L.REQUEST),
        "publishes": publishes,
        "publishedAt": published,
    }


def referenced_records(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """status.referencedRecords from the runs index's entries of the project's namespace: how
    many distinct records, and the newest runs' records (each with its runs, newest first)."""
    newest_first = sorted(
        entries, key=lambda e: (str(e.get("created") or ""), str(e.get("run"))), reverse=True
    )
    runs_of: dict[str, list[str]] = {}
    for entry in newest_first:
        for record in entry.get("records") or ():
            runs_of.setdefault(str(record), []).append(str(entry.get("run")))
    latest = [
        {"id": record, "runs": runs[:MAX_REFERENCING_RUNS]}
        for record, runs in list(runs_of.items())[:MAX_REFERENCED_RECORDS]
    ]
    return {"count": len(runs_of), "latest": latest}


def _ids(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(r) for e in entries for r in e.get("records") or ()}


def shared_records(
    name: str,
    own_runs: Iterable[Mapping[str, Any]],
    projects: Mapping[str, Sequence[Mapping[str, Any]]],
    runs: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[tuple[str, list[str]]]:
    """The other Open projects whose runs name a record this project's runs name: [(project,
    sorted record ids)], by project name. `projects`: the projects index (namespace -> entries);
    `runs`: the runs index (namespace -> entries)."""
    own = _ids(own_runs)
    if not own:
        return []
    out = []
    for namespace, entries in projects.items():
        for entry in entries:
            other = str(entry.get("name"))
            if other == name:
                continue
            try:
                if ProjectSpec.from_obj(entry.get("spec")).state is not ProjectState.OPEN:
                    continue
            except ValueError:
                continue
            common = sorted(own & _ids(runs.get(namespace, ())))
            if common:
                out.append((other, common))
    return sorted(out)


def shared_condition(spec: ProjectSpec, shared: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, str, str]:
    """(status, reason, message) of the SharedRecords condition."""
    if spec.state is not ProjectState.OPEN:
        return FALSE, R_CLOSED, "the project is Closed: records shared with other projects are not looked for"
    if not shared:
        return FALSE, R_NOT_SHARED, "no other Open project's runs start from this project's records"
    parts = []
    for other, ids in shared:
        named = ", ".join(ids[:MAX_SHARED_RECORDS])
        more = f" and {len(ids) - MAX_SHARED_RECORDS} more" if len(ids) > MAX_SHARED_RECORDS else ""
        parts.append(f"project {other}: {len(ids)} record(s) ({named}{more})")
    return TRUE, R_SHARED, "runs of other Open projects start from the same records: " + "; ".join(parts)


def with_records_status(
    status: dict[str, Any],
    referenced: Mapping[str, Any],
    condition: tuple[str, str, str],
    now: datetime,
    generation: int | None,
) -> tuple[dict[str, Any], str | None]:
    """The status patch with referencedRecords and the SharedRecords condition; and the message
    of an Event to post (None: nothing new): when records become shared, or shared with others."""
    old = find_condition(status.get("conditions"), CONDITION_SHARED_RECORDS)
    out = dict(status)
    out["referencedRecords"] = dict(referenced)
    out["conditions"] = set_condition(
        status.get("conditions"), CONDITION_SHARED_RECORDS, *condition, now, generation
    )
    changed = old is None or old.get("status") != condition[0] or old.get("message") != condition[2]
    event = condition[2] if condition[0] == TRUE and changed else None
    return out, event


# -- the disposal window (spec.disposal) -------------------------------------------------------

DISPOSAL_NOTICE_ANNOTATION = "mmif.dev/disposal-notice"  # on a run: the due time it was told of
DISPOSED_BY_ANNOTATION = "mmif.dev/disposed-by"  # on a run: the project whose window set Delete
NOTICE = "Notice"
DISPOSE = "Dispose"
_TERMINAL = ("Succeeded", "Failed", "Cancelled")


@dataclass(frozen=True)
class DisposalStep:
    """One thing to do to one run: announce its disposal (`Notice`) or set it `Delete` (`Dispose`)."""

    run: str
    kind: str
    due: datetime


def disposal_due(finished: datetime, after: timedelta, timeline_end: datetime | None) -> datetime:
    """When a run's work in progress goes: `after` past its finish, or past the project's end
    when that is later (so extending the timeline moves it)."""
    start = max(finished, timeline_end) if timeline_end is not None else finished
    return start + after


def plan_disposal(
    spec: ProjectSpec, runs: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[list[DisposalStep], datetime | None]:
    """What the window asks for now, and when to look next (the earliest future due or notice
    time; None: nothing scheduled). Runs considered: finished, with a completion time, no
    `spec.workInProgress` of their own and no WorkInProgress outcome yet."""
    if spec.disposal is None:
        return [], None
    after = parse_duration(spec.disposal.after)
    notice = parse_duration(spec.disposal.notice) if spec.disposal.notice else None
    end = spec.timeline.end if spec.timeline is not None else None
    steps: list[DisposalStep] = []
    upcoming: list[datetime] = []
    for run in runs:
        meta = run.get("metadata") or {}
        status = run.get("status") or {}
        if "workInProgress" in (run.get("spec") or {}) or status.get("phase") not in _TERMINAL:
            continue
        if any(c.get("type") == "WorkInProgress" for c in status.get("conditions") or ()):
            continue
        finished = parse_time(status.get("completionTime"))
        if finished is None or meta.get("deletionTimestamp"):
            continue
        due = disposal_due(finished, after, end)
        if now >= due:
            steps.append(DisposalStep(meta.get("name") or "", DISPOSE, due))
            continue
        upcoming.append(due)
        if notice is None:
            continue
        told = (meta.get("annotations") or {}).get(DISPOSAL_NOTICE_ANNOTATION)
        if now >= due - notice:
            if told != rfc3339(due):
                steps.append(DisposalStep(meta.get("name") or "", NOTICE, due))
        else:
            upcoming.append(due - notice)
    return steps, min(upcoming, default=None)


# -- the project's notifications (spec.notifications; queued by kinds/project/notify.py) ---------


@dataclass(frozen=True)
class ProjectNote:
    """One occurrence of a project event to notify. `key` names the occurrence: its delivery
    ids derive from it, so queueing it again (a replayed pass) sends nothing twice."""

    event: NotificationEvent
    key: str
    reason: str
    message: str
    phase: str | None = None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def closed_note(plan: ClosurePlan, generation: int | None) -> ProjectNote:
    """`ProjectClosed`, once per closure (the generation that closed it)."""
    return ProjectNote(
        NotificationEvent.PROJECT_CLOSED,
        f"{NotificationEvent.PROJECT_CLOSED.value}/{generation or 0}",
        plan.condition[1],
        plan.condition[2],
        plan.phase,
    )


def disposal_note(
    project: str, window: str, steps: Sequence[DisposalStep], phase: str | None
) -> ProjectNote | None:
    """`DisposalNotice` for the runs a disposal tick announces (None: none), one delivery naming
    them and when each goes; the key is the runs and their due times."""
    notices = sorted((s.run, rfc3339(s.due)) for s in steps if s.kind == NOTICE)
    if not notices:
        return None
    runs = [f"{run} at {due}" for run, due in notices]
    message = (
        f"project {project}'s disposal window ({window}) deletes the work in progress of "
        f"{len(runs)} run(s): {named(runs)}; set spec.workInProgress: Keep on a run to keep it "
        f"(records are kept)"
    )
    key = f"{NotificationEvent.DISPOSAL_NOTICE.value}/{_digest(*(f'{r}@{d}' for r, d in notices))}"
    return ProjectNote(NotificationEvent.DISPOSAL_NOTICE, key, "DisposalNotice", message, phase)


def shared_note(message: str, phase: str | None) -> ProjectNote:
    """`SharedRecords` when the SharedRecords condition becomes True or names other projects or
    records (its message, the key)."""
    key = f"{NotificationEvent.SHARED_RECORDS.value}/{_digest(message)}"
    return ProjectNote(NotificationEvent.SHARED_RECORDS, key, R_SHARED, message, phase)
