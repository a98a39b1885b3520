"""How a run behaves when things go wrong, end to end on the real cluster, as a user observes it
(the run's status and conditions, kubectl, the files on the volume): an app error on one item,
killed pods (Job mode and Service mode), cancel, timeout, the operator killed mid-run, and a
Pipeline edited while a run goes on."""

from __future__ import annotations

import json
import posixpath
from collections import Counter

import pytest
from mmif import Mmif

from tests import kube

pytestmark = pytest.mark.cluster

STEP_POD = "app.kubernetes.io/component=step"


# --- helpers ------------------------------------------------------------------------------------


def media(workspace, count: int, prefix: str = "clip") -> list[str]:
    files = {f"media/{prefix}-{i}.mp4": f"not really a video, {prefix} {i}\n" for i in range(count)}
    workspace.write_media(files)
    return list(files)


def items_for(locations: list[str]) -> list[dict]:
    return [
        {
            "name": posixpath.basename(loc).rsplit(".", 1)[0],
            "documents": [{"location": loc, "mimeType": "video/mp4"}],
        }
        for loc in locations
    ]


def running_step_pods(namespace: str, selector: str) -> list[dict]:
    """Step pods whose runner container is running (the item is in the app's hands)."""
    out = []
    for pod in kube.get_list("pods", namespace, selector):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            if cs["name"] == "runner" and cs.get("state", {}).get("running"):
                out.append(pod)
    return out


def manifest_of(workspace, run: dict) -> dict:
    return json.loads(workspace.read_file(run["status"]["manifestPath"]))


def step_record(workspace, run: dict, index: int, k: int, step: str) -> dict:
    path = posixpath.join(run["status"]["outputPath"], f"items/{index:05d}/{k:02d}-{step}.json")
    return json.loads(workspace.read_file(path))


def job_pod_creations(namespace: str, run_name: str) -> Counter:
    """Job name -> pods its Job controller created (`SuccessfulCreate` Events, counts included)."""
    events = kube.get_list("events", namespace)
    seen: Counter = Counter()
    for ev in events:
        obj = ev.get("involvedObject", {})
        if (
            obj.get("kind") == "Job"
            and ev.get("reason") == "SuccessfulCreate"
            and obj.get("name", "").startswith(f"{run_name}-")
        ):
            seen[obj["name"]] += int(ev.get("count") or 1)
    return seen


def finished(runs, namespace: str, name: str, timeout: float = 240) -> dict:
    return runs.wait_to_finish(namespace, name, timeout=timeout)


def assert_condition(runs, namespace: str, run: dict, status: str, reason: str) -> dict:
    cond = runs.condition(run)
    assert (cond.get("status"), cond.get("reason")) == (status, reason), (
        f"{run['metadata']['name']} ended {cond}\n{runs.diagnostics(namespace, run['metadata']['name'])}"
    )
    return cond


# --- 1. an app error on one item ----------------------------------------------------------------


