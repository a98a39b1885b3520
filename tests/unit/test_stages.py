"""The table drives the run: `plan_run` plans every state of every template with the stage
function the state names, and reaches every row of every template from a run in its source state."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.core import itemstates
from mmif_operator.core import labels as L
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.observed import JobState, ObservedJob, refused
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun import planning as R
from mmif_operator.kinds.pipelinerun.model import PipelineRunStatus, RunPhase
from mmif_operator.kinds.pipelinerun.phases import RUN_WITH_REVIEW, TEMPLATES, Event, Template, transition
from tests.unit import typed as T

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
STEPS = [{"name": "asr", "image": "asr:1"}]


def pipeline_of(template: Template) -> dict:
    spec: dict = {"steps": copy.deepcopy(STEPS)}
    if template is RUN_WITH_REVIEW:
        spec["review"] = {"required": True, "timeoutSeconds": 600}
    return spec


def run_in(template: Template, stage: str | None, items=(ItemPhase.SUCCEEDED, ItemPhase.SUCCEEDED)) -> dict:
    """A run of `template` in state `stage` (None: just created)."""
    run = {
        "metadata": {
            "name": "run-1",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2025-01-01T12:00:00Z",
            "labels": {L.REQUEST: "req-1"},
        },
        "spec": {
            "pipelineRef": {"name": "pipe"},
            "workspace": {"claimName": "media"},
            "items": [{"documents": [{"location": f"v{i}.mp4", "mimeType": "video/mp4"}]} for i in range(2)],
        },
        "status": {},
    }
    if stage is None:
        return run
    st = run["status"]
    phase = template.state(stage).phase
    st.update(phase=str(phase), stage=str(stage))
    if stage == "Pending":
        return run
    st.update(pipelineSpec=pipeline_of(template), startTime="2025-01-01T12:00:00Z")
    if stage == "Preparing":
        return run
    st.update(itemCount=2, outputPath="/data/mmif-runs/run-1")
    if stage == "RunningItems":
        st["itemStates"] = itemstates.encode([ItemState(0, ItemPhase.RUNNING)] * 2)
        return run
    cancelled = stage in ("Cancelling", "TimingOut")
    final = [ItemState(0, ItemPhase.CANCELLED if cancelled else p) for p in items]
    st["itemStates"] = itemstates.encode(final)
    if stage in ("WritingManifest", "Cancelling", "TimingOut"):
        return run
    st["manifestPath"] = "/data/mmif-runs/run-1/manifest.json"
    st["review"] = {"requestedAt": "2025-01-01T12:00:00Z", "deadline": "2025-01-01T12:10:00Z"}
    if stage == "AwaitingReview":
        return run
    st["review"].update(decision="Pass", comment="fine")
    run["spec"]["review"] = {"decision": "Pass", "comment": "fine"}
    if stage == "Publishing":
        return run
    st["completionTime"] = "2025-01-01T12:05:00Z"  # a terminal state
    return run


def job(template: Template, run: dict, kind: str, state=JobState.ACTIVE) -> ObservedJob:
    ctx = T.ctx(run)
    body = {
        "prepare": lambda: J.prepare_job(ctx, T.runspec(run["spec"]), "img"),
        "manifest": lambda: J.manifest_job(ctx, T.pipe(pipeline_of(template)), "img", "Succeeded"),
        "publish": lambda: J.publish_job(ctx, "img", {"decision": "Pass"}, "/data/m.json"),
    }[kind]()
    observed = ObservedJob.from_job(body)
    assert observed is not None
    return dataclasses.replace(observed, owner_uid="uid-1", state=state)


def refused_job(template: Template, run: dict, kind: str, reason: str) -> ObservedJob:
    ctx = T.ctx(run)
    body = {
        "prepare": lambda: J.prepare_job(ctx, T.runspec(run["spec"]), "img"),
        "manifest": lambda: J.manifest_job(ctx, T.pipe(pipeline_of(template)), "img", "Succeeded"),
        "publish": lambda: J.publish_job(ctx, "img", {"decision": "Pass"}, "/data/m.json"),
    }[kind]()
    summary = refused(body, reason, "no")
    assert summary is not None
    return dataclasses.replace(summary, owner_uid="uid-1")


def plan(template, run, *, pipeline_spec="snapshot", jobs=(), now=T0, **kw):
    spec = pipeline_of(template) if pipeline_spec == "snapshot" else pipeline_spec
    return T.plan_run(run, spec, list(jobs), now, operator_image="img", template=template, **kw)


STATES = [(t, s.name) for t in TEMPLATES.values() for s in t.states]


@pytest.mark.parametrize(("template", "stage"), STATES, ids=[f"{t.name}:{s}" for t, s in STATES])
def test_every_state_is_planned_by_the_stage_function_it_names(template, stage, monkeypatch):
    called: list[str] = []
    for key, fn in list(R.STAGES.items()):
        monkeypatch.setitem(R.STAGES, key, lambda planner, fn=fn, key=key: (called.append(key), fn(planner)))
    run = run_in(template, stage)
    result = plan(template, run, pipeline_spec=None if stage != "Pending" else "snapshot")
    assert called[0] == template.state(stage).plans
    PipelineRunStatus.model_validate(result.status)
    assert result.phase in set(RunPhase)
    final = result.status["stage"]
    assert final in template.state_names
    assert result.status["phase"] == template.state(final).phase == result.phase
    for event in result.phase_events:  # every move it made is a row of the template
        assert event in {t.event for t in template.transitions}


def _scenario(template: Template, source: str | None, event: str) -> dict:
    """plan() arguments that make a run in `source` see `event`."""
    run = run_in(template, source)
    kw: dict = {}
    snapshot_gone = {"pipeline_spec": None}
    late = T0 + timedelta(seconds=901)
    if source is None:
        return {"run": run, **kw}
    if source == "Pending":
        kw["pipeline_spec"] = "snapshot"
        if event == Event.PIPELINE_NOT_FOUND:
            kw["pipeline_spec"] = None
        elif event == Event.WORKSPACE_NOT_FOUND:
            kw["workspace_found"] = False
        elif event == Event.PIPELINE_NOT_READY:
            kw["pipeline"] = {"metadata": {"generation": 1}, "status": {}}
        elif event == Event.PIPELINE_NOT_FOUND_TOO_LONG:
            kw.update(pipeline_spec=None, now=late)
        elif event == Event.WORKSPACE_NOT_FOUND_TOO_LONG:
            kw.update(workspace_found=False, now=late)
        elif event == Event.PIPELINE_NOT_READY_TOO_LONG:
            kw.update(pipeline={"metadata": {"generation": 1}, "status": {}}, now=late)
        elif event == Event.APP_POOL_NOT_MADE:
            kw["pool_problem"] = "the app pool of step 'asr': a Deployment of that name is not ours"
        elif event == Event.APP_POOL_NOT_MADE_TOO_LONG:
            kw.update(
                pool_problem="the app pool of step 'asr': a Deployment of that name is not ours", now=late
            )
        elif event == Event.INVALID_SPEC:
            run["spec"]["params"] = {"no-such-step": {"model": "large"}}
        elif event == Event.CANCELLED:
            run["spec"]["status"] = "Cancelled"
        return {"run": run, **kw}
    if event == Event.SNAPSHOT_LOST:
        run["status"].pop("pipelineSpec")
        return {"run": run, **kw, **snapshot_gone}
    kw["pipeline_spec"] = None
    if event == Event.CANCELLED:
        run["spec"]["status"] = "Cancelled"
        if source == "WritingManifest":
            run["status"]["itemStates"] = itemstates.encode([ItemState(0, ItemPhase.CANCELLED)] * 2)
    if source == "Preparing":
        if event == Event.PREPARED:
            kw["jobs"] = [job(template, run, "prepare", JobState.SUCCEEDED)]
            kw["termination_messages"] = {"run-1-prepare": {"itemCount": 2}}
        elif event in (Event.PREPARE_FAILED, Event.OUTPUT_CONFLICT):
            kw["jobs"] = [job(template, run, "prepare", JobState.FAILED)]
            kw["termination_messages"] = {"run-1-prepare": {"reason": str(event), "message": "m"}}
        elif event == Event.TIMED_OUT:
            run["spec"]["timeoutSeconds"] = 10
            kw["now"] = T0 + timedelta(seconds=11)
        elif event in (Event.NAME_CONFLICT, Event.CREATE_FAILED):
            kw["jobs"] = [refused_job(template, run, "prepare", str(event))]
        return {"run": run, **kw}
    if source == "RunningItems":
        if event == Event.ITEMS_DONE:
            run["status"]["itemStates"] = itemstates.encode([ItemState(0, ItemPhase.SUCCEEDED)] * 2)
        elif event == Event.CANCEL_REQUESTED:
            run["spec"]["status"] = "Cancelled"
        elif event == Event.DEADLINE_REACHED:
            run["spec"]["timeoutSeconds"] = 10
            kw["now"] = T0 + timedelta(seconds=11)
        return {"run": run, **kw}
    if source in ("WritingManifest", "Cancelling", "TimingOut"):
        if event == Event.ITEMS_FAILED:
            run["status"]["itemStates"] = itemstates.encode([ItemState(0, ItemPhase.FAILED)] * 2)
        elif event == Event.TIMED_OUT and source == "WritingManifest":
            run["status"]["itemStates"] = itemstates.encode([ItemState(0, ItemPhase.CANCELLED)] * 2)
        if event in (Event.NAME_CONFLICT, Event.CREATE_FAILED):
            kw["jobs"] = [refused_job(template, run, "manifest", str(event))]
        elif event == Event.MANIFEST_FAILED:
            kw["jobs"] = [job(template, run, "manifest", JobState.FAILED)]
        else:
            kw["jobs"] = [job(template, run, "manifest", JobState.SUCCEEDED)]
        return {"run": run, **kw}
    if source == "AwaitingReview":
        kw["siblings"] = []  # looked up: no other version of the request
        if event in (Event.REVIEW_PASSED, Event.REVIEW_FAILED):
            decision = "Pass" if event == Event.REVIEW_PASSED else "Fail"
            run["spec"]["review"] = {"decision": decision, "comment": "seen"}
        elif event == Event.REVIEW_TIMED_OUT:
            kw["now"] = T0 + timedelta(seconds=601)
        elif event == Event.SUPERSEDED:
            kw["siblings"] = [R.Sibling("run-2", "Publishing", True)]
        elif event == Event.CONFLICTS_FOUND:
            parent = "sha256:" + "a" * 64
            run["spec"]["items"] = [{"record": parent, "name": "first"}, {"record": parent}]
            run["spec"]["review"] = {"decision": "Pass", "comment": "seen"}
            other = {"run": "other", "records": [parent], "phase": "AwaitingReview", "publishes": True}
            kw["record_runs"] = {"other-project": [other]}
        return {"run": run, **kw}
    if source == "Publishing":
        if event == Event.PUBLISHED:
            kw["jobs"] = [job(template, run, "publish", JobState.SUCCEEDED)]
        elif event == Event.PUBLISH_FAILED:
            kw["jobs"] = [job(template, run, "publish", JobState.FAILED)]
        elif event in (Event.NAME_CONFLICT, Event.CREATE_FAILED):
            kw["jobs"] = [refused_job(template, run, "publish", str(event))]
        return {"run": run, **kw}
    raise AssertionError(f"no scenario for {source} <{event}>")


ROWS = [(t, row) for t in TEMPLATES.values() for row in t.transitions]


@pytest.mark.parametrize(("template", "row"), ROWS, ids=[f"{t.name}:{r.source}-{r.event}" for t, r in ROWS])
def test_every_row_is_reached_from_its_source_state(template, row):
    args = _scenario(template, row.source, row.event)
    run = args.pop("run")
    result = plan(template, run, **args)
    assert result.phase_events[0] == row.event, result.phase_events
    PipelineRunStatus.model_validate(result.status)
    history = [h["to"] for h in result.status.get("history") or []]
    target_phase = template.state(row.target).phase
    assert target_phase in history or run["status"].get("phase") == target_phase
    if result.status["stage"] == row.target:  # (not moved on in the same pass)
        cond = R.find_condition(result.status["conditions"], "Succeeded")
        assert cond is not None and cond["reason"] in (row.reason, "Running", "AwaitingReview")
    # The row's actions, and nothing else, asked for the notifications of its transition.
    first = transition(template, row.source, row.event)
    wanted = [a.event for a in first.actions if hasattr(a, "event")]
    assert [n.event for n in result.notifications][: len(wanted)] == wanted
    if row.terminal:
        assert result.status.get("completionTime")
        assert result.events, "a run that ends posts an Event"
