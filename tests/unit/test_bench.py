"""bench/: the pure parts of the scale benchmark (figures, the table, the targets)."""

from __future__ import annotations

import pytest

from bench import apf, measure, report, workspace
from bench.watch import JobRecorder


def job(name, uid, item, step, conditions=(), run="r", last=None):
    body = {
        "metadata": {
            "name": name,
            "uid": uid,
            "labels": {
                "mmif.dev/run": run,
                "app.kubernetes.io/component": "step",
                "mmif.dev/item-index": str(item),
                "mmif.dev/step-index": str(step),
            },
        },
        "status": {"conditions": [{"type": t, "status": "True"} for t in conditions]},
    }
    if last is not None:
        body["metadata"]["labels"]["mmif.dev/last-step-index"] = str(last)
    return body


def test_percentile_nearest_rank():
    assert measure.percentile([], 50) is None
    assert measure.percentile([3.0], 99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert measure.percentile(values, 50) == 50.0
    assert measure.percentile(values, 95) == 95.0
    assert measure.percentile(values, 99) == 99.0
    assert measure.percentile(values, 100) == 100.0
    assert measure.percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_recorder_transition_delays_and_integrity():
    finished = []
    rec = JobRecorder(on_finished=finished.append)
    rec.observe("ADDED", job("r-00000-0", "a", 0, 0), 1.0)
    rec.observe("MODIFIED", job("r-00000-0", "a", 0, 0, ["SuccessCriteriaMet"]), 2.0)
    rec.observe("MODIFIED", job("r-00000-0", "a", 0, 0, ["SuccessCriteriaMet", "Complete"]), 2.5)
    rec.observe("ADDED", job("r-00000-1", "b", 0, 1), 2.25)
    rec.observe("DELETED", job("r-00000-0", "a", 0, 0, ["Complete"]), 3.0)
    rec.observe("MODIFIED", job("r-00000-1", "b", 0, 1, ["Complete"]), 4.0)
    rec.observe("ADDED", job("r-00001-0", "c", 1, 0), 1.0)
    rec.observe("MODIFIED", job("r-00001-0", "c", 1, 0, ["Failed"]), 1.5)
    assert [r.uid for r in finished] == ["a", "b", "c"]  # each once, at its first finished event
    a = rec.by_uid["a"]
    assert (a.added, a.finished, a.succeeded, a.deleted) == (1.0, 2.0, True, 3.0)
    assert rec.by_uid["c"].succeeded is False
    assert measure.transition_delays(rec.steps()) == [0.25]  # a failed step has no next step
    check = measure.integrity(rec.steps(), {"r": 2}, steps=2)
    assert check == measure.Integrity(expected=4, created=3, duplicated=0, missing=1, items_lost=1)
    rec.observe("ADDED", job("r-00000-1", "b2", 0, 1), 5.0)  # the same item-step created again
    assert measure.integrity(rec.steps(), {"r": 2}, steps=2).duplicated == 1
    assert measure.transition_delays(rec.steps()) == [0.25]  # measured on the first Job


def test_a_job_of_steps_sharing_a_pod_covers_each_of_them():
    rec = JobRecorder()
    rec.observe("ADDED", job("r-00000-0", "a", 0, 0, last=1), 1.0)
    rec.observe("MODIFIED", job("r-00000-0", "a", 0, 0, ["Complete"], last=1), 2.0)
    rec.observe("ADDED", job("r-00000-2", "b", 0, 2), 2.5)
    rec.observe("MODIFIED", job("r-00000-2", "b", 0, 2, ["Complete"]), 3.0)
    rec.observe("ADDED", job("r-00001-0", "c", 1, 0, last=2), 1.0)
    rec.observe("MODIFIED", job("r-00001-0", "c", 1, 0, ["Complete"], last=2), 1.5)
    check = measure.integrity(rec.steps(), {"r": 2}, steps=3)
    assert check == measure.Integrity(expected=6, created=6, duplicated=0, missing=0, items_lost=0)
    assert measure.transition_delays(rec.steps()) == [0.5]  # item 0 from its pod of steps 0-1 to step 2


def test_flow_schema_counts():
    text = "\n".join(
        [
            "# HELP apiserver_flowcontrol_dispatched_requests_total ...",
            'apiserver_flowcontrol_dispatched_requests_total{flow_schema="mmif-bench-operator-reads",priority_level="workload-low"} 120',
            'apiserver_flowcontrol_dispatched_requests_total{flow_schema="mmif-bench-operator-writes",priority_level="workload-low"} 7.5e+03',
            'apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 3',
            'apiserver_flowcontrol_dispatched_requests_total_other{flow_schema="mmif-bench-operator-reads"} 99',
        ]
    )
    counts = measure.flow_schema_counts(text)
    assert counts[apf.READS] == 120 and counts[apf.WRITES] == 7500 and counts["exempt"] == 3


def test_flow_schemas_match_only_the_operator():
    fs = apf.flow_schema(apf.WRITES, apf.WRITE_VERBS, "mmif-system", "mmif-operator")
    (rule,) = fs["spec"]["rules"]
    assert rule["subjects"] == [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "mmif-system", "name": "mmif-operator"}}
    ]
    assert rule["resourceRules"][0]["verbs"] == apf.WRITE_VERBS
    assert fs["spec"]["priorityLevelConfiguration"]["name"] == "workload-low"
    assert not set(apf.READ_VERBS) & set(apf.WRITE_VERBS)


