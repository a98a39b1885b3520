"""Records (operator/mmif_operator/records/): lineage from real MMIF made by the test apps,
checked against the shipped JSON Schema; the content-addressed store that never overwrites; and
search over its index."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from datetime import UTC, datetime

import pytest

from mmif_operator.records import lineage as LIN
from mmif_operator.records import search as S
from mmif_operator.records import store


@pytest.fixture(scope="module")
def step_mmifs(app_chain):
    return app_chain.steps


def publication(**over) -> LIN.Publication:
    fields = dict(
        run_name="run-1",
        run_namespace="oral-history",
        run_uid="uid-1",
        item_index=0,
        item_name="a",
        pipeline_name="transcribe",
        pipeline_generation=2,
        decision="Pass",
        reviewer="alice",
        comment="looks right",
        decided_at="2026-12-01T12:00:00Z",
        requester={"username": "bob", "groups": ["archive-team"]},
        project="oral-history",
        legal_tags=("internal-research",),
        acl={"owners": ["archivists"]},
        step_images={"text": "mmif.local/clams-textgen:dev", "frames": "mmif.local/clams-timeframes:dev"},
    )
    fields.update(over)
    return LIN.Publication(**fields)


def make_lineage(step_mmifs, pub=None, data=None):
    final = data if data is not None else step_mmifs[-1][1].encode()
    sha = hashlib.sha256(final).hexdigest()
    views = LIN.view_entries(step_mmifs[-1][1], LIN.steps_of_views(step_mmifs))
    inputs = [LIN.Input("a.mp4", "video/mp4", hashlib.sha256(b"not really a video").hexdigest())]
    return final, LIN.lineage(
        pub or publication(),
        sha256=sha,
        size=len(final),
        path=store.object_path(sha),
        inputs=inputs,
        views=views,
    )


def test_lineage_names_each_views_app_version_step_image_and_annotation_counts(step_mmifs):
    _, doc = make_lineage(step_mmifs)
    LIN.validate(doc)
    steps = doc["steps"]
    assert [s["step"] for s in steps] == ["text", "frames"]
    assert all(s["app"].startswith("http") for s in steps)
    assert steps[0]["image"] == "mmif.local/clams-textgen:dev"
    assert steps[1]["annotations"].get("TimeFrame", 0) > 0
    assert doc["review"] == {
        "decision": "Pass",
        "reviewer": "alice",
        "comment": "looks right",
        "decidedAt": "2026-12-01T12:00:00Z",
    }
    assert doc["run"]["requester"] == {"username": "bob", "groups": ["archive-team"]}
    assert doc["legalTags"] == ["internal-research"]


def test_app_version_is_read_from_the_app_identifier():
    assert LIN.app_version("http://apps.clams.ai/whisper-wrapper/v8") == "v8"
    assert LIN.app_version("http://apps.clams.ai/swt-detection/v7.1/") == "v7.1"
    assert LIN.app_version("http://apps.clams.ai/textgen/unresolvable") is None


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (lambda d: d["record"].update(sha256="abc"), "record/sha256"),
        (lambda d: d["review"].update(decision="Fail"), "review/decision"),
        (lambda d: d.pop("legalTags"), "(the document)"),
        (lambda d: d["inputs"][0].update(sha256="not-a-digest"), "inputs/0/sha256"),
    ],
)
def test_a_lineage_that_breaks_the_schema_is_refused_naming_the_field(step_mmifs, broken, field):
    _, doc = make_lineage(step_mmifs)
    broken(doc)
    with pytest.raises(LIN.LineageError, match=re.escape(f"lineage {field}")):
        LIN.validate(doc)


def test_the_store_keeps_the_bytes_read_only_and_never_overwrites(step_mmifs, tmp_path):
    final, doc = make_lineage(step_mmifs)
    put = store.put(str(tmp_path), final, doc)
    assert put.new and put.id == f"sha256:{hashlib.sha256(final).hexdigest()}"
    path = tmp_path / put.path
    assert path.read_bytes() == final
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert json.loads((tmp_path / put.lineage_path).read_text()) == doc

    # A retried publish: nothing new, one index line.
    again = store.put(str(tmp_path), final, doc)
    assert not again.new
    assert len((tmp_path / store.INDEX).read_text().splitlines()) == 1

    # The same bytes from another run: the same record, its first lineage kept.
    _, other = make_lineage(step_mmifs, publication(run_name="run-2", run_uid="uid-2"))
    store.put(str(tmp_path), final, other)
    assert json.loads((tmp_path / put.lineage_path).read_text())["run"]["name"] == "run-1"

    # Other bytes at a record's name: refused, left as they are.
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(store.RecordConflict, match="never overwritten"):
        store.put(str(tmp_path), final, doc)
    assert path.read_bytes() == b"tampered"


def test_a_lineage_of_other_bytes_is_refused(step_mmifs, tmp_path):
    _, doc = make_lineage(step_mmifs)
    with pytest.raises(ValueError, match="another record"):
        store.put(str(tmp_path), b"other bytes", doc)


def test_search_by_input_app_legal_tag_run_and_time_newest_first(step_mmifs, tmp_path):
    root = str(tmp_path)
    for n in range(5):
        data = step_mmifs[-1][1].encode() + b" " * n  # distinct bytes, each valid MMIF
        pub = publication(
            run_name=f"run-{n % 2}",
            item_index=n,
            decided_at=f"2026-12-0{n + 1}T00:00:00Z",
            legal_tags=("public-domain",) if n == 3 else ("internal-research",),
        )
        _, doc = make_lineage(step_mmifs, pub, data)
        store.put(root, data, doc)
    everything = S.search(root, S.Query())
    assert [e["item"] for e in everything] == [4, 3, 2, 1, 0]
    assert [e["item"] for e in S.search(root, S.Query(run="run-1"))] == [3, 1]
    assert [e["item"] for e in S.search(root, S.Query(legal_tag="public-domain"))] == [3]
    assert len(S.search(root, S.Query(app="timeframes"))) == 5
    assert S.search(root, S.Query(app="whisper")) == []
    digest = hashlib.sha256(b"not really a video").hexdigest()
    assert len(S.search(root, S.Query(input=digest))) == 5
    assert len(S.search(root, S.Query(input="a.mp4"))) == 5
    window = S.Query(since=datetime(2026, 12, 2, tzinfo=UTC), until=datetime(2026, 12, 4, tzinfo=UTC))
    assert [e["item"] for e in S.search(root, window)] == [2, 1]
    assert [e["item"] for e in S.search(root, S.Query(limit=2))] == [4, 3]


def test_a_line_written_twice_by_a_killed_publish_is_one_search_result(step_mmifs, tmp_path):
    final, doc = make_lineage(step_mmifs)
    put = store.put(str(tmp_path), final, doc)
    # As if the publisher was killed after appending the line but before making the marker.
    (tmp_path / store.indexed_marker(put.id.split(":", 1)[1])).unlink()
    store.put(str(tmp_path), final, doc)
    assert len((tmp_path / store.INDEX).read_text().splitlines()) == 2
    assert [e["id"] for e in S.search(str(tmp_path), S.Query())] == [put.id]


def test_only_the_publish_pod_mounts_the_record_store_read_write_with_the_lineage_context():
    from mmif_operator.kinds.pipelinerun import children as J
    from mmif_operator.kinds.project.planning import RecordTarget
    from mmif_operator.records.publisher import RecordsContext
    from tests.unit.typed import ctx, pipe, runspec

    run = {"metadata": {"name": "run-1", "namespace": "oral-history", "uid": "u1"}}
    spec = runspec(
        {
            "pipelineRef": {"name": "transcribe"},
            "workspace": {"claimName": "media"},
            "items": [{"documents": [{"location": "a.mp4", "mimeType": "video/mp4"}]}],
            "legalTags": ["internal-research"],
            "acl": {"owners": ["archivists"]},
            "requester": {"username": "bob", "groups": ["archive-team"]},
        }
    )
    run["spec"] = spec.to_dict()
    pipeline = pipe({"steps": [{"name": "text", "image": "mmif.local/clams-textgen:dev"}]})
    target = RecordTarget("oral-history", "OH-1", "records", "/records")
    job = J.publish_job(ctx(run), "op:dev", {"decision": "Pass"}, "/data/m.json", target, spec, pipeline)
    pod = job["spec"]["template"]["spec"]
    (runner,) = pod["containers"]
    mounts = {m["name"]: m for m in runner["volumeMounts"]}
    assert mounts["records"]["mountPath"] == "/records" and not mounts["records"].get("readOnly")
    assert {"name": "records", "persistentVolumeClaim": {"claimName": "records"}} in pod["volumes"]
    env = {e["name"]: e.get("value") for e in runner["env"]}
    context = RecordsContext.from_json(env["MMIF_RECORDS"])
    assert (context.dir, context.workspace, context.project, context.project_id) == (
        "/records",
        "/data",
        "oral-history",
        "OH-1",
    )
    assert context.legal_tags == ("internal-research",) and context.acl == {"owners": ["archivists"]}
    assert context.requester == {"username": "bob", "groups": ["archive-team"]}
    assert context.step_images == {"text": "mmif.local/clams-textgen:dev"}
    # Without a store (no project, or none configured): no mount, no context.
    plain = J.publish_job(ctx(run), "op:dev", {"decision": "Pass"}, "/data/m.json")
    assert all(v["name"] != "records" for v in plain["spec"]["template"]["spec"]["volumes"])


def test_the_reader_pod_answers_record_searches_and_reads_a_lineage(step_mmifs, tmp_path):
    from mmif_operator.results import show

    final, doc = make_lineage(step_mmifs)
    put = store.put(str(tmp_path), final, doc)
    found = show.answer(["records", "--store", str(tmp_path), "--legal-tag", "internal-research"])
    assert found["ok"] and [r["id"] for r in found["result"]["records"]] == [put.id]
    none = show.answer(["records", "--store", str(tmp_path), "--app", "whisper"])
    assert none == {"ok": True, "result": {"records": []}}
    one = show.answer(["record", "--store", str(tmp_path), "--id", put.id, "--record-mmif"])
    assert one["result"]["lineage"] == doc and one["result"]["mmif"].encode() == final
    missing = show.answer(["record", "--store", str(tmp_path), "--id", "sha256:" + "0" * 64])
    assert missing["ok"] is False and "no record" in missing["error"]


def test_kubectl_mmif_records_searches_through_a_read_only_reader_pod_of_the_store():
    from mmif_operator.cli import records as R
    from mmif_operator.cli.main import parser

    args = parser().parse_args(["records", "--app", "whisper", "--legal-tag", "public-domain"])
    pod = R._pod(None, args, ["records", "--app", "whisper"])  # type: ignore[arg-type]
    (container,) = pod["spec"]["containers"]
    assert container["command"][:3] == ["mmif-runner", "show", "records"]
    assert container["command"][-2:] == ["--store", "/records"]
    assert pod["spec"]["volumes"][0] == {
        "name": "workspace",
        "persistentVolumeClaim": {"claimName": "records", "readOnly": True},
    }
    assert container["volumeMounts"][0]["readOnly"] is True
    table = R.render_records(
        [{"id": "sha256:" + "a" * 64, "publishedAt": "2026-12-01T12:00:00Z", "run": "r1", "item": 0,
          "apps": ["http://apps.clams.ai/whisper-wrapper/v8"], "legalTags": ["public-domain"],
          "inputs": [{"location": "media/clip.mp4"}]}]
    )  # fmt: skip
    assert table.row_count == 1
