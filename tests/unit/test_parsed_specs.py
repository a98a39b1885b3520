"""Objects are parsed into the models where they enter (core/specs.py): the planners read typed
fields with the models' defaults; a spec that does not parse (stored before a schema change)
gets a condition with reason `InvalidSpec` and the field named, never a crash loop; the run
loop parses a run's spec once per generation."""

from __future__ import annotations

import copy

import pytest

from mmif_operator.core.specs import InvalidSpec, ParseCache, parse_spec
from mmif_operator.core.status import find_condition
from mmif_operator.kinds.analysisjob import planning as RA
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import planning as R
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec
from tests.unit import test_handlers_pipelines as HP
from tests.unit import test_handlers_runs as HR
from tests.unit import typed as T

T0 = HR.T0


def succeeded(status):
    return find_condition(status.get("conditions"), "Succeeded")


def test_a_parse_error_names_the_field_with_camel_case_keys():
    with pytest.raises(InvalidSpec) as e:
        parse_spec(
            PipelineRunSpec, {**T.MIN_RUN_SPEC, "parallelism": 0, "workspace": {"claimName": "Bad_Name"}}
        )
    assert "spec.parallelism: Input should be greater than or equal to 1" in e.value.message
    assert "spec.workspace.claimName: String should match pattern" in e.value.message
    with pytest.raises(InvalidSpec, match=r"status\.pipelineSpec\.steps\[0\]\.port: "):
        parse_spec(PipelineSpec, {"steps": [{"name": "a", "image": "a:1", "port": 0}]}, "status.pipelineSpec")


def test_the_planners_read_the_models_defaults():
    spec = T.runspec()
    assert (spec.parallelism, spec.start_timeout_seconds, spec.workspace.mount_path) == (4, 900, "/data")
    step = T.pipe({"steps": [{"name": "a", "image": "a:1"}]}).steps[0]
    assert (step.port, step.retries, step.replicas, step.startup_timeout_seconds) == (5000, 2, 1, 900)


def test_the_snapshot_is_kept_as_stored_without_the_models_defaults():
    stored = {"steps": [{"name": "a", "image": "a:1", "mode": "Job"}], "review": {"required": True}}
    assert R.snapshot_of(T.pipe(stored)) == stored


def test_the_loop_parses_a_runs_spec_once_per_generation():
    cache = ParseCache(size=2)
    run = HR.make_run(3)
    first = R.parse_run(run, cache)
    assert R.parse_run(copy.deepcopy(run), cache).spec is first.spec  # same generation: kept
    run["metadata"]["generation"] = 2
    run["spec"]["status"] = "Cancelled"
    again = R.parse_run(run, cache)
    assert again.spec is not first.spec and again.spec.status == "Cancelled"
    for g in range(3, 10):  # bounded
        run["metadata"]["generation"] = g
        R.parse_run(run, cache)
    assert len(cache) == 2
    anonymous = {**run, "metadata": {"name": "run-1"}}  # no uid/generation: never cached
    assert R.parse_run(anonymous, cache).spec is not R.parse_run(anonymous, cache).spec


def test_a_pending_run_whose_spec_does_not_parse_fails_invalid_spec_without_a_crash():
    run = HR.make_run(2, parallelism=0)  # stored before a bound existed
    kube = HR.FakeKube(run)
    events = []
    result = HR.reconcile(kube, events=events)
    st = kube.run["status"]
    assert st["phase"] == "Failed" and result.done
    cond = succeeded(st)
    assert cond["status"] == "False" and cond["reason"] == "InvalidSpec"
    assert "spec.parallelism: Input should be greater than or equal to 1" in cond["message"]
    assert not [c for c in kube.calls if c[0] == "create"]
    assert any(r == "InvalidSpec" for _, r, _ in events)


def test_a_running_run_whose_snapshot_does_not_parse_fails_and_its_jobs_go():
    kube = HR.FakeKube(HR.make_run(2))
    HR.reconcile(kube)  # started: snapshot, prepare Job
    HR.finish_all(kube)
    HR.reconcile(kube)  # prepared: step Jobs in flight
    assert kube.run["status"]["phase"] == "Running" and any("-00000-0" in j for j in kube.jobs)
    kube.run["status"]["pipelineSpec"]["steps"][0]["port"] = 70000  # a bound added since
    HR.reconcile(kube)
    st = kube.run["status"]
    cond = succeeded(st)
    assert st["phase"] == "Failed" and cond["reason"] == "InvalidSpec"
    assert "status.pipelineSpec.steps[0].port: Input should be less than or equal to 65535" in cond["message"]
    HR.reconcile(kube)  # ended: its Jobs are deleted, nothing raises
    assert not kube.jobs


