"""`mmif-runner publish` with a record store: each Succeeded item's final MMIF becomes a record,
byte-identical, with a lineage that validates; the manifest lists the records; a retry changes
nothing; a record name holding other bytes fails the publish (OutputConflict) and is left as it is."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import pytest

from mmif_operator.records import lineage as LIN
from mmif_operator.records import search as S
from mmif_operator.records import store
from mmif_operator.records.publisher import RecordsContext
from mmif_operator.runner import files
from mmif_operator.runner.exitcodes import ExitCode
from mmif_operator.runner.paths import RUN_UID_FILE, RunLayout
from mmif_operator.runner.publish import PublishConfig, run_publish


@pytest.fixture
def run_folder(app_chain, tmp_path):
    """A finished run of two items (item 0 Succeeded through both steps, item 1 Failed) in a
    workspace that holds the media, and an empty record store."""
    layout = RunLayout(str(app_chain.workspace / "mmif-runs" / f"run-{tmp_path.name}"))
    os.makedirs(layout.item_dir(0))
    os.makedirs(layout.item_dir(1))
    with open(os.path.join(layout.root, RUN_UID_FILE), "w") as f:
        f.write("uid-1")
    with open(layout.source_mmif(0), "w") as f:
        f.write(app_chain.source)
    for k, (step, text) in enumerate(app_chain.steps):
        with open(layout.step_mmif(0, k, step), "w") as f:
            f.write(text)
    with open(layout.final_mmif(0), "w") as f:
        f.write(app_chain.steps[-1][1])
    items = [
        {"index": 0, "name": "a", "state": "Succeeded", "finishedAt": "2026-12-01T11:00:00Z"},
        {"index": 1, "name": "b", "state": "Failed", "failedStep": "text"},
    ]
    files.atomic_write_json(layout.manifest, {"run": "run-1", "steps": ["text", "frames"], "items": items})
    records = tmp_path / "records"
    records.mkdir()
    return layout, str(records), str(app_chain.workspace)


def config(layout, records_dir, workspace, tmp_path) -> PublishConfig:
    ctx = RecordsContext(
        dir=records_dir,
        workspace=workspace,
        pipeline="transcribe",
        pipeline_generation=3,
        project="oral-history",
        requester={"username": "bob"},
        legal_tags=("internal-research",),
        acl={"owners": ["archivists"]},
        step_images={"text": "mmif.local/clams-textgen:dev"},
    )
    return PublishConfig(
        run_dir=layout.root,
        run_name="run-1",
        run_namespace="oral-history",
        run_uid="uid-1",
        manifest_path=layout.manifest,
        decision="Pass",
        comment="fine",
        reviewer="alice",
        decided_at="2026-12-01T12:00:00Z",
        termination_log=str(tmp_path / "termination-log"),
        records=ctx,
    )


def test_each_passed_item_becomes_a_byte_identical_record_with_its_lineage(run_folder, tmp_path):
    layout, records_dir, workspace = run_folder
    cfg = config(layout, records_dir, workspace, tmp_path)
    assert run_publish(cfg) == ExitCode.OK
    final = pathlib.Path(layout.final_mmif(0)).read_bytes()
    sha = hashlib.sha256(final).hexdigest()
    assert pathlib.Path(records_dir, store.object_path(sha)).read_bytes() == final
    doc = json.loads(pathlib.Path(records_dir, store.lineage_path(sha)).read_text())
    LIN.validate(doc)
    assert doc["inputs"] == [
        {
            "location": "a.mp4",
            "mimeType": "video/mp4",
            "sha256": hashlib.sha256(b"not really a video").hexdigest(),
            "record": None,
        }
    ]
    assert [s["step"] for s in doc["steps"]] == ["text", "frames"]
    assert (doc["pipeline"], doc["review"]["reviewer"], doc["legalTags"]) == (
        {"name": "transcribe", "generation": 3},
        "alice",
        ["internal-research"],
    )
    published = files.read_json(layout.manifest)["published"]
    assert published["records"] == [{"item": 0, "name": "a", "id": f"sha256:{sha}"}]  # not the failed item
    assert json.loads(pathlib.Path(cfg.termination_log).read_text())["records"] == 1
    assert [e["id"] for e in S.search(records_dir, S.Query(run="run-1"))] == [f"sha256:{sha}"]

    # Retried (the pod was retried, the operator restarted): the same bytes, nothing new.
    before = pathlib.Path(os.path.join(records_dir, store.INDEX)).read_text()
    assert run_publish(cfg) == ExitCode.OK
    assert pathlib.Path(os.path.join(records_dir, store.INDEX)).read_text() == before


def test_a_record_name_holding_other_bytes_fails_the_publish_and_is_left(run_folder, tmp_path):
    layout, records_dir, workspace = run_folder
    final = pathlib.Path(layout.final_mmif(0)).read_bytes()
    path = os.path.join(records_dir, store.object_path(hashlib.sha256(final).hexdigest()))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"someone else's bytes")
    cfg = config(layout, records_dir, workspace, tmp_path)
    assert run_publish(cfg) == ExitCode.OUTPUT_CONFLICT
    assert pathlib.Path(path).read_bytes() == b"someone else's bytes"
    assert "published" not in files.read_json(layout.manifest)
    assert "never overwritten" in json.loads(pathlib.Path(cfg.termination_log).read_text())["message"]
