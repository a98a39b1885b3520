"""The Pipeline's kstatus conditions (kinds/pipeline/planning.py): `Reconciling` while the operator
works toward the spec, `Stalled` once it cannot progress (past `spec.progressDeadlineSeconds`, or
a name conflict at once), never both True, each with `observedGeneration`; `Ready` as before."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from mmif_operator.core import names
from mmif_operator.core.status import find_condition
from mmif_operator.kinds.pipeline import planning as P
from mmif_operator.kinds.pipeline.model import PipelineSpec, PipelineStatus

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NER = names.app_service_name("pipe", "ner")
PULL = {"ner": {"reason": "ImagePullBackOff", "message": "no such image"}}


def pipeline(generation=1, deadline=60, status=None):
    body = {
        "metadata": {"name": "pipe", "namespace": "ns", "uid": "p", "generation": generation},
        "spec": {
            "steps": [{"name": "ner", "image": "ner:1", "mode": "Service", "replicas": 2}],
            "workspace": {"claimName": "media"},
            "progressDeadlineSeconds": deadline,
        },
    }
    if status is not None:
        body["status"] = status
    return body


def deployment(available, updated=None, generation=1, observed=1):
    status = {"availableReplicas": available, "readyReplicas": available, "observedGeneration": observed}
    if updated is not None:
        status["updatedReplicas"] = updated
    return {"metadata": {"name": NER, "generation": generation}, "status": status}


def conds(status):
    return {
        t: (c["status"], c["reason"])
        for t in ("Ready", "Reconciling", "Stalled")
        if (c := find_condition(status["conditions"], t))
    }


def test_the_default_deadline_is_the_models():
    assert (
        P.parse_pipeline({"spec": {"steps": [{"name": "a", "image": "a:1"}]}}).spec.progress_deadline_seconds
        == PipelineSpec.model_fields["progress_deadline_seconds"].default
    )


def test_ready_and_rolled_out_is_neither_reconciling_nor_stalled():
    st = P.compute_pipeline_status(P.parse_pipeline(pipeline()), [deployment(2, 2)], T0)
    assert conds(st) == {
        "Ready": ("True", "Ready"),
        "Reconciling": ("False", "Ready"),
        "Stalled": ("False", "Ready"),
    }
    assert {c["observedGeneration"] for c in st["conditions"]} == {1}
    PipelineStatus.model_validate(st)


def test_ready_while_a_deployment_rolls_out_is_reconciling():
    # One of two replicas available, or the Deployment controller behind its generation.
    surge = deployment(2, 2)
    surge["status"]["replicas"] = 3  # an old pod not yet gone beside the new ones
    for dep in (deployment(1, 1), deployment(2, 1), deployment(2, 2, generation=2, observed=1), surge):
        st = P.compute_pipeline_status(P.parse_pipeline(pipeline()), [dep], T0)
        assert conds(st)["Ready"] == ("True", "Ready")
        assert conds(st)["Reconciling"] == ("True", "RollingOut"), dep
        assert "step ner:" in find_condition(st["conditions"], "Reconciling")["message"]
        assert conds(st)["Stalled"] == ("False", "Ready")


def test_not_ready_is_reconciling_until_the_deadline_then_stalled():
    st = P.compute_pipeline_status(P.parse_pipeline(pipeline()), [deployment(0)], T0, PULL)
    assert conds(st) == {
        "Ready": ("False", "ImagePullFailed"),
        "Reconciling": ("True", "ImagePullFailed"),
        "Stalled": ("False", "ImagePullFailed"),
    }
    assert "no such image" in find_condition(st["conditions"], "Reconciling")["message"]
    assert P.seconds_until_stalled(st, P.parse_pipeline(pipeline()).spec, T0 + timedelta(seconds=20)) == 40
    # Still within the deadline: the count started at T0 (not at each pass).
    st = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(status=st)), [deployment(0)], T0 + timedelta(seconds=59), PULL
    )
    assert conds(st)["Reconciling"] == ("True", "ImagePullFailed")
    assert find_condition(st["conditions"], "Reconciling")["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    st = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(status=st)), [deployment(0)], T0 + timedelta(seconds=60), PULL
    )
    assert conds(st) == {
        "Ready": ("False", "ImagePullFailed"),
        "Reconciling": ("False", "ImagePullFailed"),
        "Stalled": ("True", "ImagePullFailed"),
    }
    stalled = find_condition(st["conditions"], "Stalled")
    assert "not Ready for 60 s (spec.progressDeadlineSeconds)" in stalled["message"]
    assert "no such image" in stalled["message"]
    assert P.seconds_until_stalled(st, P.parse_pipeline(pipeline()).spec, T0 + timedelta(seconds=61)) is None
    # It stays Stalled on later passes, and recovers when the app becomes ready.
    later = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(status=st)), [deployment(0)], T0 + timedelta(seconds=90), PULL
    )
    assert conds(later)["Stalled"] == ("True", "ImagePullFailed")
    healed = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(status=later)), [deployment(2, 2)], T0 + timedelta(seconds=99)
    )
    assert conds(healed) == {
        "Ready": ("True", "Ready"),
        "Reconciling": ("False", "Ready"),
        "Stalled": ("False", "Ready"),
    }


def test_a_new_generation_starts_the_count_again():
    st = P.compute_pipeline_status(P.parse_pipeline(pipeline()), [deployment(0)], T0, PULL)
    st = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(status=st)), [deployment(0)], T0 + timedelta(seconds=60), PULL
    )
    assert conds(st)["Stalled"][0] == "True"
    edited = pipeline(generation=2, status=copy.deepcopy(st))
    st = P.compute_pipeline_status(
        P.parse_pipeline(edited), [deployment(0)], T0 + timedelta(seconds=70), PULL
    )
    assert conds(st)["Reconciling"] == ("True", "ImagePullFailed")
    assert conds(st)["Stalled"][0] == "False"
    assert find_condition(st["conditions"], "Reconciling")["lastTransitionTime"] == "2025-01-01T00:01:10Z"
    assert {c["observedGeneration"] for c in st["conditions"]} == {2}
    # Reconciling already True for generation 1 and edited again: the count restarts too.
    first = P.compute_pipeline_status(P.parse_pipeline(pipeline()), [deployment(0)], T0, PULL)
    again = P.compute_pipeline_status(
        P.parse_pipeline(pipeline(generation=2, status=first)),
        [deployment(0)],
        T0 + timedelta(seconds=50),
        PULL,
    )
    assert find_condition(again["conditions"], "Reconciling")["lastTransitionTime"] == "2025-01-01T00:00:50Z"


def test_a_name_conflict_is_stalled_at_once():
    st = P.compute_pipeline_status(
        P.parse_pipeline(pipeline()), [], T0, conflicts={"ner": "held by Deployment x of someone"}
    )
    assert conds(st) == {
        "Ready": ("False", "NameConflict"),
        "Reconciling": ("False", "NameConflict"),
        "Stalled": ("True", "NameConflict"),
    }
    assert "held by Deployment x" in find_condition(st["conditions"], "Stalled")["message"]


def test_reconciling_and_stalled_are_never_both_true():
    status = None
    for second, deps, waiting in (
        (0, [], None),
        (30, [deployment(0)], PULL),
        (61, [deployment(0)], PULL),
        (62, [deployment(1, 1)], None),
        (63, [deployment(2, 2)], None),
    ):
        status = P.compute_pipeline_status(
            P.parse_pipeline(pipeline(status=status)), deps, T0 + timedelta(seconds=second), waiting
        )
        c = conds(status)
        assert not (c["Reconciling"][0] == "True" and c["Stalled"][0] == "True"), (second, c)
