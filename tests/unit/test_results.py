"""Reading a run's outputs (mmif_operator/results/): MMIF summaries of real test-app outputs, the
run folder as the runner writes it (a real run of the test apps in-process), `mmif-runner show`,
and the runner's bounded per-item-step log."""

from __future__ import annotations

import io
import json
import logging
import pathlib
from contextlib import redirect_stdout

import pytest

from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.results import reader, show, summary
from mmif_operator.runner import steplog
from mmif_operator.runner.paths import step_log
from tests.unit.test_runner_step import BOOM, TEXTGEN, TIMEFRAMES, VIDEO, Run

FAILER = "http://apps.mmif.dev/failer/v1"


@pytest.fixture
def run(tmp_path, monkeypatch, apps):
    """A run of [textgen, timeframes(count=2)] over two items, the second failing at a third step
    (failer), with its manifest: the folder exactly as the runner writes it."""
    r = Run(tmp_path, monkeypatch, ["asr", "seg", "check"], [{"name": "a", **VIDEO}, BOOM])
    for item in (0, 1):
        assert r.step(item, 0, apps["textgen"][0])[0] == 0
        assert r.step(item, 1, apps["timeframes"][0], {"count": "2"})[0] == 0
    assert r.step(0, 2, apps["failer"][0], {"failOn": "nothing"})[0] == 0
    assert r.step(1, 2, apps["failer"][0], {"failOn": "boom"})[0] == 1
    r.manifest([ItemState(2, ItemPhase.SUCCEEDED), ItemState(2, ItemPhase.FAILED)])
    return r


def test_app_and_version_split_a_clams_identifier():
    assert summary.app_and_version("http://apps.clams.ai/whisper-wrapper/v8") == (
        "http://apps.clams.ai/whisper-wrapper",
        "v8",
    )
    assert summary.app_and_version("http://apps.mmif.dev/textgen/v1") == (
        "http://apps.mmif.dev/textgen",
        "v1",
    )
    assert summary.app_and_version("http://example.org/app/unresolvable") == (
        "http://example.org/app/unresolvable",
        None,
    )
    assert summary.app_and_version(None) == (None, None)


def test_the_summary_of_a_real_mmif_names_views_apps_parameters_counts_errors_and_timeframes(run):
    text = pathlib.Path(run.out(1, 2)).read_text()  # the failed MMIF the runner kept
    got = summary.summarize(text)
    assert got["documents"] == [
        {
            "id": "d1",
            "type": "VideoDocument",
            "mime": "video/mp4",
            "location": f"file://{run.ws}/media/boom.mp4",
            "duration": None,
        }
    ]
    views = got["views"]
    assert [(v["id"], v["appIdentifier"], v["version"]) for v in views] == [
        ("v_0", TEXTGEN, "v1"),
        ("v_1", TIMEFRAMES, "v1"),
        ("v_2", FAILER, "v1"),
    ]
    assert views[0]["annotations"] == {"Alignment": 1, "TextDocument": 1} and views[0]["error"] is None
    assert views[1]["parameters"] == {"count": "2"} and views[1]["annotations"] == {"TimeFrame": 2}
    assert views[2]["parameters"] == {"failOn": "boom"} and views[2]["annotationCount"] == 0
    assert "failOn 'boom' matched document d1" in views[2]["error"]["message"]
    assert [(f["view"], f["start"], f["end"], f["unit"], f["label"]) for f in got["timeframes"]] == [
        ("v_1", 0, 500, "milliseconds", "segment-0"),
        ("v_1", 1000, 1500, "milliseconds", "segment-1"),
    ]
    assert got["timeframesTruncated"] is False
    frames, truncated = summary.timeframes(__import__("mmif").Mmif(text), limit=1)
    assert len(frames) == 1 and truncated


def test_run_results_read_the_manifest_the_records_and_each_items_newest_mmif(run):
    got = reader.run_results(run.layout.root, [])
    assert got["steps"] == ["asr", "seg", "check"]  # from the manifest
    assert got["counts"]["total"] == 2 and got["counts"]["succeeded"] == 1 and got["counts"]["failed"] == 1
    ok, bad = got["items"]
    assert (ok["index"], ok["name"], ok["state"], ok["mmif"]) == (
        0,
        "a",
        "Succeeded",
        "items/00000/final.mmif",
    )
    assert [v["appIdentifier"] for v in ok["summary"]["views"]] == [TEXTGEN, TIMEFRAMES, FAILER]
    assert (bad["state"], bad["failedStep"], bad["reason"]) == ("Failed", "check", "AppError")
    assert bad["mmif"] == "items/00001/02-check.mmif"  # no final.mmif: the failed step's kept MMIF
    assert [(s["step"], s["state"], s["hasLog"]) for s in bad["steps"]] == [
        ("asr", "Succeeded", True),
        ("seg", "Succeeded", True),
        ("check", "Failed", True),
    ]
    one = reader.run_results(run.layout.root, [], "boom")
    assert [i["index"] for i in one["items"]] == [1] and one["itemCount"] == 1
    capped = reader.run_results(run.layout.root, [], limit=1)
    assert len(capped["items"]) == 1 and capped["truncated"] and capped["itemCount"] == 2