def test_a_pending_run_of_a_pipeline_whose_spec_does_not_parse_waits_saying_why():
    kube = HR.FakeKube(HR.make_run(2), pipeline={"steps": [{"name": "asr", "image": "asr:1", "retries": 99}]})
    HR.reconcile(kube)
    st = kube.run["status"]
    cond = succeeded(st)
    assert st["phase"] == "Pending" and cond["reason"] == "PipelineNotReady"
    assert "InvalidSpec" in cond["message"] and "spec.steps[0].retries" in cond["message"]


def test_a_pipeline_whose_spec_does_not_parse_is_stalled_invalid_spec_and_touches_nothing():
    body = HP.make_pipeline(replicas=0)  # below the model's bound
    kube = HP.FakeKube(body)
    events = []
    HP.reconcile(kube, events)
    conds = {c["type"]: c for c in kube.pipeline["status"]["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "InvalidSpec")
    assert (conds["Stalled"]["status"], conds["Stalled"]["reason"]) == ("True", "InvalidSpec")
    assert conds["Reconciling"]["status"] == "False"
    assert "spec.steps[1].replicas: Input should be greater than or equal to 1" in conds["Ready"]["message"]
    assert [c for c in kube.calls if c[0] != "patch"] == []  # no app object created or deleted
    calls = len(kube.calls)
    HP.reconcile(kube)  # unchanged: no write
    assert len(kube.calls) == calls


def test_an_analysis_whose_spec_does_not_parse_fails_invalid_spec():
    aj = {
        "metadata": {"name": "aj", "namespace": "ns", "uid": "aj-uid", "generation": 1},
        "spec": {"runRef": {"name": "run-1"}, "app": {"image": "t:1", "port": 0}},
        "status": {"phase": "Running"},
    }
    with pytest.raises(InvalidSpec) as e:
        RA.parse_analysis(aj)
    plan = RA.plan_invalid_analysis(aj, e.value, T0)
    cond = succeeded(plan.status)
    assert plan.phase == "Failed" and plan.done and cond["reason"] == "InvalidSpec"
    assert "spec.app.port: Input should be greater than or equal to 1" in cond["message"]
    assert plan.status_patch["phase"] == "Failed" and plan.events[0].reason == "InvalidSpec"
    ended = RA.plan_invalid_analysis({**aj, "status": plan.status}, e.value, T0)
    assert ended.status_patch == {}  # over: nothing more to write


def test_no_planner_or_builder_repeats_a_models_default():
    """A spec field with a default is read from the parsed model, never from a dict with the
    default written again (`step.get("port") or 5000`): the default is declared once."""
    import pathlib
    import re

    from mmif_operator.kinds.analysisjob.model import AnalysisJobSpec, AnalysisTemplate
    from mmif_operator.kinds.pipeline.model import PipelineWorkspace, Step
    from mmif_operator.kinds.pipelinerun.model import RunWorkspace

    models = (
        Step,
        PipelineSpec,
        PipelineWorkspace,
        PipelineRunSpec,
        RunWorkspace,
        AnalysisJobSpec,
        AnalysisTemplate,
    )
    defaulted = {
        f.alias or name
        for m in models
        for name, f in m.model_fields.items()
        if not f.is_required() and f.default is not None and f.default_factory is None
    }
    assert {"port", "retries", "parallelism", "mountPath", "trigger", "progressDeadlineSeconds"} <= defaulted
    fields = "|".join(sorted(defaulted))
    repeated = re.compile(
        rf"""\.get\(["']({fields})["']\)\s+or\s+[-\d"'A-Z]|\.get\(["']({fields})["'],\s*[-\d"']"""
    )
    root = pathlib.Path(__file__).parents[2] / "operator" / "mmif_operator"
    sources = [*root.glob("kinds/*/*.py"), root / "core" / "specs.py", root / "core" / "podstart.py"]
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sources
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if repeated.search(line)
    ]
    assert found == []


def test_a_triggered_analysis_takes_the_templates_defaults_from_the_model_or_says_it_does_not_parse():
    from mmif_operator.kinds.analysisjob import triggers

    run = {
        "metadata": {"name": "run-1", "namespace": "ns", "uid": "u"},
        "spec": {"pipelineRef": {"name": "p"}},
    }
    body = triggers.analysis_job(run, {"name": "seg", "app": {"image": "seg:1"}})
    assert (body["spec"]["trigger"], body["spec"]["parallelism"]) == ("AfterRun", 4)
    with pytest.raises(InvalidSpec, match=r"analyses\[seg\]\.parallelism: Input should be greater"):
        triggers.analysis_job(run, {"name": "seg", "app": {"image": "seg:1"}, "parallelism": 0})
