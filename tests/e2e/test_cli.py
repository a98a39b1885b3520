"""The `kubectl mmif` plugin end to end: the installed `kubectl-mmif` (this venv's console script)
run as a user runs it, `kubectl mmif ...` (kubectl finds the plugin on PATH), against the real
cluster and operator. Its stdout is not a terminal, so the live bars print one plain line per
update (cli/render.py), which is what these tests read.

1. `run --watch` of a two-step pipeline: every update and the final frame, exit 0; then
   `status`, `wait`, `results` (as a user holding only the `mmif-user` ClusterRole), `--mmif`,
   `--view` and `logs` of a step whose pod is gone (the runner's log on the volume).
2. A failing run: `run --watch` exits 1 with the reason and the app's message; `wait` and `watch`
   say so; once the step's pod and Job are gone, `logs` shows the app's own log, which the
   operator kept (a ConfigMap owned by the run).
2b. `run --items FILE`, then `watch` of that run: its updates while it runs, the final frame,
   exit 0; and the same `watch` on a terminal (a pseudo-terminal): rich progress bars that
   move from 1/3 to 3/3, then the summary.
3. `logs` of a step in flight (the runner's and the app's containers), then `cancel --wait`.
4. A reviewed pipeline: `run --watch` stops at AwaitingReview (exit 5); `review pass --as rita`
   records rita and the run succeeds.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from mmif import Mmif

from tests import kube

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent  # the venv's bin: where `pip install` put kubectl-mmif
READER_PODS = "app.kubernetes.io/component=reader,app.kubernetes.io/managed-by=kubectl-mmif"
USER = "ursula"  # holds only the mmif-user ClusterRole (manifests/rbac-user.yaml)
REVIEWER = "rita"


def mmif(*args: str, namespace: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`kubectl mmif ARGS -n NAMESPACE`, as a user types it (stdout a pipe, not a terminal)."""
    assert (BIN / "kubectl-mmif").exists(), "the console script kubectl-mmif is not installed in the venv"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["kubectl", "mmif", *args, "-n", namespace],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class OnATerminal:
    """`kubectl mmif ARGS -n NAMESPACE` on a pseudo-terminal of COLUMNS columns, as a person at a
    terminal runs it; what it wrote is read beside it until it exits (`wait`)."""

    def __init__(self, *args: str, namespace: str, columns: int = 150) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TERM": "xterm-256color",
            "COLUMNS": str(columns),
        }
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            ["kubectl", "mmif", *args, "-n", namespace], stdin=slave, stdout=slave, stderr=slave, env=env
        )
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, args=(master,), daemon=True)
        self.reader.start()

    def _read(self, master: int) -> None:
        try:
            while chunk := os.read(master, 65536):
                self.chunks.append(chunk)
        except OSError:  # EIO: the terminal's other side closed (the command exited)
            pass
        finally:
            os.close(master)

    def wait(self, timeout: float) -> tuple[int, str]:
        """The exit code and the screen's text without its escape sequences."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # not left running past the test
            raise
        self.reader.join(timeout=10)
        raw = b"".join(self.chunks).decode("utf-8", errors="replace")
        return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", raw).replace("\r", "\n")


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"


def in_order(lines: list[str], wanted: list[str]) -> bool:
    """Every line of `wanted` starts some line of `lines`, in this order."""
    it = iter(lines)
    return all(any(line.startswith(w) for line in it) for w in wanted)


def bind(namespace: str, user: str, cluster_role: str) -> None:
    kube.kubectl(
        "create",
        "rolebinding",
        f"{user}-{cluster_role}",
        f"--clusterrole={cluster_role}",
        f"--user={user}",
        "-n",
        namespace,
    )


def no_reader_pods_left(namespace: str) -> None:
    kube.eventually(
        lambda: (
            not [
                p
                for p in kube.get_list("pods", namespace, READER_PODS)
                if not p["metadata"].get("deletionTimestamp")
            ]
        ),
        timeout=30,
        what="the reader pods deleted",
    )


def test_run_watch_then_status_wait_results_and_logs(operator_deployed, namespace, workspace, build, runs):
    docs = [f"media/clip-{i}.mp4" for i in range(3)]
    workspace.write_media({d: f"not really a video, {d}\n" for d in docs})
    build.apply(
        build.pipeline(
            "cli",
            [build.step("transcript", "textgen"), build.step("segments", "timeframes")],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )

    proc = mmif(
        "run",
        "cli",
        *docs,
        "--name",
        "batch",
        "--parallelism",
        "1",
        "--param",
        "segments.count=2",
        "--watch",
        namespace=namespace,
    )
    assert proc.returncode == 0, explain(proc) + runs.diagnostics(namespace, "batch")
    lines = proc.stdout.splitlines()
    assert lines[0] == f"pipelinerun.mmif.dev/batch created (3 items, namespace {namespace})", explain(proc)
    # the updates: items pass the steps one by one (parallelism 1), every change a line
    assert in_order(lines, [f"step transcript {n}/3 " for n in (1, 2, 3)]), explain(proc)
    assert in_order(lines, [f"step segments {n}/3 " for n in (1, 2, 3)]), explain(proc)
    assert in_order(lines, [f"run batch {n}/3 phase=Running" for n in (1, 2, 3)]), explain(proc)
    assert "step segments 3/3 succeeded=3 failed=0 running=0 pending=0" in lines, explain(proc)
    assert any(line.startswith("run batch 3/3 phase=Succeeded stage=Succeeded") for line in lines), explain(
        proc
    )
    # the final frame: the counts table and the outcome
    table = proc.stdout[proc.stdout.index(f"pipelinerun batch ({namespace}): Succeeded") :]
    assert "transcript" in table and "segments" in table and "3/3" in table, explain(proc)
    assert lines[-1].startswith("pipelinerun batch: Succeeded, 3/3 items succeeded"), explain(proc)

    proc = mmif("status", "batch", namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    assert "step transcript 3/3 succeeded=3 failed=0 running=0 pending=0" in proc.stdout, explain(proc)
    assert "run batch 3/3 phase=Succeeded" in proc.stdout, explain(proc)
    assert "outputs: /data/mmif-runs/batch (manifest /data/mmif-runs/batch/manifest.json)" in proc.stdout

    proc = mmif("wait", "batch", "--for", "Succeeded", "--timeout", "30", namespace=namespace)
    assert proc.returncode == 0 and proc.stdout.startswith("pipelinerun batch: Succeeded"), explain(proc)

    # results, as a user who holds only mmif-user: the reader pod runs with their identity
    bind(namespace, USER, "mmif-user")
    proc = mmif("results", "batch", "--as", USER, namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout
    assert "/data/mmif-runs/batch: Succeeded, total 3, succeeded 3; steps transcript, segments" in out, out
    for i in range(3):
        assert f"item {i} (clip-{i}): Succeeded  items/{i:05d}/final.mmif" in out, out
        assert f"document d1 VideoDocument video/mp4 file:///data/media/clip-{i}.mp4" in out, out
    assert (
        out.count("http://apps.mmif.dev/textgen") == 3 and out.count("http://apps.mmif.dev/timeframes") == 3
    )
    assert "count=2" in out and "TimeFrame 2" in out and "Alignment 1, TextDocument 1" in out, out
    assert out.count("timeframes: 2, 0-1.5 s") == 3, out

    proc = mmif("results", "batch", "1", "--mmif", "--as", USER, namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    final = Mmif(proc.stdout)  # valid MMIF, the item's final one
    assert [v.metadata.app for v in final.views] == [
        build.app_identifier("textgen"),
        build.app_identifier("timeframes"),
    ]

    proc = mmif("results", "batch", "clip-1", "--view", "v_1", "--as", USER, namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    view = json.loads(proc.stdout)
    assert view["id"] == "v_1" and view["metadata"]["app"] == build.app_identifier("timeframes")
    assert (
        view["metadata"]["parameters"] == {"count": "2"} and len(view["annotations"]) == 2
    )  # two TimeFrames
    proc = mmif("results", "batch", "clip-1", "--view", "v_9", namespace=namespace)
    assert proc.returncode == 4 and "no view 'v_9'; the views are v_0, v_1" in proc.stderr, explain(proc)

    # the step pods are gone (the operator deletes finished Jobs): the runner's log from the volume
    proc = mmif("logs", "batch", "0", "--step", "transcript", "--as", USER, namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    assert "the runner, from the volume (items/00000/00-transcript.log)" in proc.stdout, explain(proc)
    assert "item 0 (clip-0) step 0 (transcript): started (app http://127.0.0.1:5000" in proc.stdout
    assert "the app answered HTTP 200" in proc.stdout and "finished: Succeeded" in proc.stdout, explain(proc)
    # a step that succeeded: its app's log is not kept, by design, and the plugin says so
    assert (
        "== item 0 (clip-0) step transcript: the step's pod is gone and the app's log was not kept"
        " (the operator keeps the app's log of failed item-steps only) ==" in proc.stdout
    ), explain(proc)
    no_reader_pods_left(namespace)


def test_a_failing_run_exits_non_zero_with_the_reason(operator_deployed, namespace, workspace, build, runs):
    workspace.write_media({"media/bad.mp4": "not really a video\n"})
    build.apply(
        build.pipeline(
            "failing",
            [build.step("check", "failer", parameters={"failOn": "bad"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    proc = mmif("run", "failing", "media/bad.mp4", "--name", "broken", "--watch", namespace=namespace)
    assert proc.returncode == 1, explain(proc)
    assert "step check 1/1 succeeded=0 failed=1" in proc.stdout, explain(proc)
    assert "latest failures" in proc.stdout and "AppError" in proc.stdout, explain(proc)
    assert "failOn 'bad' matched document d1" in proc.stdout, explain(proc)
    assert proc.stdout.splitlines()[-1].startswith(
        "pipelinerun broken: Failed (ItemsFailed), 0/1 items succeeded, 1 failed"
    )

    proc = mmif("wait", "broken", "--timeout", "30", namespace=namespace)
    assert proc.returncode == 1, explain(proc)
    assert "cannot become Succeeded any more: it is Failed" in proc.stderr, explain(proc)

    proc = mmif("results", "broken", "bad", namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    assert "item 0 (bad): Failed" in proc.stdout and "failed at step check: AppError" in proc.stdout, explain(
        proc
    )
    assert "http://apps.mmif.dev/failer" in proc.stdout and "failOn 'bad' matched" in proc.stdout, explain(
        proc
    )

    # `watch` of a run that ended Failed: its final frame at once, exit 1
    proc = mmif("watch", "broken", "--timeout", "30", namespace=namespace)
    assert proc.returncode == 1, explain(proc)
    assert proc.stdout.splitlines()[-1].startswith("pipelinerun broken: Failed (ItemsFailed)"), explain(proc)

    # the step's pod and Job are gone: the app's own log, kept by the operator when the step
    # failed, read as a user holding only mmif-user
    kube.eventually(
        lambda: not kube.get_list("pods", namespace, "mmif.dev/run=broken,app.kubernetes.io/component=step"),
        timeout=60,
        what="the failed step's pod deleted",
    )
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=broken,app.kubernetes.io/component=step")
    bind(namespace, USER, "mmif-user")
    proc = mmif("logs", "broken", "bad", "--step", "check", "--as", USER, namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    uid = kube.get("pipelinerun", "broken", namespace)["metadata"]["uid"]
    kept = f"broken-applogs-{uid.replace('-', '')[:8]}"
    assert (
        f"== item 0 (bad) step check: the app, kept by the operator when the step failed (ConfigMap {kept},"
        " key 00000-0.log; at most its last 16 KiB) ==" in proc.stdout
    ), explain(proc)
    assert "failer: refusing document d1: it contains 'bad'" in proc.stdout, explain(
        proc
    )  # the app's own line
    assert "the runner, from the volume (items/00000/00-check.log)" in proc.stdout, explain(proc)
    cm = kube.get("configmap", kept, namespace)
    assert [(o["kind"], o["uid"]) for o in cm["metadata"]["ownerReferences"]] == [("PipelineRun", uid)]
    assert list(cm["data"]) == ["00000-0.log"] and len(cm["data"]["00000-0.log"].encode()) <= 16 * 1024
    no_reader_pods_left(namespace)


def test_watch_follows_a_run_it_did_not_start_to_its_end(
    operator_deployed, namespace, workspace, build, runs, tmp_path
):
    docs = [f"media/w-{i}.mp4" for i in range(3)]
    workspace.write_media({d: "not really a video\n" for d in docs})
    build.apply(
        build.pipeline(
            "watched",
            [build.step("nap", "sleeper", parameters={"seconds": "2"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    items = tmp_path / "batch.yaml"  # the batch as a file (a YAML list, as spec.items)
    items.write_text(
        "".join(
            f"- name: take-{i}\n  documents:\n  - location: {d}\n    mimeType: video/mp4\n"
            for i, d in enumerate(docs)
        )
    )
    proc = mmif(
        "run",
        "watched",
        "--items",
        str(items),
        "--name",
        "followed",
        "--parallelism",
        "1",
        namespace=namespace,
    )
    assert proc.returncode == 0, explain(proc)
    assert f"pipelinerun.mmif.dev/followed created (3 items, namespace {namespace})" in proc.stdout, explain(
        proc
    )
    spec = kube.get("pipelinerun", "followed", namespace)["spec"]
    assert [(i["name"], [d["location"] for d in i["documents"]]) for i in spec["items"]] == [
        (f"take-{i}", [d]) for i, d in enumerate(docs)
    ]

    terminal = OnATerminal("watch", "followed", "--timeout", "180", namespace=namespace)
    proc = mmif("watch", "followed", "--timeout", "180", namespace=namespace)
    assert proc.returncode == 0, explain(proc) + runs.diagnostics(namespace, "followed")
    code, screen = terminal.wait(timeout=60)
    assert code == 0, screen
    # rich progress bars (a bar of 40 cells, then done/total), the step's moving from 1/3 to 3/3
    bars = re.findall(r"^nap\s+[━╸╺]{40}\s+([0-3])/3\s", screen, re.MULTILINE)
    assert bars and bars[-1] == "3", screen
    assert "1" in bars and "2" in bars, screen
    assert bars.index("1") < bars.index("2") < bars.index("3"), screen
    assert re.search(r"^followed\s+[━╸╺]{40}\s+3/3 Succeeded", screen, re.MULTILINE), screen
    assert "pipelinerun followed: Succeeded, 3/3 items succeeded" in screen, screen
    lines = proc.stdout.splitlines()
    # it updated while the run went on: the items pass one by one (parallelism 1, 2 s each)
    assert in_order(lines, [f"step nap {n}/3 " for n in (1, 2, 3)]), explain(proc)
    assert in_order(lines, [f"run followed {n}/3 phase=Running" for n in (1, 2)]), explain(proc)
    # the final frame: the step at 100%, its counts, the outcome
    assert "step nap 3/3 succeeded=3 failed=0 running=0 pending=0" in lines, explain(proc)
    table = proc.stdout[proc.stdout.index(f"pipelinerun followed ({namespace}): Succeeded") :]
    assert "nap" in table and "3/3" in table, explain(proc)
    assert lines[-1].startswith("pipelinerun followed: Succeeded, 3/3 items succeeded"), explain(proc)


def test_logs_of_a_step_in_flight_then_cancel(operator_deployed, namespace, workspace, build, runs):
    workspace.write_media({"media/long.mp4": "not really a video\n"})
    build.apply(
        build.pipeline(
            "sleepy",
            [build.step("nap", "sleeper", parameters={"seconds": "120"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    proc = mmif("run", "sleepy", "media/long.mp4", "--name", "nap", namespace=namespace)
    assert proc.returncode == 0 and "pipelinerun.mmif.dev/nap created" in proc.stdout, explain(proc)

    def live_logs():
        proc = mmif("logs", "nap", "long", "--step", "nap", namespace=namespace, timeout=60)
        ok = "container runner" in proc.stdout and "POST to http://apps.mmif.dev/sleeper/v1" in proc.stdout
        return proc if ok and "container app" in proc.stdout else None

    proc = kube.eventually(live_logs, timeout=120, interval=2, what="the logs of the step in flight")
    assert "== item long step nap: the runner, pod nap-00000-0-" in proc.stdout, explain(proc)
    assert "item 0 (long) step 0 (nap): started" in proc.stdout, explain(proc)
    assert "== item long step nap: the app, pod nap-00000-0-" in proc.stdout, explain(proc)

    proc = mmif("cancel", "nap", "--wait", "--timeout", "90", namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    assert "pipelinerun nap: cancellation requested (it was Running, 0/1 items done)" in proc.stdout, explain(
        proc
    )
    assert proc.stdout.splitlines()[-1].startswith("pipelinerun nap: Cancelled"), explain(proc)
    proc = mmif("status", "nap", namespace=namespace)
    assert "run nap 1/1 phase=Cancelled" in proc.stdout and "cancelled=1" in proc.stdout, explain(proc)


def test_review_pass_and_fail_as_a_reviewer(operator_deployed, namespace, workspace, build, runs):
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    build.apply(
        build.pipeline(
            "reviewed",
            [build.step("transcript", "textgen")],
            claim_name=workspace.claim_name,
            review={"required": True},
        ),
        namespace,
    )
    bind(namespace, REVIEWER, "mmif-reviewer")
    bind(namespace, USER, "mmif-user")  # may patch runs, but not review them
    proc = mmif("run", "reviewed", "media/clip.mp4", "--name", "rev", "--watch", namespace=namespace)
    assert proc.returncode == 5, explain(proc)
    assert "run rev 1/1 phase=AwaitingReview" in proc.stdout, explain(proc)
    assert "kubectl mmif review pass|fail rev --comment" in proc.stdout, explain(proc)

    proc = mmif("review", "pass", "rev", "--comment", "checked by ear", "--as", USER, namespace=namespace)
    assert proc.returncode == 4 and f"{USER} may not review pipelineruns" in proc.stderr, explain(proc)

    proc = mmif(
        "review",
        "pass",
        "rev",
        "--comment",
        "checked by ear",
        "--wait",
        "--as",
        REVIEWER,
        namespace=namespace,
    )
    assert proc.returncode == 0, explain(proc) + runs.diagnostics(namespace, "rev")
    assert f"pipelinerun rev: review Pass recorded (reviewer {REVIEWER}, at " in proc.stdout, explain(proc)
    assert proc.stdout.splitlines()[-1].startswith("pipelinerun rev: Succeeded, 1/1 items succeeded"), (
        explain(proc)
    )
    assert kube.get("pipelinerun", "rev", namespace)["spec"]["review"]["reviewer"] == REVIEWER

    # `review fail`: the run ends Failed (ReviewFailed) with the reviewer's comment, and nothing
    # is published; the command itself succeeded (exit 0: the decision was recorded).
    proc = mmif("run", "reviewed", "media/clip.mp4", "--name", "rev2", namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    kube.eventually(
        lambda: (
            (kube.get("pipelinerun", "rev2", namespace).get("status") or {}).get("phase") == "AwaitingReview"
        ),
        timeout=120,
        what="rev2 AwaitingReview",
    )
    proc = mmif(
        "review",
        "fail",
        "rev2",
        "--comment",
        "wrong language",
        "--wait",
        "--as",
        REVIEWER,
        namespace=namespace,
    )
    assert proc.returncode == 0, explain(proc) + runs.diagnostics(namespace, "rev2")
    assert f"pipelinerun rev2: review Fail recorded (reviewer {REVIEWER}, at " in proc.stdout, explain(proc)
    assert proc.stdout.splitlines()[0].endswith(": wrong language"), explain(proc)
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("pipelinerun rev2: Failed (ReviewFailed)"), explain(proc)
    failed = kube.get("pipelinerun", "rev2", namespace)
    assert failed["status"]["review"].get("recordPath") is None, failed["status"]["review"]


def test_monitors_and_a_monitors_reports(operator_deployed, namespace, workspace, build):
    """`kubectl mmif monitors` and `monitor NAME` show what the Monitor's status and HealthReports
    say: its health and reliability, and each report."""
    from tests.e2e.test_monitors import SAMPLE_FILE, monitor_body, reports_of, wait_health

    workspace.write_media({SAMPLE_FILE: "not really a video\n"})
    app = {"image": build.app_image("textgen"), "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}]}
    build.apply(monitor_body("solo", workspace.claim_name, {"app": app}, "PT1H"), namespace)
    wait_health(namespace, "solo", "Healthy", timeout=120)
    (report,) = reports_of(namespace, "solo")

    listed = mmif("monitors", "-o", "json", namespace=namespace)
    assert listed.returncode == 0, explain(listed)
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["health"], row["reliability"]) == ("solo", "Healthy", 1.0)
    table = mmif("monitors", namespace=namespace)
    assert "solo" in table.stdout and "Healthy" in table.stdout and "100%" in table.stdout, explain(table)

    one = mmif("monitor", "solo", namespace=namespace)
    assert one.returncode == 0, explain(one)
    assert "monitor solo: Healthy, reliability 100%" in one.stdout
    assert report["spec"]["id"] in one.stdout and "Passed" in one.stdout
    missing = mmif("monitor", "nope", namespace=namespace)
    assert missing.returncode == 4 and "not found" in missing.stderr.lower(), explain(missing)
