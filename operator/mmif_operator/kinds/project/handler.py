"""Project: its namespace and role bindings, kept as the spec says; and, at admission, the
project's defaults for (or its refusal of) the runs and analyses created in its namespace.

A pass (`reconcile_project`, on create, update, resume and every `RESYNC_SECONDS`): the
namespace of the Project's name, created with our uid annotation, or found ours (its labels set
again if someone changed them), or found someone else's (`Ready=False NameConflict`, never
touched); the two RoleBindings (server-side applied when their subjects drifted; a foreign
binding of that name is a conflict too); the closure step once `spec.state` is Closed (phase
`Closing`: the runs are listed, the finished ones' work in progress set to be deleted, each wait
named in the `Closed` condition, looked at again every `CLOSING_CHECK_SECONDS`; then `Closed`
with an Event); then the status, through kopf's patch. Decisions: kinds/project/planning.py;
admission: kinds/project/defaults.py (runs and analyses) and `project_closure` (closing is
refused while runs are Pending, Running or await review).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import NameConflict
from mmif_operator.core.model import GROUP, VERSION
from mmif_operator.core.ownership import Ownership, classify, conflict_message
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.status import TRUE, find_condition, rfc3339
from mmif_operator.kinds.analysisjob.model import PLURAL as ANALYSIS_PLURAL
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.kinds.project import defaults, notify
from mmif_operator.kinds.project import planning as P
from mmif_operator.kinds.project.model import PLURAL, ProjectSpec, ProjectState

log = logging.getLogger(__name__)
RESYNC_SECONDS = 60.0
CLOSING_CHECK_SECONDS = 5.0  # how often a Closing project looks at its runs again


async def reconcile_project(
    name: str,
    uid: str,
    spec: Any,
    status: Any,
    meta: Any,
    patch: Any,
    indexes: Mapping[str, Any] | None = None,
    body: Any = None,
) -> None:
    generation = meta.get("generation")
    now = datetime.now(UTC)
    try:
        parsed = ProjectSpec.from_obj(spec)
    except ValidationError as e:
        outcome = P.Outcome(False, P.R_INVALID_SPEC, f"spec does not parse: {e}")
        patch["status"] = P.project_status(
            name, ProjectSpec.from_obj({}), generation, status.get("conditions"), outcome, now
        )
        return
    outcome = await _converge(name, uid, parsed)
    out = P.project_status(name, parsed, generation, status.get("conditions"), outcome, now)
    if indexes is not None:
        out = await _records_status(name, parsed, out, indexes, now, generation, body)
    if outcome.ready:  # never look at the runs of a namespace that is not the project's
        out = await _closure_status(name, parsed, dict(status or {}), out, now, generation, body)
    patch["status"] = out


async def _closure_status(
    name: str,
    spec: ProjectSpec,
    status: dict[str, Any],
    out: dict[str, Any],
    now: datetime,
    generation: int | None,
    body: Any,
) -> dict[str, Any]:
    """The closure step (kinds/project/planning.py `plan_closure`): the namespace's runs are
    listed only while Closing; the finished runs whose work in progress is left are set
    `Delete` (the disposal window's patch); on reaching Closed, an Event."""
    previous = status.get("phase")
    runs = None
    if spec.state is ProjectState.CLOSED and previous != ProjectState.CLOSED.value:
        runs = await runtime.kube().list_custom(RUN_PLURAL, P.namespace_of(name), {})
    plan = P.plan_closure(name, spec, previous, runs)
    if plan.closed_now:
        # Queued before the phase says Closed: a crash in between closes (and queues) again,
        # which adds nothing (the occurrence's delivery ids are fixed).
        try:
            await notify.queue(runtime.kube(), name, P.closed_note(plan, generation), now=now)
        except Exception as e:  # noqa: BLE001 - Closing until it can be queued
            log.warning("project %s: queueing ProjectClosed: %s", name, e)
            plan = P.closed_not_notified(plan, str(e))
    by_name = {(r.get("metadata") or {}).get("name"): r for r in runs or ()}
    for run in plan.dispose:
        try:
            await runtime.kube().patch_custom(RUN_PLURAL, P.namespace_of(name), run, P.disposal_patch(name))
        except Exception as e:  # noqa: BLE001 - planned again at the next pass (the condition names it)
            log.warning("project %s: closing: run %s: %s", name, run, e)
            continue
        message = (
            f"project {name} is closing: the work in progress of run {run} is deleted (records are kept)"
        )
        k8s_events.post(by_name[run], "Normal", "Disposed", message)
    out = P.with_closure_status(out, plan, True, status.get("closedAt"), now, generation)
    if plan.closed_now and body is not None:
        k8s_events.post(dict(body), "Normal", P.EV_PROJECT_CLOSED, plan.condition[2])
        log.info("project %s: %s", name, plan.condition[2])
    return out


async def _records_status(
    name: str,
    spec: ProjectSpec,
    out: dict[str, Any],
    indexes: Mapping[str, Any],
    now: datetime,
    generation: int | None,
    body: Any,
) -> dict[str, Any]:
    """status.referencedRecords and SharedRecords (decided in planning.py); an Event when records
    become shared with another Open project (that project's own pass says so on it), and the
    `SharedRecords` notification."""
    projects, run_records = indexes[P.PROJECTS_INDEX], indexes[P.RUN_RECORDS_INDEX]
    runs = {ns: list(run_records[ns]) for ns in run_records}
    own = runs.get(P.namespace_of(name), [])
    shared = P.shared_records(name, own, {ns: list(projects[ns]) for ns in projects}, runs)
    condition = P.shared_condition(spec, shared)
    out, event = P.with_records_status(out, P.referenced_records(own), condition, now, generation)
    if event is not None and body is not None:
        k8s_events.post(body, "Normal", P.EV_SHARED_RECORDS, event)
    if event is not None:
        try:
            await notify.queue(runtime.kube(), name, P.shared_note(event, out.get("phase")), now=now)
        except Exception as e:  # noqa: BLE001 - the condition and the Event say it meanwhile
            log.warning("project %s: queueing SharedRecords: %s", name, e)
    return out


async def _converge(name: str, uid: str, spec: ProjectSpec) -> P.Outcome:
    kube = runtime.kube()
    wanted = P.desired_namespace(name, uid, spec)
    namespace = await kube.get_namespace(P.namespace_of(name))
    if namespace is None:
        if await kube.create_namespace(wanted):
            namespace = wanted
        else:
            namespace = await kube.get_namespace(P.namespace_of(name)) or {}
    if not P.namespace_is_ours(namespace, uid):
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return P.Outcome(
                False, P.R_CREATING, f"namespace {name} is being deleted; waiting to make it again"
            )
        message = (
            f"namespace {name} already exists and is not this project's (no annotation "
            f"{P.UID_ANNOTATION}={uid}); it is left untouched"
        )
        return P.Outcome(False, P.R_NAME_CONFLICT, message)
    label_patch = P.namespace_label_patch(namespace, wanted)
    if label_patch is not None:
        await kube.patch_namespace(name, label_patch)
    for binding in P.desired_role_bindings(name, uid, spec):
        binding_name = binding["metadata"]["name"]
        existing = await kube.get("RoleBinding", name, binding_name)
        try:
            if existing is None:
                await kube.create(binding)
                continue
        except NameConflict as e:
            return P.Outcome(False, P.R_NAME_CONFLICT, str(e))
        if classify(existing, binding) is not Ownership.OURS:
            return P.Outcome(
                False, P.R_NAME_CONFLICT, conflict_message("RoleBinding", binding_name, existing)
            )
        if P.binding_drifted(existing, binding):
            await kube.apply(binding)
    return P.Outcome(True, P.R_READY, P.ready_message(spec, name))


@kopf.on.resume(GROUP, VERSION, PLURAL, id="project-changed")
@kopf.on.create(GROUP, VERSION, PLURAL, id="project-changed")
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="project-changed")
async def project_changed(
    name: str, uid: str, spec: Any, status: Any, meta: Any, patch: Any, body: Any, **kwargs: Any
) -> None:
    await reconcile_project(name, uid, spec, status, meta, patch, _indexes(kwargs), body)