def test_proc_parsing():
    stat = "1234 (python3 -m x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 0 0"
    assert measure.cpu_seconds(stat, 100) == 3.0
    status = "Name:\tpython3\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
    assert measure.status_kib(status, "VmHWM") == 123456
    assert measure.status_kib(status, "VmSwap") is None


def rows(ratio_1k=1.1, ratio_10k=1.1, p99=0.5, writes=2.2, rss=150.0, size=20000):
    def base(n, wall):
        return report.Row(
            items=n,
            mode="baseline",
            wall=wall,
            steps_wall=wall,
            item_steps=3 * n,
            delays=(0.1, 0.2, 0.3),
            writes=2.0 * 3 * n,
        )

    def op(n, wall, **kw):
        return report.Row(
            items=n,
            mode="operator",
            wall=wall,
            steps_wall=wall - 5,
            item_steps=3 * n,
            delays=(0.2, 0.4, p99),
            reads=3 * n,
            writes=writes * 3 * n,
            cpu_seconds=10.0,
            peak_rss_mib=rss,
            object_bytes=size,
            outcome="Succeeded",
        )

    return report.with_ratios(
        [base(1000, 100.0), op(1000, 100.0 * ratio_1k), base(10000, 1000.0), op(10000, 1000.0 * ratio_10k)]
    )


def test_table_and_ratios():
    rs = rows(ratio_1k=1.2)
    assert rs[1].ratio == pytest.approx(1.2) and rs[1].steps_ratio == pytest.approx(115 / 100)
    assert rs[0].ratio is None
    assert rs[1].items_per_second == pytest.approx(1000 / 120)
    assert rs[1].per_item_step(rs[1].writes) == pytest.approx(2.2)
    text = report.table(rs)
    lines = text.splitlines()
    assert lines[0].startswith("| items") and len({len(line) for line in lines}) == 1
    assert "| 1.20 " in lines[3] and "0.200/0.400/0.500" in lines[3] and "–" in lines[2]


def test_targets():
    kill = report.KillFigures(
        in_flight=1000,
        runs=2,
        new_process_after=1.0,
        progress_all=6.0,
        duplicated=0,
        lost=0,
        outcome="Succeeded",
    )
    assert all(t.strip().startswith("met") for t in report.targets(rows(), kill))
    missed = report.targets(
        rows(ratio_1k=1.3, ratio_10k=1.5, p99=1.5, writes=3.5, rss=300, size=70000),
        report.KillFigures(1000, 2, 1.0, 40.0, 1, 0, "Succeeded"),
    )
    assert all(t.strip().startswith("MISSED") for t in missed)
    partial = report.targets([r for r in rows() if r.items == 1000], None)
    assert sum(t.strip().startswith("not measured") for t in partial) == 4


def test_bench_objects():
    spec = workspace.pipeline_spec(3)
    assert [s["name"] for s in spec["steps"]] == ["s1", "s2", "s3"]
    assert all(s["tolerations"][0]["key"] == "kwok.x-k8s.io/node" for s in spec["steps"])
    run = workspace.run_body("op-10", 10, 1000)
    assert run["spec"]["parallelism"] == 10 and run["spec"]["itemsFrom"] == {"path": "bench/items-10.jsonl"}
    from mmif_operator.kinds.pipeline.model import PipelineSpec
    from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec

    PipelineSpec.from_obj(spec)
    PipelineRunSpec.from_obj(run["spec"])


def test_the_warm_bench_pipeline_shares_one_pod_per_item_and_puts_its_pools_on_kwok():
    from mmif_operator.kinds.pipeline.model import PipelineSpec
    from mmif_operator.kinds.pipelinerun import pools
    from mmif_operator.kinds.pipelinerun.shared_pods import pod_spans
    from tests.unit.test_pools import _ctx

    spec = PipelineSpec.from_obj(workspace.pipeline_spec(3, "Warm"))
    assert [s.mode.value for s in spec.steps] == ["Job"] * 3 and all(s.warm for s in spec.steps)
    assert pod_spans(spec.steps) == (2, 2, 2)
    deployments = [o for o in pools.run_pools(_ctx(), spec) if o["kind"] == "Deployment"]
    assert len(deployments) == 3
    for dep in deployments:
        assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"type": "kwok"}
