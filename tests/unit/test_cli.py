"""The pure parts of the `kubectl mmif` plugin: arguments -> the PipelineRun object, a run's
status -> bars, counts and plain lines, what `wait` decides, the reader pod, the results view."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from mmif_operator.cli import live, logs, main, reader, render, results, runs
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.core import security
from mmif_operator.results import show


def status(**more):
    base = {
        "phase": "Running",
        "stage": "RunningItems",
        "itemCount": 10,
        "itemsSucceeded": 3,
        "itemsFailed": 1,
        "progress": "4/10",
        "steps": [
            {"name": "asr", "pending": 4, "running": 2, "succeeded": 4, "failed": 0},
            {"name": "ner", "pending": 5, "running": 1, "succeeded": 3, "failed": 1},
        ],
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "Running",
                "message": "",
                "lastTransitionTime": "2026-12-01T10:00:00Z",
            }
        ],
        "failures": [
            {
                "item": "clip-7",
                "index": 7,
                "step": "ner",
                "reason": "AppError",
                "message": "no text",
                "time": "2026-12-01T10:01:00Z",
            }
        ],
    }
    base.update(more)
    return {"metadata": {"name": "batch", "namespace": "a1"}, "status": base}


# -- arguments -> PipelineRun -----------------------------------------------------------------------
def test_run_body_is_a_valid_pipelinerun_from_the_arguments():
    items = runs.document_items(["media/interview.mp4", "media/talk.wav", "notes/a.txt:text/plain"])
    body = runs.run_body(
        "transcribe",
        items,
        claim_name="media",
        mount_path="/data",
        params=runs.parse_params(["seg.count=5", "seg.unit=ms", "asr.model=tiny"], ["asr", "seg"]),
        parallelism=2,
    )
    assert body == {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "transcribe-"},
        "spec": {
            "pipelineRef": {"name": "transcribe"},
            "workspace": {"claimName": "media", "mountPath": "/data"},
            "items": [
                {
                    "name": "interview",
                    "documents": [{"location": "media/interview.mp4", "mimeType": "video/mp4"}],
                },
                {"name": "talk", "documents": [{"location": "media/talk.wav", "mimeType": "audio/x-wav"}]},
                {"name": "a", "documents": [{"location": "notes/a.txt", "mimeType": "text/plain"}]},
            ],
            "params": {"seg": {"count": "5", "unit": "ms"}, "asr": {"model": "tiny"}},
            "parallelism": 2,
        },
    }
    named = runs.run_body("transcribe", items, claim_name="media", name="batch-1")
    assert named["metadata"] == {"name": "batch-1"}


def test_run_body_refuses_what_the_crd_would_naming_the_field():
    items = runs.document_items(["media/a.mp4"])
    with pytest.raises(CliError, match=r"spec\.parallelism: Input should be greater than or equal to 1") as e:
        runs.run_body("p", items, claim_name="media", parallelism=0)
    assert e.value.code == Exit.USAGE
    with pytest.raises(CliError, match=r"spec\.workspace\.claimName"):
        runs.run_body("p", items, claim_name="Not_A_Name")


def test_documents_params_and_items_files_are_checked():
    with pytest.raises(CliError, match="cannot tell the media type of 'media/a.xyz'"):
        runs.document_items(["media/a.xyz"])
    with pytest.raises(CliError, match="write it as STEP.KEY=VALUE"):
        runs.parse_params(["count=5"])
    with pytest.raises(CliError, match="the pipeline has no step 'sag'"):
        runs.parse_params(["sag.count=5"], ["asr", "seg"])
    yaml_list = "- name: x\n  documents: [{location: m/x.mp4, mimeType: video/mp4}]\n- mmif: old/y.mmif\n"
    assert runs.load_items(yaml_list) == [
        {"name": "x", "documents": [{"location": "m/x.mp4", "mimeType": "video/mp4"}]},
        {"mmif": "old/y.mmif"},
    ]
    jsonl = '{"documents": [{"location": "m/x.mp4", "mimeType": "video/mp4"}]}\n{"mmif": "y.mmif"}\n'
    assert [i.get("mmif") for i in runs.load_items(jsonl)] == [None, "y.mmif"]
    assert runs.load_items("items:\n- mmif: y.mmif\n") == [{"mmif": "y.mmif"}]
    with pytest.raises(CliError, match="item 1: .*exactly one of documents, mmif or record"):
        runs.load_items('[{"mmif": "a"}, {"name": "both-missing"}]')


# -- status -> frame, lines, tables ------------------------------------------------------------------
def test_a_runs_frame_bars_and_plain_lines():
    f = render.frame(status())
    assert [(s.name, s.done, s.total) for s in f.steps] == [("asr", 4, 10), ("ner", 4, 10)]
    assert f.lines() == [
        "step asr 4/10 succeeded=4 failed=0 running=2 pending=4",
        "step ner 4/10 succeeded=3 failed=1 running=1 pending=5",
        "run batch 4/10 phase=Running stage=RunningItems succeeded=3 failed=1 cancelled=0",
    ]
    assert not f.ended and f.outcome() == "pipelinerun batch: Running, 3/10 items succeeded, 1 failed"
    before = render.frame({"metadata": {"name": "new"}, "status": {}})
    assert before.lines() == ["run new 0/? phase=Pending stage=Pending succeeded=0 failed=0 cancelled=0"]
    done = render.frame(
        status(
            phase="Failed",
            stage="Failed",
            conditions=[
                {
                    "type": "Succeeded",
                    "status": "False",
                    "reason": "ItemsFailed",
                    "message": "1 of 10 items failed",
                    "lastTransitionTime": "2026-12-01T10:05:00Z",
                }
            ],
        )
    )
    assert done.ended and live.exit_code(done) == Exit.RUN_FAILED
    assert (
        done.outcome()
        == "pipelinerun batch: Failed (ItemsFailed), 3/10 items succeeded, 1 failed: 1 of 10 items failed"
    )


def test_the_plain_renderer_prints_one_line_per_changed_bar():
    out = io.StringIO()
    r = live.PlainRenderer(out)
    r.update(render.frame(status()))
    moved = status()
    moved["status"]["steps"][0].update(succeeded=5, running=1)
    r.update(render.frame(moved))
    r.update(render.frame(moved))  # nothing changed: nothing printed
    assert out.getvalue().splitlines() == [
        "step asr 4/10 succeeded=4 failed=0 running=2 pending=4",
        "step ner 4/10 succeeded=3 failed=1 running=1 pending=5",
        "run batch 4/10 phase=Running stage=RunningItems succeeded=3 failed=1 cancelled=0",
        "step asr 5/10 succeeded=5 failed=0 running=1 pending=4",
    ]


def test_the_summary_tables_show_counts_and_the_latest_failures():
    out = io.StringIO()
    live.print_summary(Console(file=out, width=160, markup=False), render.frame(status()))
    text = out.getvalue()
    assert "pipelinerun batch (a1): Running" in text
    assert "asr" in text and "4/10" in text and "(run)" in text
    assert "latest failures" in text and "7 (clip-7)" in text and "AppError" in text and "no text" in text
    assert text.rstrip().endswith("pipelinerun batch: Running, 3/10 items succeeded, 1 failed")


@pytest.mark.parametrize(
    ("phase", "target", "decision"),
    [
        ("Running", "Succeeded", None),
        ("Succeeded", "Succeeded", True),
        ("Failed", "Succeeded", False),
        ("Cancelled", "Ended", True),
        ("AwaitingReview", "AwaitingReview", True),
        ("AwaitingReview", "Succeeded", None),
        ("Publishing", "AwaitingReview", False),
        ("Succeeded", "AwaitingReview", False),
        ("Pending", "Running", None),
        ("Running", "Running", True),
    ],
)
def test_what_wait_decides(phase, target, decision):
    f = render.frame({"metadata": {"name": "r"}, "status": {"phase": phase}})
    assert runs.wait_decision(f, target) is decision


# -- the reader pod, results and logs ----------------------------------------------------------------
RUN = {
    "metadata": {"name": "batch", "namespace": "a1"},
    "spec": {"workspace": {"claimName": "media", "mountPath": "/mnt/m"}},
    "status": {
        "outputPath": "/mnt/m/mmif-runs/batch",
        "pipelineSpec": {"steps": [{"name": "asr"}, {"name": "ner"}]},
    },
}


def test_the_reader_pod_is_hardened_labelled_bounded_and_reads_only():
    pod = reader.reader_pod(RUN, ["summary", "--run-dir", "/mnt/m/mmif-runs/batch"], image="img:1")
    spec = pod["spec"]
    assert pod["metadata"]["generateName"] == "batch-reader-"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "reader"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubectl-mmif"
    assert pod["metadata"]["labels"]["mmif.dev/reads-run"] == "batch"
    assert "mmif.dev/run" not in pod["metadata"]["labels"]  # the operator's selectors never see it
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == reader.DEADLINE_SECONDS
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert (
        spec["securityContext"]["runAsUser"] == security.RUNNER_UID
        and spec["securityContext"]["runAsNonRoot"]
    )
    (c,) = spec["containers"]
    assert c["image"] == "img:1" and c["command"] == [
        "mmif-runner",
        "show",
        "summary",
        "--run-dir",
        "/mnt/m/mmif-runs/batch",
    ]
    assert c["securityContext"] == security.runner_security_context()
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "workspace", "mountPath": "/mnt/m", "readOnly": True} in c["volumeMounts"]
    claim = next(v for v in spec["volumes"] if v["name"] == "workspace")["persistentVolumeClaim"]
    assert claim == {"claimName": "media", "readOnly": True}
    assert reader.run_steps(RUN) == ["asr", "ner"] and reader.run_location(RUN)[2] == "/mnt/m/mmif-runs/batch"


def test_the_readers_answer_is_found_in_its_log():
    log = "some warning\n" + show.MARKER + json.dumps({"ok": True, "result": {"x": 1}}) + "\n"
    assert reader.parse_answer(log) == {"x": 1}
    with pytest.raises(CliError, match="no item 3"):
        reader.parse_answer(show.MARKER + json.dumps({"ok": False, "error": "no item 3"}))
    with pytest.raises(CliError, match="printed no answer; its log ends with:\nboom"):
        reader.parse_answer("boom\n")


def test_step_pods_are_found_by_the_runs_labels():
    assert logs.step_selector("batch", 3, 1) == (
        "app.kubernetes.io/managed-by=mmif-operator,mmif.dev/run=batch,app.kubernetes.io/component=step,"
        "mmif.dev/item-index=3,mmif.dev/step-index=1"
    )
    run = {"spec": {"items": [{"name": "a"}, {"name": "b"}]}}
    assert (logs.item_index(run, "b"), logs.item_index(run, "7"), logs.item_index(run, "zz")) == (1, 7, None)


def test_results_render_views_annotations_errors_and_timeframes():
    item = {
        "index": 1,
        "name": "boom",
        "state": "Failed",
        "failedStep": "check",
        "reason": "AppError",
        "message": "failOn matched",
        "mmif": "items/00001/02-check.mmif",
        "summary": {
            "documents": [
                {
                    "id": "d1",
                    "type": "VideoDocument",
                    "mime": "video/mp4",
                    "location": "file:///d/b.mp4",
                    "duration": None,
                }
            ],
            "views": [
                {
                    "id": "v_0",
                    "app": "http://a/tf",
                    "version": "v1",
                    "parameters": {"count": "2"},
                    "annotations": {"TimeFrame": 2},
                    "error": None,
                    "warnings": [],
                },
                {
                    "id": "v_1",
                    "app": "http://a/failer",
                    "version": "v1",
                    "parameters": {},
                    "annotations": {},
                    "error": {"message": "boom"},
                    "warnings": [],
                },
            ],
            "timeframes": [
                {"start": 0, "end": 500, "unit": "milliseconds"},
                {"start": 1000, "end": 1500, "unit": "milliseconds"},
            ],
        },
    }
    got = {
        "runDir": "/d/mmif-runs/r",
        "steps": ["tf", "check"],
        "phase": "Failed",
        "counts": {"total": 1, "failed": 1, "succeeded": 0},
        "items": [item],
        "itemCount": 1,
    }
    out = io.StringIO()
    Console(file=out, width=160, markup=False).print(results.render_results(got))
    text = out.getvalue()
    assert "/d/mmif-runs/r: Failed, total 1, failed 1; steps tf, check" in text
    assert "item 1 (boom): Failed  items/00001/02-check.mmif" in text
    assert "failed at step check: AppError: failOn matched" in text
    assert "document d1 VideoDocument video/mp4 file:///d/b.mp4" in text
    assert "count=2" in text and "TimeFrame 2" in text and "boom" in text
    assert "timeframes: 2, 0-1.5 s" in text


def test_the_console_script_parses_kubectls_options_after_the_command():
    args = main.parser().parse_args(["status", "batch", "-n", "a1", "--context", "c", "--as", "rita"])
    assert (args.run, args.namespace, args.context, args.as_user, args.func) == (
        "batch",
        "a1",
        "c",
        "rita",
        runs.cmd_status,
    )
    args = main.parser().parse_args(["review", "pass", "batch", "--comment", "ok"])
    assert (args.decision, args.comment) == ("pass", "ok")
    with pytest.raises(SystemExit):
        main.parser().parse_args(["review", "maybe", "batch", "--comment", "ok"])


def test_on_a_terminal_the_bars_are_rich_progress_bars_one_per_step_and_the_run():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150, markup=False)
    bars = live.BarsRenderer(console)
    bars.update(render.frame(status()))
    done = status(phase="Succeeded", stage="Succeeded", itemsSucceeded=10, itemsFailed=0)
    for s in done["status"]["steps"]:
        s.update(pending=0, running=0, succeeded=10, failed=0)
    bars.update(render.frame(done))
    bars.close()
    tasks = {t.description: (t.completed, t.total) for t in bars.progress.tasks}
    assert tasks == {"asr": (10, 10), "ner": (10, 10), "batch": (10, 10)}
    chosen = live.renderer_for(console, out)
    chosen.close()
    assert isinstance(chosen, live.BarsRenderer)
    assert live.renderer_for(Console(file=io.StringIO()), io.StringIO()).__class__ is live.PlainRenderer


def test_monitors_render_health_reliability_and_what_failed():
    from mmif_operator.cli.monitors import _newest, render_monitor, render_monitors

    mon = {
        "metadata": {"name": "asr"},
        "spec": {"interval": "PT5M"},
        "status": {
            "target": "pipeline/transcribe",
            "health": "Degraded",
            "reliability": 0.5,
            "reportsKept": 2,
            "lastReport": {"id": "20261201T120500Z", "result": "Failed"},
            "activities": [{"step": "asr", "app": "img", "tests": 2, "passed": 1, "reliability": 0.5}],
        },
    }
    reports = [
        {"spec": {"id": "20261201T120000Z", "result": "Passed", "durationSeconds": 3, "summary": "passed"}},
        {
            "spec": {
                "id": "20261201T120500Z",
                "result": "Failed",
                "durationSeconds": 4.2,
                "summary": "1 activity failed",
                "failedActivities": [{"step": "asr", "reason": "AppError", "message": "model not loaded"}],
            }
        },
    ]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_monitor(mon, _newest(reports, 10)))
    console.print(render_monitors([mon]))
    text = console.export_text()
    assert "Degraded" in text and "50%" in text and "pipeline/transcribe" in text
    assert "asr: AppError: model not loaded" in text
    assert text.index("20261201T120500Z") < text.index("20261201T120000Z")  # newest first
    assert [r["spec"]["id"] for r in _newest(reports, 1)] == ["20261201T120500Z"]
