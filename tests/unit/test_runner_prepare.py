"""mmif-runner prepare: validates the batch, claims the run folder, writes items.jsonl."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from mmif_operator.runner import cli, inputs
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import ExitCode
from mmif_operator.runner.paths import RunLayout, run_dir

UID = "uid-1111"


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "data"
    (root / "media").mkdir(parents=True)
    for name in ("a.mp4", "b.wav", "c.txt"):
        (root / "media" / name).write_bytes(b"x")
    (root / "prev.mmif").write_text("{}")
    return root


def items_file(ws, items, owner=UID):
    """The inline items as the operator's ConfigMap gives them to the prepare pod."""
    path = ws.parent / "items.json.z"
    path.write_bytes(inputs.encode(owner, {"items": items}))
    return str(path)


def prepare(monkeypatch, ws, *, items=None, items_from=None, raw_file=None, uid=UID, run="run-1"):
    term = ws.parent / "termination-log"
    for name in E.PREPARE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(E.WORKSPACE, str(ws))
    monkeypatch.setenv(E.RUN_DIR, run_dir(run, str(ws)))
    monkeypatch.setenv(E.RUN_UID, uid)
    monkeypatch.setenv(E.TERMINATION_LOG, str(term))
    if items is not None or raw_file is not None:
        monkeypatch.setenv(E.ITEMS_FILE, raw_file if raw_file is not None else items_file(ws, items, uid))
    if items_from is not None:
        monkeypatch.setenv(E.ITEMS_FROM, items_from)
    code = cli.main(["prepare"])
    text = term.read_text()
    assert text.count("\n") == 1, "the termination message is one line"
    return code, json.loads(text)


def layout(ws, run="run-1"):
    return RunLayout(run_dir(run, str(ws)))


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_prepare_normalises_inline_items_and_reports_the_count(monkeypatch, ws):
    items = [
        {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}]},
        {
            "name": "two",
            "documents": [
                {"location": "media/b.wav", "mimeType": "audio/wav"},
                {"location": "./media/c.txt", "mimeType": "text/plain"},
            ],
        },
        {"mmif": "prev.mmif"},
    ]
    code, term = prepare(monkeypatch, ws, items=items)
    assert code == ExitCode.OK
    assert term == {"items": 3}
    lay = layout(ws)
    assert pathlib.Path(lay.run_uid).read_text().strip() == UID
    assert read_jsonl(lay.items) == [
        {
            "index": 0,
            "name": "item-00000",
            "documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}],
        },
        {
            "index": 1,
            "name": "two",
            "documents": [
                {"location": "media/b.wav", "mimeType": "audio/wav"},
                {"location": "media/c.txt", "mimeType": "text/plain"},
            ],
        },
        {"index": 2, "name": "item-00002", "mmif": "prev.mmif"},
    ]
    assert not [n for n in os.listdir(lay.root) if ".tmp-" in n], "no temporary files left"


def test_prepare_reads_items_from_a_json_lines_file(monkeypatch, ws):
    (ws / "batch.jsonl").write_text(
        '{"name": "x", "documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}]}\n'
        "\n"
        '{"mmif": "prev.mmif"}\n'
    )
    code, term = prepare(monkeypatch, ws, items_from="batch.jsonl")
    assert (code, term) == (ExitCode.OK, {"items": 2})
    assert [i["name"] for i in read_jsonl(layout(ws).items)] == ["x", "item-00001"]


def test_prepare_rejects_a_missing_document_naming_item_and_path(monkeypatch, ws):
    items = [
        {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}]},
        {"name": "clip", "documents": [{"location": "media/nope.mp4", "mimeType": "video/mp4"}]},
    ]
    code, term = prepare(monkeypatch, ws, items=items)
    assert code == ExitCode.INVALID_INPUT == 4
    assert term["reason"] == "InvalidItems"
    assert term["message"] == "item 1 (clip): documents[0].location 'media/nope.mp4' does not exist"
    assert not os.path.exists(layout(ws).root), "an invalid batch claims no folder"


@pytest.mark.parametrize(
    "location, why",
    [
        ("../outside.mp4", "'..' segment"),
        ("media/../../outside.mp4", "'..' segment"),
        ("/etc/passwd", "leading '/'"),
        ("link/secret.mp4", "out of the workspace"),
    ],
)
def test_prepare_rejects_paths_that_leave_the_workspace(monkeypatch, ws, location, why):
    (ws.parent / "outside.mp4").write_bytes(b"x")
    os.makedirs(ws.parent / "elsewhere", exist_ok=True)
    (ws.parent / "elsewhere" / "secret.mp4").write_bytes(b"x")
    os.symlink(ws.parent / "elsewhere", ws / "link")
    code, term = prepare(
        monkeypatch, ws, items=[{"documents": [{"location": location, "mimeType": "video/mp4"}]}]
    )
    assert code == ExitCode.INVALID_INPUT
    assert why in term["message"]


