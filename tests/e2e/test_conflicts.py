"""Conflicts at publish time on the real cluster (issue 12 part 4): two projects whose runs start
from the same parent record. Project B's claim `records` mounts project A's store (a volume of its
own on the same directory, tests/projects.py `share_store`), so the record A published is a record
of both, and runs in both start from it.

(a) A's run, passed with the default policy while B's run works from the same record, is blocked:
`Conflict=True ConflictsFound` naming B's project and run and the item, `status.conflicts`
listing it, the run still AwaitingReview (`PublishBlocked`), nothing published; B's run is told
(a `Conflict` Event). Passed again with `kubectl mmif review pass --on-conflict Supersede`, it
publishes, and its record's lineage names what it supersedes (and validates).
(b) B's run, passed after that, meets the newer version of its parent that A just published:
blocked the same way (`NewerVersion`, A's project and run); passed with Supersede, it publishes.
Users by impersonation (the projects' admin reviews)."""

from __future__ import annotations

import json

import pytest

from mmif_operator.records import lineage as LIN
from tests import kube
from tests import runs as R
from tests.objects import apply, item, pipeline, run, step
from tests.projects import (
    ADMIN,
    as_user,
    create_as_contributor,
    mmif_as,
    mmif_as_contributor,
    pass_review,
    record_project,
)
from tests.volume import Workspace

pytestmark = pytest.mark.cluster


def pipelines(ns: str) -> None:
    apply(
        [
            pipeline("text", [step("text", "textgen")], claim_name="media", review={"required": True}),
            pipeline("frames", [step("frames", "timeframes")], claim_name="media", review={"required": True}),
        ],
        ns,
    )


def awaiting_review(ns: str, name: str) -> dict:
    def probe():
        obj = kube.get("pipelinerun", name, ns)
        if R.succeeded_condition(obj).get("status") == "False":
            raise AssertionError(R.run_diagnostics(ns, name))
        return obj if obj["status"].get("phase") == "AwaitingReview" else None

    return kube.eventually(probe, timeout=240, interval=1, what=f"{name} AwaitingReview")


def pass_as_admin(ns: str, name: str, *more: str) -> None:
    """`kubectl mmif review pass NAME --comment ...` as the project's admin."""
    done = mmif_as(
        ADMIN, "system:authenticated", "review", "pass", name, "--comment", "checked", *more, namespace=ns
    )
    assert done.returncode == 0, done.stderr


def blocked(ns: str, name: str) -> dict:
    """Wait until the passed run's publishing is blocked by conflicts; the run."""

    def probe():
        obj = kube.get("pipelinerun", name, ns)
        cond = {c["type"]: c for c in obj["status"].get("conditions") or []}
        if R.succeeded_condition(obj).get("status") in ("True", "False"):
            raise AssertionError(f"{name} ended instead of being blocked:\n{R.run_diagnostics(ns, name)}")
        conflict = cond.get("Conflict") or {}
        return obj if conflict.get("reason") == "ConflictsFound" else None

    return kube.eventually(probe, timeout=60, interval=1, what=f"{name} blocked by conflicts")


def conflict_events(ns: str, run_name: str) -> list[dict]:
    got = kube.kubectl(
        "get", "events", "-n", ns, "-o", "json",
        "--field-selector", f"involvedObject.kind=PipelineRun,involvedObject.name={run_name},reason=Conflict",
    )  # fmt: skip
    return json.loads(got.stdout)["items"]


def lineage_of_published(ns: str, media: Workspace, finished: dict) -> dict:
    (record,) = json.loads(media.read_file(finished["status"]["manifestPath"]))["published"]["records"]
    shown = mmif_as_contributor("record", record["id"], namespace=ns)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    LIN.validate(doc)
    return doc


@pytest.fixture
def project_a(cluster, operator_deployed):
    with record_project("cfa") as name:
        yield name