@kopf.timer(
    GROUP, VERSION, PLURAL, id="project-resync", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS
)
async def project_resync(
    name: str, uid: str, spec: Any, status: Any, meta: Any, patch: Any, body: Any, **kwargs: Any
) -> None:
    """Puts back what someone changed by hand (a deleted binding, a namespace label); refreshes
    the records the project's runs name."""
    await reconcile_project(name, uid, spec, status, meta, patch, _indexes(kwargs), body)


def _is_closing(spec: Any, status: Any, **_: Any) -> bool:
    """Closed in the spec, not yet in the status, and the namespace the project's (Ready)."""
    ready = find_condition((status or {}).get("conditions"), P.CONDITION_READY)
    return (
        (spec or {}).get("state") == ProjectState.CLOSED.value
        and (status or {}).get("phase") != ProjectState.CLOSED.value
        and ready is not None
        and ready.get("status") == TRUE
    )


@kopf.timer(GROUP, VERSION, PLURAL, id="project-closing", interval=CLOSING_CHECK_SECONDS, when=_is_closing)
async def project_closing(
    name: str, uid: str, spec: Any, status: Any, meta: Any, patch: Any, body: Any, **kwargs: Any
) -> None:
    """A closing project's pass, more often than the resync: each wait of its `Closed` condition
    (runs publishing, work in progress being deleted) is looked at again every few seconds."""
    await reconcile_project(name, uid, spec, status, meta, patch, _indexes(kwargs), body)