def test_prepare_reports_the_first_problems_of_many(monkeypatch, ws):
    items = [
        {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}], "mmif": "prev.mmif"},
        {"documents": [{"location": "media/a.mp4", "mimeType": "application/pdf"}]},
        {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}] * 11},
        {"mmif": "missing.mmif", "colour": "red"},
        "not an object",
        {"documents": []},
        {"name": "x" * 64, "mmif": "prev.mmif"},
    ]
    code, term = prepare(monkeypatch, ws, items=items)
    assert code == ExitCode.INVALID_INPUT
    assert term["problemCount"] == 8
    assert len(term["problems"]) == 5
    assert term["problems"][0] == "item 0 (item-00000): needs exactly one of 'documents', 'mmif' and 'record'"
    assert "application/pdf" in term["problems"][1]
    assert "1 to 10 entries" in term["problems"][2]
    assert "unknown field(s) 'colour'" in term["problems"][3]
    assert "mmif 'missing.mmif' does not exist" in term["problems"][4]
    assert term["message"].endswith("; and 3 more")


def test_prepare_rejects_an_items_file_with_a_broken_line(monkeypatch, ws):
    (ws / "batch.jsonl").write_text('{"mmif": "prev.mmif"}\n{oops\n')
    code, term = prepare(monkeypatch, ws, items_from="batch.jsonl")
    assert code == ExitCode.INVALID_INPUT
    assert term["message"].startswith("item 1 (line 2): not JSON")


def test_prepare_rejects_an_empty_batch_and_a_missing_items_file(monkeypatch, ws):
    code, term = prepare(monkeypatch, ws, items=[])
    assert (code, term["message"]) == (ExitCode.INVALID_INPUT, "the batch holds no items")
    code, term = prepare(monkeypatch, ws, items_from="nope.jsonl")
    assert code == ExitCode.INVALID_INPUT and "cannot read the items file" in term["message"]


def test_prepare_retried_with_the_same_uid_succeeds_again(monkeypatch, ws):
    items = [{"mmif": "prev.mmif"}]
    assert prepare(monkeypatch, ws, items=items) == (ExitCode.OK, {"items": 1})
    step_output = os.path.join(layout(ws).item_dir(0), "00-asr.mmif")
    os.makedirs(os.path.dirname(step_output))
    pathlib.Path(step_output).write_text("{}")
    assert prepare(monkeypatch, ws, items=items) == (ExitCode.OK, {"items": 1})
    assert os.path.exists(step_output)


def test_prepare_never_touches_the_folder_of_another_run(monkeypatch, ws):
    items = [{"mmif": "prev.mmif"}]
    assert prepare(monkeypatch, ws, items=items, uid="uid-old")[0] == ExitCode.OK
    before = pathlib.Path(layout(ws).items).read_bytes()
    code, term = prepare(monkeypatch, ws, items=items + items, uid="uid-new")
    assert code == ExitCode.OUTPUT_CONFLICT == 5
    assert term["reason"] == "OutputConflict" and "uid-old" in term["message"]
    assert pathlib.Path(layout(ws).run_uid).read_text().strip() == "uid-old"
    assert pathlib.Path(layout(ws).items).read_bytes() == before


def test_prepare_refuses_a_non_empty_folder_without_a_marker(monkeypatch, ws):
    os.makedirs(layout(ws).root)
    pathlib.Path(layout(ws).root, "results.csv").write_text("mine\n")
    code, term = prepare(monkeypatch, ws, items=[{"mmif": "prev.mmif"}])
    assert code == ExitCode.OUTPUT_CONFLICT and "results.csv" in term["message"]
    assert not os.path.exists(layout(ws).run_uid)


def test_prepare_without_items_is_a_configuration_error(monkeypatch, ws):
    code, term = prepare(monkeypatch, ws)
    assert code == ExitCode.INVALID_CONFIG and term["reason"] == "InvalidConfig"


def test_prepare_reads_1000_items_of_6_documents_from_the_mounted_file(monkeypatch, ws):
    items = [
        {"name": f"clip-{n}", "documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}] * 6}
        for n in range(1000)
    ]
    assert prepare(monkeypatch, ws, items=items) == (ExitCode.OK, {"items": 1000})


def test_prepare_refuses_an_items_file_made_for_another_run_or_unreadable(monkeypatch, ws):
    other = items_file(ws, [{"mmif": "prev.mmif"}], owner="uid-of-bob")
    code, term = prepare(monkeypatch, ws, raw_file=other)
    assert (code, term["reason"]) == (ExitCode.INVALID_INPUT, "InvalidItems")
    assert "was made for 'uid-of-bob', not for 'uid-1111'" in term["message"]
    assert not os.path.exists(layout(ws).root), "nothing claimed"
    (ws.parent / "broken").write_bytes(b"not zlib")
    code, term = prepare(monkeypatch, ws, raw_file=str(ws.parent / "broken"))
    assert code == ExitCode.INVALID_INPUT and "cannot be decoded" in term["message"]
    code, term = prepare(monkeypatch, ws, raw_file=str(ws.parent / "missing"))
    assert code == ExitCode.INVALID_INPUT and "cannot read the inline items" in term["message"]
