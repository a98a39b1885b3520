"""The operator end to end, as a user drives it: a two-step pipeline (a Job-mode app inside each
item's pod, then a Service-mode app behind a Service) over five items on a shared volume."""

from __future__ import annotations

import hashlib
import json
import posixpath

import pytest
from mmif import Mmif

from tests import kube

pytestmark = pytest.mark.cluster

ITEMS = 5


def test_a_two_step_pipeline_runs_five_items_into_valid_mmif(
    operator_deployed, namespace, workspace, build, runs
):
    media = {f"media/clip-{i}.mp4": f"not really a video, number {i}\n".encode() for i in range(ITEMS)}
    workspace.write_media(media)
    build.apply(
        build.pipeline(
            "transcribe",
            [
                build.step("transcript", "textgen"),  # Job mode
                build.step("segments", "timeframes", mode="Service", parameters={"count": "2"}),
            ],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    items = [build.item(location, name=f"clip-{i}") for i, location in enumerate(media)]
    build.apply(build.run("batch-1", "transcribe", items, claim_name=workspace.claim_name), namespace)

    run = runs.wait_to_finish(namespace, "batch-1", timeout=420)
    condition = runs.condition(run)
    assert condition.get("status") == "True", (
        f"the run ended {condition}\n{runs.diagnostics(namespace, 'batch-1')}"
    )
    # What a user runs; the condition is already there, so this returns at once.
    kube.wait("pipelinerun/batch-1", "condition=Succeeded", namespace, timeout=30)

    status = run["status"]
    assert status["phase"] == "Succeeded"
    assert (status["itemCount"], status["itemsSucceeded"], status["itemsFailed"]) == (ITEMS, ITEMS, 0)
    assert status["progress"] == f"{ITEMS}/{ITEMS}"
    assert status["outputPath"] == f"{workspace.mount_path}/mmif-runs/batch-1"
    assert status["manifestPath"] == f"{status['outputPath']}/manifest.json"

    manifest = json.loads(workspace.read_file(status["manifestPath"]))
    assert manifest["steps"] == ["transcript", "segments"]
    assert manifest["counts"]["total"] == ITEMS and manifest["counts"]["succeeded"] == ITEMS
    entries = manifest["items"]
    assert [(e["index"], e["name"], e["state"]) for e in entries] == [
        (i, f"clip-{i}", "Succeeded") for i in range(ITEMS)
    ]

    textgen, timeframes = build.app_identifier("textgen"), build.app_identifier("timeframes")
    for entry, location in zip(entries, media, strict=True):
        assert entry["output"] == f"items/{entry['index']:05d}/final.mmif"
        data = workspace.read_file(posixpath.join(status["outputPath"], entry["output"]))
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        mmif = Mmif(data.decode())  # validates against the MMIF schema
        assert [v.metadata.app for v in mmif.views] == [textgen, timeframes], entry
        assert not any(v.has_error() for v in mmif.views)
        source = f"file://{workspace.mount_path}/{location}"
        assert [d.location for d in mmif.documents if d.location] == [source]
        transcript, segments = mmif.views
        assert [d.text_value for d in transcript.get_documents()] == [f"transcript of {source}"]
        assert len(list(segments.get_annotations())) == 2  # the step's parameters: count=2