def test_items_are_named_by_index_or_name_and_what_is_missing_is_said(run):
    steps = ["asr", "seg", "check"]
    assert reader.item_mmif(run.layout.root, steps, "1")["path"] == "items/00001/02-check.mmif"
    view = reader.item_view(run.layout.root, steps, "a", "v_1")["view"]
    assert view["id"] == "v_1" and view["metadata"]["app"] == TIMEFRAMES and len(view["annotations"]) == 2
    with pytest.raises(reader.NotFound, match="no view 'v_7'; the views are v_0, v_1, v_2"):
        reader.item_view(run.layout.root, steps, "a", "v_7")
    with pytest.raises(reader.NotFound, match="the run has 2 item"):
        reader.item_mmif(run.layout.root, steps, "5")
    with pytest.raises(reader.NotFound, match="no item named 'zzz'"):
        reader.item_mmif(run.layout.root, steps, "zzz")
    with pytest.raises(reader.NotFound, match="was not prepared"):
        reader.run_results(str(run.ws / "mmif-runs" / "other"), steps)


def test_the_runner_logs_each_item_step_beside_its_record(run):
    text = pathlib.Path(step_log(run.layout, 1, 2, "check")).read_text()
    assert "item 1 (boom) step 2 (check): started" in text and '"failOn": "boom"' in text
    assert "the app answered HTTP 500" in text
    assert "finished: Failed (AppError, exit 1): " in text and "failOn 'boom' matched" in text
    got = reader.item_step_log(run.layout.root, ["asr", "seg", "check"], "boom", "check")
    assert got["path"] == "items/00001/02-check.log" and got["log"] == text
    with pytest.raises(reader.NotFound, match="no step 'nope'"):
        reader.item_step_log(run.layout.root, ["asr", "seg", "check"], "boom", "nope")


def test_a_retry_appends_to_the_step_log(run, apps):
    before = pathlib.Path(step_log(run.layout, 1, 2, "check")).read_text()
    assert run.step(1, 2, apps["failer"][0], {"failOn": "boom"})[0] == 1
    after = pathlib.Path(step_log(run.layout, 1, 2, "check")).read_text()
    assert after.startswith(before) and after.count("started") == 2


def test_the_step_log_is_bounded(tmp_path):
    path = str(tmp_path / "items" / "00000" / "00-asr.log")
    logger = logging.getLogger("test-steplog")
    logger.setLevel(logging.INFO)
    handler = steplog.attach(logger, path, limit=1000)
    try:
        for n in range(100):
            logger.info("line %d %s", n, "x" * 20)
    finally:
        steplog.detach(logger, handler)
    data = pathlib.Path(path).read_bytes()
    assert len(data) <= 1000
    assert data.decode().endswith(
        "(the runner log reached its bound of 1000 bytes: later lines are not kept)\n"
    )
    assert "line 0 " in data.decode()
    handler = steplog.attach(logger, path, limit=1000)  # a later attempt adds nothing more
    logger.info("more")
    steplog.detach(logger, handler)
    assert pathlib.Path(path).read_bytes() == data


def test_show_prints_one_marked_json_line(run):
    out = io.StringIO()
    with redirect_stdout(out):
        code = show.main(["summary", "--run-dir", run.layout.root, "--steps", "asr,seg,check", "--item", "a"])
    assert code == 0
    (line,) = out.getvalue().splitlines()
    assert line.startswith(show.MARKER)
    answer = json.loads(line[len(show.MARKER) :])
    assert answer["ok"] and answer["result"]["items"][0]["name"] == "a"
    out = io.StringIO()
    with redirect_stdout(out):
        code = show.main(["view", "--run-dir", run.layout.root, "--item", "a", "--view", "v_9"])
    assert code == 1
    answer = json.loads(out.getvalue()[len(show.MARKER) :])
    assert answer == {
        "ok": False,
        "error": "item 0 (a), items/00000/final.mmif: no view 'v_9'; the views are v_0, v_1, v_2",
    }
