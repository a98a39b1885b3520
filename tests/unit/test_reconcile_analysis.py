"""plan_analysis: which items an AnalysisJob takes, when, and how it ends (pure, no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime

from mmif_operator.core import itemstates
from mmif_operator.core import labels as L
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from tests.unit.typed import plan_analysis

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
IMAGE = "mmif.local/mmif-operator:dev"
S, R, P, F, C = (
    ItemPhase.SUCCEEDED,
    ItemPhase.RUNNING,
    ItemPhase.PENDING,
    ItemPhase.FAILED,
    ItemPhase.CANCELLED,
)


def analysis(trigger="Live", parallelism=4, status=None, app=None):
    return {
        "metadata": {"name": "run-1-seg", "namespace": "a1", "uid": "aj-uid", "generation": 1},
        "spec": {
            "runRef": {"name": "run-1"},
            "trigger": trigger,
            "parallelism": parallelism,
            "app": app or {"image": "mmif.local/clams-timeframes:dev"},
        },
        "status": status or {},
    }


def run(phase, phases, step=1):
    states = [ItemState(step if p in (S, F) else 0, p) for p in phases]
    return {
        "metadata": {"name": "run-1", "namespace": "a1", "uid": "run-uid"},
        "spec": {"workspace": {"claimName": "media", "mountPath": "/data"}},
        "status": {
            "phase": phase,
            "itemCount": len(phases),
            "itemStates": itemstates.encode(states),
            "outputPath": "/data/mmif-runs/run-1",
        },
    }


def job(item, state=JobState.ACTIVE, kind=JobKind.ANALYZE, reason=None):
    name = f"run-1-seg-a{item:05d}" if kind is JobKind.ANALYZE else "run-1-seg-amanifest"
    return ObservedJob(
        name=name,
        kind=kind,
        state=state,
        item=item if kind is JobKind.ANALYZE else None,
        reason=reason,
        owner_uid="aj-uid",
        analysis="run-1-seg",
    )


def states_of(plan):
    return [s.phase for s in itemstates.decode(plan.status["itemStates"])]


def cond(plan):
    return next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")


def apply(aj, plan):
    return {**aj, "status": plan.status}


def test_a_missing_run_waits_with_reason_run_not_found():
    plan = plan_analysis(analysis(), None, [], NOW, operator_image=IMAGE)
    assert plan.phase == "Pending" and not plan.create
    assert cond(plan)["status"] == "Unknown" and cond(plan)["reason"] == "RunNotFound"
    assert "run-1" in cond(plan)["message"] and plan.requeue_after


def test_after_run_waits_for_the_run_to_end_even_with_succeeded_items():
    plan = plan_analysis(analysis("AfterRun"), run("Running", [S, R, P]), [], NOW, operator_image=IMAGE)
    assert plan.phase == "Pending" and not plan.create and cond(plan)["reason"] == "WaitingForRun"


def test_live_takes_each_succeeded_item_while_the_run_goes_on_up_to_parallelism():
    aj = analysis("Live", parallelism=2)
    plan = plan_analysis(aj, run("Running", [S, R, S, S, P]), [], NOW, operator_image=IMAGE)
    assert plan.phase == "Running" and plan.status["startTime"]
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-seg-a00000", "run-1-seg-a00002"]
    assert states_of(plan) == [R, P, R, P, P]
    assert plan.status["progress"] == "0/5" and plan.status["itemsRunning"] == 2
    assert [e.reason for e in plan.events] == ["Started"]


def test_finished_jobs_are_recorded_once_deleted_and_their_slots_reused():
    aj = analysis("Live", parallelism=2)
    first = plan_analysis(aj, run("Running", [S, R, S, S, P]), [], NOW, operator_image=IMAGE)
    aj = apply(aj, first)
    jobs = [job(0, JobState.SUCCEEDED), job(2, JobState.FAILED, reason="PodFailurePolicy")]
    tm = {"run-1-seg-a00002": '{"item": 2, "name": "clip-2", "reason": "AppError", "message": "boom"}'}
    plan = plan_analysis(
        aj, run("Running", [S, R, S, S, F]), jobs, NOW, operator_image=IMAGE, termination_messages=tm
    )
    assert states_of(plan) == [S, P, F, R, P]
    assert sorted(plan.delete) == ["run-1-seg-a00000", "run-1-seg-a00002"]
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-seg-a00003"]
    [failure] = plan.status["failures"]
    assert failure["item"] == "clip-2" and failure["index"] == 2 and failure["reason"] == "AppError"
    assert plan.status["progress"] == "2/4"  # item 4 failed in the run: not to be processed
    # The same Jobs seen again (the index lags the deletes): nothing counted twice.
    again = plan_analysis(
        apply(aj, plan),
        run("Running", [S, R, S, S, F]),
        jobs,
        NOW,
        operator_image=IMAGE,
        termination_messages=tm,
    )
    assert states_of(again) == [S, P, F, R, P] and len(again.status["failures"]) == 1
    assert [j["metadata"]["name"] for j in again.create] == ["run-1-seg-a00003"]  # not seen yet: 409


def test_an_item_in_flight_whose_job_is_missing_gets_it_again():
    aj = analysis("Live", parallelism=1)
    aj = apply(aj, plan_analysis(aj, run("Running", [S, P]), [], NOW, operator_image=IMAGE))
    plan = plan_analysis(aj, run("Running", [S, P]), [], NOW, operator_image=IMAGE)
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-seg-a00000"]
    assert states_of(plan) == [R, P]


def test_after_run_processes_exactly_the_succeeded_items_then_writes_the_manifest_and_succeeds():
    aj = analysis("AfterRun", parallelism=10)
    source = run("Failed", [S, F, S, C])
    plan = plan_analysis(aj, source, [], NOW, operator_image=IMAGE)
    assert [j["metadata"]["labels"][L.ITEM_INDEX] for j in plan.create] == ["0", "2"]
    assert plan.status["progress"] == "0/2"
    assert "outputPath" not in plan.status, "no Job has claimed the folder yet"
    aj = apply(aj, plan)
    plan = plan_analysis(
        aj, source, [job(0, JobState.SUCCEEDED), job(2, JobState.SUCCEEDED)], NOW, operator_image=IMAGE
    )
    assert plan.phase == "Running" and cond(plan)["reason"] == "Finalizing"
    assert plan.status["outputPath"] == "/data/mmif-runs/run-1/analyses/run-1-seg"
    assert "manifestPath" not in plan.status
    [manifest] = plan.create
    assert manifest["metadata"]["name"] == "run-1-seg-amanifest"
    [states] = plan.create_config_maps  # the item states, never in the environment
    assert states["metadata"]["name"] == "run-1-seg-astates-ajuid"
    assert states["metadata"]["ownerReferences"][0]["kind"] == "AnalysisJob"
    assert manifest["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "mmif-runner",
        "analysis-manifest",
    ]
    aj = apply(aj, plan)
    plan = plan_analysis(
        aj, source, [job(None, JobState.SUCCEEDED, JobKind.ANALYSIS_MANIFEST)], NOW, operator_image=IMAGE
    )
    assert plan.phase == "Succeeded" and cond(plan)["status"] == "True" and plan.status["completionTime"]
    assert plan.status["progress"] == "2/2" and plan.delete == ["run-1-seg-amanifest"]
    assert plan.delete_config_maps == ["run-1-seg-astates-ajuid"]
    assert plan.status["manifestPath"] == "/data/mmif-runs/run-1/analyses/run-1-seg/manifest.json"


def test_a_failed_item_fails_the_analysis_with_items_failed():
    aj = analysis("AfterRun")
    source = run("Succeeded", [S])
    aj = apply(aj, plan_analysis(aj, source, [], NOW, operator_image=IMAGE))
    aj = apply(
        aj,
        plan_analysis(
            aj, source, [job(0, JobState.FAILED, reason="BackoffLimitExceeded")], NOW, operator_image=IMAGE
        ),
    )
    plan = plan_analysis(
        aj, source, [job(None, JobState.SUCCEEDED, JobKind.ANALYSIS_MANIFEST)], NOW, operator_image=IMAGE
    )
    assert plan.phase == "Failed" and cond(plan)["reason"] == "ItemsFailed"
    assert aj["status"]["failures"][0]["reason"] == "BackoffLimitExceeded"


def test_live_does_not_end_before_the_run_ends():
    aj = analysis("Live")
    aj = apply(aj, plan_analysis(aj, run("Running", [S, R]), [], NOW, operator_image=IMAGE))
    plan = plan_analysis(aj, run("Running", [S, R]), [job(0, JobState.SUCCEEDED)], NOW, operator_image=IMAGE)
    assert plan.phase == "Running" and not plan.create and "is Running" in cond(plan)["message"]


def test_a_run_that_ended_before_preparing_leaves_nothing_to_process():
    source = run("Failed", [])
    del source["status"]["itemCount"]
    plan = plan_analysis(analysis(), source, [], NOW, operator_image=IMAGE)
    assert plan.phase == "Succeeded" and cond(plan)["reason"] == "NothingToProcess" and not plan.create


def test_an_ended_analysis_only_sweeps_finished_jobs():
    aj = analysis(status={"phase": "Succeeded"})
    plan = plan_analysis(
        aj, run("Succeeded", [S]), [job(0, JobState.SUCCEEDED), job(1)], NOW, operator_image=IMAGE
    )
    assert plan.delete == ["run-1-seg-a00000"] and not plan.create and not plan.status_patch


def test_the_analyze_pod_sees_the_run_folder_read_only_and_only_its_own_folder_writable():
    plan = plan_analysis(analysis(), run("Running", [S]), [], NOW, operator_image=IMAGE)
    [body] = plan.create
    pod = body["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert body["metadata"]["ownerReferences"][0]["kind"] == "AnalysisJob"
    labels = body["metadata"]["labels"]
    assert labels[L.ANALYSIS] == "run-1-seg" and labels[L.SOURCE_RUN] == "run-1" and L.RUN not in labels
    runner = pod["containers"][0]
    ws = [m for m in runner["volumeMounts"] if m["name"] == "workspace"]
    assert ws == [
        {
            "name": "workspace",
            "mountPath": "/data/mmif-runs/run-1",
            "subPath": "mmif-runs/run-1",
            "readOnly": True,
        },
        {
            "name": "workspace",
            "mountPath": "/data/mmif-runs/run-1/analyses/run-1-seg",
            "subPath": "mmif-runs/run-1/analyses/run-1-seg",
        },
    ]
    [app] = pod["initContainers"]
    assert app["volumeMounts"] == [ws[0]]
    assert app["securityContext"]["allowPrivilegeEscalation"] is False
    assert runner["securityContext"]["capabilities"] == {"drop": ["ALL"]}