def test_an_app_error_fails_its_item_at_that_step_and_the_others_succeed(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 5)
    build.apply(
        build.pipeline(
            "checked",
            [
                build.step("transcript", "textgen"),
                build.step("check", "failer", parameters={"failOn": "clip-2"}),
            ],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run("batch", "checked", items_for(locations), claim_name=workspace.claim_name, parallelism=5),
        namespace,
    )

    run = finished(runs, namespace, "batch")
    cond = assert_condition(runs, namespace, run, "False", "ItemsFailed")
    status = run["status"]
    assert status["phase"] == "Failed"
    assert (status["itemCount"], status["itemsSucceeded"], status["itemsFailed"]) == (5, 4, 1)
    assert "1 of 5 items failed" in cond["message"] and "at step check" in cond["message"], cond

    # kubectl shows it the same way (printer columns).
    line = kube.kubectl("get", "pipelinerun", "batch", "-n", namespace, "--no-headers").stdout.split()
    assert "False" in line and "ItemsFailed" in line and "5/5" in line, line

    failures = status["failures"]
    assert len(failures) == 1, failures
    failure = failures[0]
    assert (failure["index"], failure["item"], failure["step"], failure["reason"]) == (
        2,
        "clip-2",
        "check",
        "AppError",
    ), failure
    assert "failOn 'clip-2' matched" in failure["message"], failure

    manifest = manifest_of(workspace, run)
    assert manifest["counts"]["succeeded"] == 4 and manifest["counts"]["failed"] == 1, manifest["counts"]
    by_index = {e["index"]: e for e in manifest["items"]}
    bad = by_index[2]
    assert (bad["state"], bad["failedStep"], bad["reason"]) == ("Failed", "check", "AppError"), bad
    assert "failOn 'clip-2' matched" in bad["message"], bad
    assert [by_index[i]["state"] for i in (0, 1, 3, 4)] == ["Succeeded"] * 4

    # The failed MMIF is kept: the app's error view, after the transcript view.
    assert bad["output"] == "items/00002/01-check.mmif", bad
    failed = Mmif(workspace.read_file(posixpath.join(status["outputPath"], bad["output"])).decode())
    assert [v.metadata.app for v in failed.views] == [
        build.app_identifier("textgen"),
        build.app_identifier("failer"),
    ]
    assert failed.views[-1].has_error()
    files = workspace.list_files(posixpath.join(status["outputPath"], "items/00002"))
    assert not any(f.endswith("final.mmif") for f in files), files
    for i in (0, 1, 3, 4):
        good = Mmif(workspace.read_file(posixpath.join(status["outputPath"], by_index[i]["output"])).decode())
        assert not any(v.has_error() for v in good.views)


# --- 2. infrastructure failures are retried ------------------------------------------------------


def test_killed_step_pods_and_app_pods_are_retried_and_the_runs_succeed(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 4)
    # (a) Job mode: the sleeper runs inside each item's pod.
    build.apply(
        build.pipeline(
            "slow-job",
            [build.step("nap", "sleeper", parameters={"seconds": "5"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    # (b) Service mode: one shared sleeper behind a Service.
    build.apply(
        build.pipeline(
            "slow-svc",
            [build.step("nap", "sleeper", mode="Service", retries=4, parameters={"seconds": "3"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    kube.wait("pipeline/slow-svc", "condition=Ready", namespace, timeout=120)
    build.apply(
        build.run(
            "job-run", "slow-job", items_for(locations[:2]), claim_name=workspace.claim_name, parallelism=2
        ),
        namespace,
    )
    build.apply(
        build.run(
            "svc-run", "slow-svc", items_for(locations), claim_name=workspace.claim_name, parallelism=4
        ),
        namespace,
    )

    # (a) the running step pod of item 0 is deleted while the app sleeps on the item.
    sel_a = f"mmif.dev/run=job-run,mmif.dev/step=nap,mmif.dev/item-index=0,{STEP_POD}"
    victim = kube.eventually(
        lambda: running_step_pods(namespace, sel_a),
        timeout=120,
        what="the step pod of job-run item 0 running",
    )[0]["metadata"]["name"]
    # (b) the app's pods are deleted while the runs' runners wait on it.
    kube.eventually(
        lambda: running_step_pods(namespace, f"mmif.dev/run=svc-run,{STEP_POD}"),
        timeout=120,
        what="svc-run step pods running",
    )
    app_pods_before = {
        p["metadata"]["name"]
        for p in kube.get_list(
            "pods", namespace, "mmif.dev/pipeline=slow-svc,app.kubernetes.io/component=app-service"
        )
    }
    assert app_pods_before
    kube.kubectl("delete", "pod", victim, "-n", namespace, "--wait=false")
    # Killed at once (no grace): a graceful stop would let gunicorn finish the requests in
    # flight, and whether any request is then dropped would be down to timing.
    kube.kubectl(
        "delete",
        "pods",
        "-n",
        namespace,
        "--wait=false",
        "--grace-period=0",
        "--force",
        "-l",
        "mmif.dev/pipeline=slow-svc,app.kubernetes.io/component=app-service",
    )

    run_a = finished(runs, namespace, "job-run")
    run_b = finished(runs, namespace, "svc-run")
    for run in (run_a, run_b):
        assert_condition(runs, namespace, run, "True", "Succeeded")
        assert run["status"]["itemsFailed"] == 0

    # (a) item 0's Job created a second pod (the retry), the other item's Job one.
    creations = job_pod_creations(namespace, "job-run")
    assert creations.get("job-run-00000-0", 0) >= 2, creations  # step Jobs: <run>-<item:05d>-<step>
    assert creations.get("job-run-00001-0") == 1, creations
    # (b) the app came back in a new pod, and items whose request it dropped were retried.
    app_pods_after = {
        p["metadata"]["name"]
        for p in kube.get_list(
            "pods", namespace, "mmif.dev/pipeline=slow-svc,app.kubernetes.io/component=app-service"
        )
    }
    assert app_pods_after and not app_pods_after & app_pods_before, (app_pods_before, app_pods_after)
    retried = {n for n, c in job_pod_creations(namespace, "svc-run").items() if c >= 2}
    assert retried, job_pod_creations(namespace, "svc-run")

    sleeper = build.app_identifier("sleeper")
    for run, count in ((run_a, 2), (run_b, 4)):
        manifest = manifest_of(workspace, run)
        assert [e["state"] for e in manifest["items"]] == ["Succeeded"] * count
        for entry in manifest["items"]:
            out = Mmif(
                workspace.read_file(posixpath.join(run["status"]["outputPath"], entry["output"])).decode()
            )
            assert [v.metadata.app for v in out.views] == [sleeper], entry


def test_an_app_answering_404_before_it_is_the_app_is_retried_and_the_item_succeeds(
    operator_deployed, namespace, workspace, build, runs
):
    """A Service-mode app whose first answers are `404 Not Found` (as a Service answers while its
    endpoints are not the app yet, or a proxy's default backend) is "not the app yet": the item's
    Job retries it (runner exit 2, AppUnavailable) instead of taking the 404 as the app's output,
    and the item succeeds with the app's view once the app answers."""
    locations = media(workspace, 1, prefix="late")
    build.apply(
        build.pipeline(
            "late-app",
            [build.step("late", "flaky", mode="Service", retries=3, parameters={"notFoundFirst": "2"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    kube.wait("pipeline/late-app", "condition=Ready", namespace, timeout=120)
    build.apply(
        build.run("late-run", "late-app", items_for(locations), claim_name=workspace.claim_name), namespace
    )

    run = finished(runs, namespace, "late-run")
    assert_condition(runs, namespace, run, "True", "Succeeded")
    assert (run["status"]["itemsSucceeded"], run["status"]["itemsFailed"]) == (1, 0)
    assert not run["status"].get("failures"), run["status"]["failures"]
    # two pods met the 404s and were retried; the third got the app's answer
    assert job_pod_creations(namespace, "late-run").get("late-run-00000-0") == 3, job_pod_creations(
        namespace, "late-run"
    )
    entry = manifest_of(workspace, run)["items"][0]
    assert entry["state"] == "Succeeded", entry
    out = Mmif(workspace.read_file(posixpath.join(run["status"]["outputPath"], entry["output"])).decode())
    assert [v.metadata.app for v in out.views] == [build.app_identifier("flaky")]


# --- 3 and 4. cancel and timeout ----------------------------------------------------------------


def test_cancel_keeps_finished_items_and_a_timeout_ends_a_run(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 4)
    build.apply(
        build.pipeline(
            "naps",
            [build.step("nap", "sleeper", parameters={"seconds": "4"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    # Cancel: parallelism 1, items go one after the other, 4 s each.
    build.apply(
        build.run("half", "naps", items_for(locations), claim_name=workspace.claim_name, parallelism=1),
        namespace,
    )
    # Timeout: items that sleep much longer than the run may last.
    build.apply(
        build.run(
            "too-slow",
            "naps",
            items_for(locations[:2]),
            claim_name=workspace.claim_name,
            parallelism=2,
            timeoutSeconds=20,
            params={"nap": {"seconds": "300"}},
        ),
        namespace,
    )

    # Once item 0 is done and item 1 is in the app's hands, cancel.
    kube.eventually(
        lambda: running_step_pods(namespace, f"mmif.dev/run=half,mmif.dev/item-index=1,{STEP_POD}"),
        timeout=180,
        what="item 1 of run half running",
    )
    assert kube.get("pipelinerun", "half", namespace)["status"]["itemsSucceeded"] == 1
    kube.kubectl(
        "patch",
        "pipelinerun",
        "half",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"status": "Cancelled"}}),
    )
    kube.eventually(
        lambda: not kube.get_list("pods", namespace, f"mmif.dev/run=half,{STEP_POD}"),
        timeout=90,
        what="run half's step pods to go away",
    )

    run = finished(runs, namespace, "half", timeout=120)
    cond = assert_condition(runs, namespace, run, "False", "Cancelled")
    assert "cancelled" in cond["message"], cond
    status = run["status"]
    assert status["phase"] == "Cancelled"
    assert (status["itemsSucceeded"], status["itemsCancelled"], status["itemsFailed"]) == (1, 3, 0), status
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=half")
    manifest = manifest_of(workspace, run)
    assert [e["state"] for e in manifest["items"]] == ["Succeeded", "Cancelled", "Cancelled", "Cancelled"]
    done = manifest["items"][0]
    assert done["output"] == "items/00000/final.mmif"
    out = Mmif(workspace.read_file(posixpath.join(status["outputPath"], done["output"])).decode())
    assert [v.metadata.app for v in out.views] == [build.app_identifier("sleeper")]
    files = workspace.list_files(status["outputPath"])
    assert any(f.endswith("/half/items/00000/final.mmif") for f in files), files
    assert not any(f"/items/0000{i}/final" in f for f in files for i in (1, 2, 3)), files

    run = finished(runs, namespace, "too-slow", timeout=150)
    cond = assert_condition(runs, namespace, run, "False", "Timeout")
    assert run["status"]["phase"] == "Failed"
    assert "timeout" in cond["message"], cond
    kube.eventually(
        lambda: not kube.get_list("pods", namespace, f"mmif.dev/run=too-slow,{STEP_POD}"),
        timeout=90,
        what="run too-slow's step pods to go away",
    )
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=too-slow")
    manifest = manifest_of(workspace, run)
    assert [e["state"] for e in manifest["items"]] == ["Cancelled"] * 2, manifest["items"]


# --- 5. the operator killed mid-run ---------------------------------------------------------------


def test_the_operator_killed_mid_run_loses_and_repeats_nothing(
    operator_deployed, namespace, workspace, build, runs
):
    items, steps = 6, ("first", "second")
    locations = media(workspace, items)
    build.apply(
        build.pipeline(
            "twice",
            [build.step(s, "sleeper", parameters={"seconds": "3"}) for s in steps],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run("steady", "twice", items_for(locations), claim_name=workspace.claim_name, parallelism=3),
        namespace,
    )

    kube.eventually(
        lambda: len(running_step_pods(namespace, f"mmif.dev/run=steady,{STEP_POD}")) >= 2,
        timeout=120,
        what="items of run steady in flight",
    )
    ns_op = operator_deployed.namespace
    old = [
        p["metadata"]["name"] for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
    ]
    assert len(old) == 1, old
    kube.kubectl("delete", "pod", old[0], "-n", ns_op, "--grace-period=0", "--force")

    def new_operator_ready():
        pods = kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
        return [
            p
            for p in pods
            if p["metadata"]["name"] not in old
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p["status"].get("conditions") or []
            )
        ]

    kube.eventually(new_operator_ready, timeout=120, what="a new operator pod Ready")

    run = finished(runs, namespace, "steady", timeout=240)
    assert_condition(runs, namespace, run, "True", "Succeeded")
    assert (run["status"]["itemsSucceeded"], run["status"]["itemsFailed"]) == (items, 0)

    manifest = manifest_of(workspace, run)
    assert [(e["index"], e["state"]) for e in manifest["items"]] == [(i, "Succeeded") for i in range(items)]
    for i in range(items):
        for k, s in enumerate(steps):
            rec = step_record(workspace, run, i, k, s)
            assert (rec["state"], rec["attempt"]) == ("Succeeded", 1), rec
    # One Job per (item, step), each with a single pod: nothing was run twice.
    creations = job_pod_creations(namespace, "steady")
    step_jobs = {n: c for n, c in creations.items() if n not in ("steady-prepare", "steady-manifest")}
    assert sorted(step_jobs) == sorted(
        f"steady-{i:05d}-{k}" for i in range(items) for k in range(len(steps))
    ), creations
    assert set(step_jobs.values()) == {1}, creations
    sleeper = build.app_identifier("sleeper")
    for entry in manifest["items"]:
        out = Mmif(workspace.read_file(posixpath.join(run["status"]["outputPath"], entry["output"])).decode())
        assert [v.metadata.app for v in out.views] == [sleeper, sleeper], entry


# --- 6. a Pipeline edited while a run goes on ---------------------------------------------------


def test_editing_a_pipeline_does_not_change_a_run_already_started(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 2)
    before = [
        build.step("segments", "timeframes", parameters={"count": "2"}),
        build.step("nap", "sleeper", parameters={"seconds": "3"}),
    ]
    build.apply(build.pipeline("evolving", before, claim_name=workspace.claim_name), namespace)
    build.apply(
        build.run(
            "old-def", "evolving", items_for(locations), claim_name=workspace.claim_name, parallelism=2
        ),
        namespace,
    )
    kube.eventually(
        lambda: running_step_pods(namespace, f"mmif.dev/run=old-def,{STEP_POD}"),
        timeout=120,
        what="run old-def in flight",
    )
    snapshot = kube.get("pipelinerun", "old-def", namespace)["status"]["pipelineSpec"]
    assert [s["parameters"] for s in snapshot["steps"]] == [{"count": "2"}, {"seconds": "3"}]

    after = [
        build.step("segments", "timeframes", parameters={"count": "4"}),
        build.step("nap", "textgen"),
    ]  # another app in the second step
    build.apply(build.pipeline("evolving", after, claim_name=workspace.claim_name), namespace)
    build.apply(
        build.run(
            "new-def", "evolving", items_for(locations), claim_name=workspace.claim_name, parallelism=2
        ),
        namespace,
    )

    old_run = finished(runs, namespace, "old-def")
    new_run = finished(runs, namespace, "new-def")
    for run in (old_run, new_run):
        assert_condition(runs, namespace, run, "True", "Succeeded")
    assert old_run["status"]["pipelineSpec"] == snapshot
    assert [s["image"] for s in new_run["status"]["pipelineSpec"]["steps"]] == [
        build.app_image("timeframes"),
        build.app_image("textgen"),
    ]

    expected = {
        "old-def": (2, build.app_identifier("sleeper")),
        "new-def": (4, build.app_identifier("textgen")),
    }
    for run in (old_run, new_run):
        count, second_app = expected[run["metadata"]["name"]]
        for entry in manifest_of(workspace, run)["items"]:
            data = workspace.read_file(posixpath.join(run["status"]["outputPath"], entry["output"])).decode()
            out = Mmif(data)
            frames, second = out.views
            assert frames.metadata.app == build.app_identifier("timeframes")
            # the parameters the app was called with, as it recorded them in its view
            assert json.loads(data)["views"][0]["metadata"].get("parameters") == {"count": str(count)}, entry
            assert len(list(frames.get_annotations())) == count, (run["metadata"]["name"], entry)
            assert second.metadata.app == second_app, (run["metadata"]["name"], entry)
