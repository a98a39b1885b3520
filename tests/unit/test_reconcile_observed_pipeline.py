"""core/observed.py, status.py and pipeline.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.observed import JobKind, JobState, ObservedJob, needs_termination_message
from mmif_operator.core.status import capped, find_condition, set_condition
from mmif_operator.kinds.pipeline import planning as P
from mmif_operator.kinds.pipeline.model import PipelineStatus
from mmif_operator.kinds.pipelinerun import children as jobs
from tests.unit import typed as T

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CTX = jobs.RunContext(name="run-1", namespace="ns", uid="uid-1", pipeline="pipe", claim_name="media")
SPEC = {"steps": [{"name": "asr", "image": "asr:1"}]}


def with_conditions(job, *conds):
    return {
        **job,
        "status": {
            "conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conds]
        },
    }


def test_observed_from_built_jobs():
    step = ObservedJob.from_job(jobs.step_job(CTX, {}, T.pipe(SPEC), 12, 0, "img"))
    assert (step.kind, step.item, step.step, step.state) == (JobKind.STEP, 12, 0, JobState.ACTIVE)
    assert step.run == "run-1" and step.namespace == "ns" and step.owner_uid == "uid-1"
    prep = ObservedJob.from_job(jobs.prepare_job(CTX, T.runspec(), "img"))
    assert prep.kind is JobKind.PREPARE and prep.item is None
    man = ObservedJob.from_job(jobs.manifest_job(CTX, T.pipe(SPEC), "img", "Succeeded"))
    assert man.kind is JobKind.MANIFEST
    assert ObservedJob.from_job({"metadata": {"name": "x", "labels": {}}}) is None
    hash(step)


def test_observed_states_from_conditions():
    body = jobs.step_job(CTX, {}, T.pipe(SPEC), 0, 0, "img")
    ok = ObservedJob.from_job(
        with_conditions(
            body,
            ("SuccessCriteriaMet", "True", "CompletionsReached", ""),
            ("Complete", "True", "CompletionsReached", ""),
        )
    )
    assert ok.state is JobState.SUCCEEDED and ok.reason is None
    target = ObservedJob.from_job(
        with_conditions(body, ("FailureTarget", "True", "PodFailurePolicy", "x" * 1000))
    )
    assert (
        target.state is JobState.FAILED and target.reason == "PodFailurePolicy" and len(target.message) <= 256
    )
    failed = ObservedJob.from_job(with_conditions(body, ("Failed", "True", "DeadlineExceeded", "late")))
    assert failed.state is JobState.FAILED and failed.message == "late"
    not_yet = ObservedJob.from_job(with_conditions(body, ("Failed", "False", "", "")))
    assert not_yet.state is JobState.ACTIVE
    assert needs_termination_message(failed) and not needs_termination_message(ok)
    prep_done = ObservedJob.from_job(
        with_conditions(jobs.prepare_job(CTX, T.runspec(), "img"), ("Complete", "True", "", ""))
    )
    assert needs_termination_message(prep_done)


def test_set_condition_keeps_transition_time():
    c1 = set_condition([], "Ready", "False", "AppNotAvailable", "a", T0, 1)
    c2 = set_condition(c1, "Ready", "False", "ImagePullFailed", "b", T0 + timedelta(minutes=1), 2)
    assert find_condition(c2, "Ready")["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert find_condition(c2, "Ready")["reason"] == "ImagePullFailed"
    assert find_condition(c2, "Ready")["observedGeneration"] == 2
    c3 = set_condition(c2, "Ready", "True", "Ready", "", T0 + timedelta(minutes=2))
    assert find_condition(c3, "Ready")["lastTransitionTime"] == "2025-01-01T00:02:00Z"
    assert len(c3) == 1
    other = set_condition(c3, "Other", "True", "X", "", T0)
    assert [c["type"] for c in other] == ["Ready", "Other"]


def test_capped():
    assert capped(range(30), 20) == list(range(10, 30))
    assert capped([1, 2], 20) == [1, 2]


PIPELINE = {
    "metadata": {"name": "pipe", "namespace": "ns", "uid": "p", "generation": 3},
    "spec": {
        "steps": [
            {"name": "asr", "image": "asr:1"},
            {"name": "ner", "image": "ner:1", "mode": "Service", "replicas": 2, "port": 8080},
            {"name": "ext", "mode": "Service", "url": "http://ext:5000"},
        ],
        "workspace": {"claimName": "media"},
    },
}


NER = names.app_service_name("pipe", "ner")  # pipe-ner--<hash>


def deployment(name, available, ready=None):
    return {
        "metadata": {"name": name},
        "status": {"availableReplicas": available, "readyReplicas": available if ready is None else ready},
    }


def ready_cond(status):
    return find_condition(status["conditions"], "Ready")


def test_desired_and_stale_app_objects():
    objs = P.desired_app_objects(P.parse_pipeline(PIPELINE))
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("Deployment", NER),
        ("Service", NER),
        ("NetworkPolicy", NER),
    ]
    # The names before this scheme (`<pipeline>-<step>`) are stale: cleaned up on upgrade.
    assert P.stale_app_objects(P.parse_pipeline(PIPELINE), [NER, "pipe-ner", "pipe-old"]) == [
        "pipe-ner",
        "pipe-old",
    ]


def test_pipeline_status_ready():
    st = P.compute_pipeline_status(P.parse_pipeline(PIPELINE), [deployment(NER, 2)], T0)
    assert ready_cond(st)["status"] == "True" and ready_cond(st)["reason"] == "Ready"
    assert st["observedGeneration"] == 3
    asr, ner, ext = st["steps"]
    assert asr == {"name": "asr", "mode": "Job", "ready": True}
    assert ner == {
        "name": "ner",
        "mode": "Service",
        "url": f"http://{NER}.ns.svc:8080",
        "replicas": 2,
        "readyReplicas": 2,
        "ready": True,
    }
    assert ext["url"] == "http://ext:5000" and ext["ready"] is True
    PipelineStatus.model_validate(st)


def test_pipeline_status_not_available():
    st = P.compute_pipeline_status(P.parse_pipeline(PIPELINE), [], T0)
    c = ready_cond(st)
    assert c["status"] == "False" and c["reason"] == "AppNotAvailable" and "ner" in c["message"]
    st = P.compute_pipeline_status(P.parse_pipeline(PIPELINE), [deployment(NER, 0)], T0)
    assert ready_cond(st)["reason"] == "AppNotAvailable" and st["steps"][1]["ready"] is False


def test_pipeline_status_pod_problems():
    pods = [
        {
            "metadata": {"labels": {L.STEP: "ner"}},
            "status": {
                "containerStatuses": [
                    {"state": {"waiting": {"reason": "ContainerCreating"}}},
                    {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}},
                ]
            },
        }
    ]
    waiting = P.waiting_reasons_from_pods(pods)
    assert waiting == {"ner": {"reason": "ImagePullBackOff", "message": "no such image"}}
    st = P.compute_pipeline_status(P.parse_pipeline(PIPELINE), [deployment(NER, 0)], T0, waiting)
    c = ready_cond(st)
    assert c["reason"] == "ImagePullFailed" and "ner" in c["message"] and "no such image" in c["message"]
    st = P.compute_pipeline_status(
        P.parse_pipeline(PIPELINE), [deployment(NER, 0)], T0, {"ner": "CrashLoopBackOff"}
    )
    assert ready_cond(st)["reason"] == "CrashLoop"


def test_pipeline_without_service_steps():
    body = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"steps": [{"name": "a", "image": "a"}]}}
    st = P.compute_pipeline_status(P.parse_pipeline(body), [], T0)
    assert ready_cond(st)["status"] == "True" and ready_cond(st)["reason"] == "NoServiceSteps"
    assert P.desired_app_objects(P.parse_pipeline(body)) == []