def test_conflicts_across_two_projects_and_after_a_newer_version_block_then_supersede(project_a):
    a = project_a
    media_a = Workspace(a, "media")
    media_a.write_media({"media/clip.mp4": b"not really a video\n"})
    pipelines(a)
    create_as_contributor(run("r0", "text", [item("media/clip.mp4", name="clip")]), a)
    first = pass_review(a, "r0")
    assert R.condition(first)["status"] == "True", R.diagnostics(a, "r0")
    (parent,) = json.loads(media_a.read_file(first["status"]["manifestPath"]))["published"]["records"]
    parent_id = parent["id"]

    with record_project("cfb", store_of=a) as b:
        media_b = Workspace(b, "media")
        media_b.write_media({"media/clip.mp4": b"not really a video\n"})  # the record's document, there too
        pipelines(b)
        # Both projects start an item from the same record; both runs reach review.
        create_as_contributor(run("rb", "frames", [{"name": "from-b", "record": parent_id}]), b)
        create_as_contributor(run("ra", "frames", [{"name": "from-a", "record": parent_id}]), a)
        awaiting_review(b, "rb")
        awaiting_review(a, "ra")

        # (a) Passed with the default policy while B works from the same record: blocked.
        pass_as_admin(a, "ra")
        ra = blocked(a, "ra")
        cond = {c["type"]: c for c in ra["status"]["conditions"]}
        assert cond["Conflict"]["status"] == "True", cond
        assert f"project {b} run rb" in cond["Conflict"]["message"], cond
        assert "from-a" in cond["Conflict"]["message"], cond
        assert (ra["status"]["phase"], cond["Succeeded"]["reason"]) == ("AwaitingReview", "PublishBlocked")
        assert "--on-conflict Supersede" in cond["Succeeded"]["message"]
        listed = ra["status"]["conflicts"]
        assert (listed["count"], listed["policy"]) == (1, "Block"), listed
        (found,) = listed["conflicts"]
        assert (found["kind"], found["record"], found["project"], found["run"], found["items"]) == (
            "ConcurrentWork",
            parent_id,
            b,
            "rb",
            ["from-a"],
        ), found
        manifest = json.loads(media_a.read_file(ra["status"]["manifestPath"]))
        assert "published" not in manifest  # nothing was written
        (told, *_) = kube.eventually(
            lambda: conflict_events(b, "rb"), timeout=30, interval=1, what="Event on rb"
        )
        assert f"run {a}/ra" in told["message"], told

        # Passed again with Supersede: published, the lineage names what it supersedes.
        pass_as_admin(a, "ra", "--on-conflict", "Supersede")
        done_a = R.wait_to_finish(a, "ra", timeout=180)
        assert R.condition(done_a)["status"] == "True", R.diagnostics(a, "ra")
        assert done_a["status"]["review"]["onConflict"] == "Supersede"
        doc = lineage_of_published(a, media_a, done_a)
        assert doc["supersedes"] == [
            {"record": parent_id, "kind": "ConcurrentWork", "project": b, "run": "rb", "publishedAt": None}
        ], doc["supersedes"]
        assert [i["record"] for i in doc["inputs"]] == [parent_id]

        # (b) B's run, passed now, meets the newer version of its parent that A published.
        pass_as_admin(b, "rb")
        rb = blocked(b, "rb")
        (newer,) = rb["status"]["conflicts"]["conflicts"]
        assert (newer["kind"], newer["project"], newer["run"], newer["items"]) == (
            "NewerVersion",
            a,
            "ra",
            ["from-b"],
        ), newer
        assert newer["publishedAt"] == done_a["spec"]["review"]["decidedAt"], newer
        conds = {c["type"]: c for c in rb["status"]["conditions"]}
        assert f"project {a} run ra published a newer version" in conds["Conflict"]["message"], conds
        assert "published" not in json.loads(media_b.read_file(rb["status"]["manifestPath"]))

        # Ignore is refused at admission: neither project allows it (the field named).
        refused = mmif_as(
            ADMIN, "system:authenticated", "review", "pass", "rb", "--comment", "x", "--on-conflict", "Ignore",
            namespace=b,
        )  # fmt: skip
        assert refused.returncode != 0 and "spec.conflicts.allowIgnore" in refused.stderr, refused.stderr

        pass_as_admin(b, "rb", "--on-conflict", "Supersede")
        done_b = R.wait_to_finish(b, "rb", timeout=180)
        assert R.condition(done_b)["status"] == "True", R.diagnostics(b, "rb")
        doc_b = lineage_of_published(b, media_b, done_b)
        assert [(s["kind"], s["project"], s["run"]) for s in doc_b["supersedes"]] == [
            ("NewerVersion", a, "ra")
        ]

        # A decision once acted on stays final: the published run takes no new policy.
        again = as_user(
            ADMIN, "patch", "pipelinerun", "rb", "-n", b, "--type=merge",
            "-p", json.dumps({"spec": {"review": {"onConflict": "Block"}}}),
        )  # fmt: skip
        assert again.returncode != 0, again.stdout