def _indexes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {P.PROJECTS_INDEX: kwargs[P.PROJECTS_INDEX], P.RUN_RECORDS_INDEX: kwargs[P.RUN_RECORDS_INDEX]}


# -- the disposal window ------------------------------------------------------------------------

DISPOSAL_CHECK_SECONDS = 5.0  # how often a project with a window may look at its runs
_next_look: dict[tuple[str, int], datetime] = {}  # (project, generation) -> when to list again


def _has_disposal(spec: Any, status: Any, **_: Any) -> bool:
    ready = find_condition((status or {}).get("conditions"), P.CONDITION_READY)
    return bool((spec or {}).get("disposal")) and ready is not None and ready.get("status") == TRUE


@kopf.timer(
    GROUP, VERSION, PLURAL, id="project-disposal", interval=DISPOSAL_CHECK_SECONDS, when=_has_disposal
)
async def project_disposal(name: str, spec: Any, meta: Any, body: Any, **_: Any) -> None:
    """The non-record disposal window: announce, then set `workInProgress: Delete` on, the
    finished runs past it (kinds/project/planning.py `plan_disposal`; the run's own timer then
    deletes the folder, kinds/pipelinerun/wip_handler.py). The runs are listed again only when
    something is due or the spec changed (in memory: a restart lists once)."""
    now = datetime.now(UTC)
    key = (name, int(meta.get("generation") or 0))
    if key in _next_look and now < _next_look[key]:
        return
    try:
        parsed = ProjectSpec.from_obj(spec)
    except ValidationError:
        return  # the project's own status says so
    kube = runtime.kube()
    namespace = P.namespace_of(name)
    runs = await kube.list_custom(RUN_PLURAL, namespace, {})
    steps, upcoming = P.plan_disposal(parsed, runs, now)
    by_name = {(r.get("metadata") or {}).get("name"): r for r in runs}
    for old in [k for k in _next_look if k[0] == name]:
        del _next_look[old]
    _next_look[key] = upcoming or datetime.max.replace(tzinfo=UTC)
    window = parsed.disposal.after if parsed.disposal else ""
    note = P.disposal_note(name, window, steps, (body.get("status") or {}).get("phase"))
    if note is not None:
        # Queued before the runs' notice annotations: a crash in between tells them again,
        # which adds nothing (the same runs and due times: the same delivery ids).
        try:
            await notify.queue(kube, name, note, now=now)
        except Exception as e:  # noqa: BLE001 - looked at again at the next tick
            log.warning("project %s: queueing DisposalNotice: %s", name, e)
            _next_look.pop(key, None)
            steps = [s for s in steps if s.kind != P.NOTICE]
    for step in steps:
        due = rfc3339(step.due)
        run_ref = by_name[step.run]
        if step.kind == P.NOTICE:
            message = (
                f"the work in progress of run {step.run} is deleted at {due} (project {name}'s disposal "
                f"window {window}); set spec.workInProgress: Keep on the run to keep it"
            )
            patch: dict[str, Any] = {"metadata": {"annotations": {P.DISPOSAL_NOTICE_ANNOTATION: due}}}
        else:
            message = f"run {step.run} finished past project {name}'s disposal window ({window}, due {due}): its work in progress is deleted"
            patch = P.disposal_patch(name)
        try:
            await kube.patch_custom(RUN_PLURAL, namespace, step.run, patch)
        except Exception as e:  # noqa: BLE001 - looked at again at the next tick
            log.warning("project %s: disposal of run %s: %s", name, step.run, e)
            _next_look.pop(key, None)
            continue
        reason = "DisposalNotice" if step.kind == P.NOTICE else "Disposed"
        k8s_events.post(run_ref, "Warning" if step.kind == P.NOTICE else "Normal", reason, message)
        k8s_events.post(dict(body), "Warning" if step.kind == P.NOTICE else "Normal", reason, message)
        log.info("project %s: %s", name, message)


