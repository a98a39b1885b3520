"""mmif-runner analyze and analysis-manifest over a run's final MMIF, with the CLAMS test apps
served in-process (the same harness as test_runner_step)."""

from __future__ import annotations

import json
import os
import pathlib

from mmif import Mmif

from mmif_operator.core import itemstates
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import ExitCode
from mmif_operator.runner.files import sha256_file
from mmif_operator.runner.paths import AnalysisLayout, analysis_dir
from tests.unit.test_runner_step import TEXTGEN, TIMEFRAMES, VIDEO, Run

SECOND = {"name": "second", "documents": [{"location": "media/b.mp4", "mimeType": "video/mp4"}]}


class Analysis:
    def __init__(self, run: Run, name="run-1-seg", uid="aj-uid-1"):
        self.run, self.name, self.uid = run, name, uid
        self.layout = AnalysisLayout(analysis_dir(run.layout.root, name))

    def analyze(self, item, url, params=None, **more):
        for name in E.ANALYZE + E.ANALYSIS_MANIFEST:
            self.run.mp.delenv(name, raising=False)
        return self.run._main(
            "analyze",
            {
                E.RUN_DIR: self.run.layout.root,
                E.RUN_UID: "uid-1",
                E.ANALYSIS_DIR: self.layout.root,
                E.ANALYSIS_UID: self.uid,
                E.ITEM_INDEX: str(item),
                E.APP_URL: url,
                E.APP_PARAMS: json.dumps(params or {}),
                E.APP_WAIT: "2",
                **more,
            },
        )

    def manifest(self, states):
        code, term = self.run._main(
            "analysis-manifest",
            {
                E.RUN_DIR: self.run.layout.root,
                E.ANALYSIS_DIR: self.layout.root,
                E.ANALYSIS_NAME: self.name,
                E.RUN_PHASE: "Succeeded",
                E.RUN_UID: "uid-1",
                E.ANALYSIS_UID: self.uid,
                E.ITEM_STATES_FILE: self.run.input_file(
                    "astates", self.uid, {"itemStates": itemstates.encode(states)}
                ),
            },
        )
        assert code == ExitCode.OK, term
        return json.load(open(self.layout.manifest))


def _finished_run(tmp_path, monkeypatch, apps, items):
    run = Run(tmp_path, monkeypatch, ["asr"], items)
    for i in range(len(items)):
        run.step(i, 0, apps["textgen"][0])
    return run


def test_the_processed_mmif_has_the_analysis_view_after_the_pipeline_views(tmp_path, monkeypatch, apps):
    run = _finished_run(tmp_path, monkeypatch, apps, [VIDEO])
    aj = Analysis(run)
    final_before = sha256_file(run.layout.final_mmif(0))
    code, term = aj.analyze(0, apps["timeframes"][0], {"count": "3"})
    assert code == ExitCode.OK, term
    out = pathlib.Path(aj.layout.output(0)).read_text()
    Mmif.validate(out)
    assert [v.metadata.app for v in Mmif(out).views] == [TEXTGEN, TIMEFRAMES]
    rec = json.loads(pathlib.Path(aj.layout.record(0)).read_text())
    assert (
        rec["state"] == "Succeeded"
        and rec["attempt"] == 1
        and rec["sha256"] == sha256_file(aj.layout.output(0))
    )
    assert rec["input"] == run.layout.final_mmif(0)
    assert sha256_file(run.layout.final_mmif(0)) == final_before  # the raw data is untouched
    assert pathlib.Path(aj.layout.owner_uid).read_text().strip() == "aj-uid-1"


def test_a_second_analyze_of_a_done_item_does_not_call_the_app(tmp_path, monkeypatch, apps):
    run = _finished_run(tmp_path, monkeypatch, apps, [VIDEO])
    aj = Analysis(run)
    posts = apps["timeframes"][1].posts
    assert aj.analyze(0, apps["timeframes"][0])[0] == ExitCode.OK
    code, term = aj.analyze(0, apps["timeframes"][0])
    assert code == ExitCode.OK and term["message"] == "already done"
    assert apps["timeframes"][1].posts == posts + 1


def test_an_analysis_sidecar_that_never_listens_fails_for_good(tmp_path, monkeypatch, apps):
    from tests.unit.test_runner_step import free_port

    run = _finished_run(tmp_path, monkeypatch, apps, [VIDEO])
    port = free_port()
    code, term = Analysis(run).analyze(0, f"http://127.0.0.1:{port}", **{E.APP_STARTUP_TIMEOUT: "0.2"})
    assert (code, term["reason"]) == (ExitCode.APP_NOT_LISTENING, "AppNotListening"), term
    assert f"nothing listened on port {port} within 0.2 s" in term["message"]


def test_a_folder_claimed_by_another_analysis_job_is_a_conflict(tmp_path, monkeypatch, apps):
    run = _finished_run(tmp_path, monkeypatch, apps, [VIDEO])
    assert Analysis(run, uid="old").analyze(0, apps["timeframes"][0])[0] == ExitCode.OK
    code, term = Analysis(run, uid="new").analyze(0, apps["timeframes"][0])
    assert code == ExitCode.OUTPUT_CONFLICT and "belongs to AnalysisJob old" in term["message"]


def test_an_item_without_final_mmif_is_invalid_input_and_an_app_error_is_recorded(
    tmp_path, monkeypatch, apps
):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO, SECOND])
    run.step(0, 0, apps["textgen"][0])
    aj = Analysis(run)
    code, term = aj.analyze(1, apps["timeframes"][0])
    assert code == ExitCode.INVALID_INPUT and "final MMIF" in term["message"]
    code, term = aj.analyze(0, apps["failer"][0], {"failOn": "a.mp4"})
    assert code == ExitCode.APP_ERROR, term
    assert not os.path.exists(aj.layout.output(0))
    manifest = aj.manifest([ItemState(0, ItemPhase.FAILED), ItemState(0, ItemPhase.PENDING)])
    assert manifest["counts"] == {"total": 1, "succeeded": 0, "failed": 1}
    entry = manifest["items"][0]
    assert entry["state"] == "Failed" and entry["reason"] == "AppError" and entry["output"] is None


def test_the_manifest_lists_only_the_items_processed_with_outputs_and_digests(tmp_path, monkeypatch, apps):
    run = _finished_run(tmp_path, monkeypatch, apps, [VIDEO, SECOND])
    aj = Analysis(run)
    assert aj.analyze(1, apps["timeframes"][0])[0] == ExitCode.OK
    manifest = aj.manifest([ItemState(0, ItemPhase.PENDING), ItemState(0, ItemPhase.SUCCEEDED)])
    assert manifest["counts"] == {"total": 1, "succeeded": 1, "failed": 0}
    [entry] = manifest["items"]
    assert entry["index"] == 1 and entry["name"] == "second" and entry["state"] == "Succeeded"
    assert entry["output"] == "items/00001/analysis.mmif"
    assert entry["source"] == "items/00001/final.mmif"
    assert entry["sha256"] == sha256_file(aj.layout.output(1)) and entry["finishedAt"]