# kopf hands an index to every handler as a keyword argument named after its function, which
# must therefore be P.PROJECTS_INDEX (tests/unit/test_handler_registration.py checks it).
@kopf.index(GROUP, VERSION, PLURAL)
async def projects_by_namespace(name: str, spec: Any, status: Any, **_: Any) -> dict[str, Any]:
    """namespace -> the Project's spec, for admission (only Projects whose namespace is theirs:
    Ready)."""
    ready = find_condition(status.get("conditions"), P.CONDITION_READY)
    if not ready or ready.get("status") != TRUE:
        return {}
    return {P.namespace_of(name): {"name": name, "spec": dict(spec)}}


@kopf.index(GROUP, VERSION, RUN_PLURAL)
async def run_records_by_namespace(
    name: str, namespace: str | None, spec: Any, meta: Any, status: Any, **_: Any
) -> dict[str, Any]:
    """namespace -> the records a PipelineRun's inline items name (none: not indexed), for the
    project's status.referencedRecords and SharedRecords, and for the conflicts a run finds
    when it publishes (kinds/pipelinerun/conflicts.py)."""
    entry = P.run_records_entry(
        name, spec, meta.get("creationTimestamp"), dict(status or {}), dict(meta.get("labels") or {})
    )
    return {namespace: entry} if entry is not None and namespace else {}


def _admit(kind: str, namespace: str | None, spec: Any, patch: Any, index: kopf.Index[str, Any]) -> None:
    entries = list(index.get(namespace or "", ()))
    if not entries:
        return  # not a project's namespace (or its Project is not Ready yet)
    project = entries[0]
    try:
        project_spec = ProjectSpec.from_obj(project["spec"])
    except ValidationError:
        return
    refusal = defaults.refusal(kind, project["name"], namespace or "", project_spec)
    refusal = refusal or defaults.record_store_refusal(kind, spec, project["name"], project_spec)
    if refusal:
        raise kopf.AdmissionError(refusal, code=403)
    for field, value in defaults.defaulted_fields(dict(spec or {}), project_spec).items():
        patch.spec[field] = value


@kopf.index(GROUP, VERSION, RUN_PLURAL)
async def runs_holding_closure(name: str, namespace: str | None, status: Any, **_: Any) -> dict[str, str]:
    """namespace -> `<run> (<phase>)` of its PipelineRuns Pending, Running or AwaitingReview
    (for the closure webhook)."""
    entry = P.unfinished_entry(name, status)
    return {namespace or "": entry} if entry is not None else {}


@kopf.on.validate(GROUP, VERSION, PLURAL, id="project-closure", operations=["UPDATE"])
def project_closure(*, name: str, spec: Any, **kwargs: Any) -> None:
    """Closing a Project is refused while runs of its namespace are Pending, Running or await
    review, naming them."""
    old_state = ((kwargs.get("old") or {}).get("spec") or {}).get("state")
    runs = kwargs[P.CLOSURE_INDEX].get(P.namespace_of(name), ())
    refusal = P.closure_refusal(name, old_state, (spec or {}).get("state"), runs)
    if refusal:
        raise kopf.AdmissionError(refusal, code=409)


@kopf.on.mutate(GROUP, VERSION, RUN_PLURAL, id="project-pipelineruns", operations=["CREATE"])
def project_pipelineruns(*, namespace: str | None = None, spec: Any, patch: Any, **kwargs: Any) -> None:
    """A new PipelineRun in a project's namespace: refused when the project is Closed; else
    given the project's default legal tags and ACL where it names none."""
    _admit("PipelineRun", namespace, spec, patch, kwargs[P.PROJECTS_INDEX])


@kopf.on.mutate(GROUP, VERSION, ANALYSIS_PLURAL, id="project-analysisjobs", operations=["CREATE"])
def project_analysisjobs(*, namespace: str | None = None, spec: Any, patch: Any, **kwargs: Any) -> None:
    """A new AnalysisJob in a project's namespace: as for PipelineRuns."""
    _admit("AnalysisJob", namespace, spec, patch, kwargs[P.PROJECTS_INDEX])
