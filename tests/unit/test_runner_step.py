"""mmif-runner step and manifest against real CLAMS test apps (tests/apps) served in-process, and
against fake servers for the answers a real app does not give."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import socket
import sys

import pytest
from mmif import Mmif

from mmif_operator.core import itemstates
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.runner import cli, inputs
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import FAIL_JOB, ExitCode
from mmif_operator.runner.files import sha256_file
from mmif_operator.runner.paths import RunLayout, run_dir


def _load_harness():
    path = pathlib.Path(__file__).resolve().parents[1] / "apps" / "harness.py"
    spec = importlib.util.spec_from_file_location("mmif_test_apps_harness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()
TEXTGEN = "http://apps.mmif.dev/textgen/v1"
TIMEFRAMES = "http://apps.mmif.dev/timeframes/v1"
FAILER = "http://apps.mmif.dev/failer/v1"


class Counting:
    """Wraps a WSGI app, counting POSTs."""

    def __init__(self, app):
        self.app, self.posts = app, 0

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            self.posts += 1
        return self.app(environ, start_response)


def fake_app(identifier, post):
    """A WSGI app that answers GET / with metadata and POST with `post(body) -> (status, type, bytes)`."""

    def wsgi(environ, start_response):
        if environ["REQUEST_METHOD"] == "GET":
            status, ctype, body = 200, "application/json", json.dumps({"identifier": identifier}).encode()
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            status, ctype, body = post(environ["wsgi.input"].read(length))
        start_response(f"{status} X", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """A prepared run in a temporary workspace; `.step()` and `.manifest()` call the runner."""

    def __init__(self, root, monkeypatch, steps, items, files=None):
        self.ws = root / "data"
        (self.ws / "media").mkdir(parents=True)
        for name in ("a.mp4", "b.mp4", "boom.mp4"):
            (self.ws / "media" / name).write_bytes(b"x")
        for name, data in (files or {}).items():
            (self.ws / name).parent.mkdir(parents=True, exist_ok=True)
            (self.ws / name).write_bytes(data)
        self.mp, self.steps = monkeypatch, steps
        self.term = root / "termination-log"
        self.layout = RunLayout(run_dir("run-1", str(self.ws)))
        self.root = root
        code, _ = self._main(
            "prepare",
            {
                E.WORKSPACE: str(self.ws),
                E.RUN_DIR: self.layout.root,
                E.RUN_UID: "uid-1",
                E.ITEMS_FILE: self.input_file("items", "uid-1", {"items": items}),
            },
        )
        assert code == ExitCode.OK

    def input_file(self, name, owner, body):
        """A file as the operator's ConfigMap gives it to a runner pod (core/runner_input.py)."""
        path = self.root / f"{name}.json.z"
        path.write_bytes(inputs.encode(owner, body))
        return str(path)

    def _main(self, command, values):
        for name in set(E.PREPARE + E.STEP + E.MANIFEST + E.ANALYZE + E.ANALYSIS_MANIFEST):
            self.mp.delenv(name, raising=False)
        for k, v in values.items():
            self.mp.setenv(k, v)
        self.mp.setenv(E.TERMINATION_LOG, str(self.term))
        if self.term.exists():
            self.term.unlink()
        code = cli.main([command])
        lines = self.term.read_text().splitlines()
        assert len(lines) == 1
        return code, json.loads(lines[0])

    def step(self, item, k, url, params=None, **more):
        values = {
            E.WORKSPACE: str(self.ws),
            E.RUN_DIR: self.layout.root,
            E.RUN_UID: "uid-1",
            E.ITEM_INDEX: str(item),
            E.STEP_INDEX: str(k),
            E.STEPS: ",".join(self.steps),
            E.APP_URL: url,
            E.APP_PARAMS: json.dumps(params or {}),
            E.APP_WAIT: "2",
        }
        values.update(more)
        return self._main("step", values)

    def shared(self, item, first, calls, **more):
        """The runner of a pod the steps `first`.. share: one call of each app, in turn."""
        values = {
            E.WORKSPACE: str(self.ws),
            E.RUN_DIR: self.layout.root,
            E.RUN_UID: "uid-1",
            E.ITEM_INDEX: str(item),
            E.STEP_INDEX: str(first),
            E.STEPS: ",".join(self.steps),
            E.STEP_CALLS: json.dumps(calls),
            E.APP_WAIT: "2",
        }
        values.update(more)
        return self._main("step", values)

    def manifest(self, states, phase="Failed", **more):
        code, term = self._main(
            "manifest",
            {
                E.RUN_DIR: self.layout.root,
                E.STEPS: ",".join(self.steps),
                E.RUN_NAME: "run-1",
                E.RUN_PHASE: phase,
                E.RUN_UID: "uid-1",
                E.ITEM_STATES_FILE: self.input_file(
                    "states", "uid-1", {"itemStates": itemstates.encode(states), **more}
                ),
            },
        )
        assert code == ExitCode.OK, term
        return json.load(open(self.layout.manifest))

    def out(self, item, k):
        return self.layout.step_mmif(item, k, self.steps[k])

    def record(self, item, k):
        return json.load(open(self.layout.step_record(item, k, self.steps[k])))


VIDEO = {"documents": [{"location": "media/a.mp4", "mimeType": "video/mp4"}]}
BOOM = {"name": "boom", "documents": [{"location": "media/boom.mp4", "mimeType": "video/mp4"}]}


def test_two_steps_chain_into_a_final_mmif_with_both_apps_views_in_order(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr", "seg"], [VIDEO])
    code, term = run.step(0, 0, apps["textgen"][0])
    assert code == ExitCode.OK, term
    assert term == {
        "item": 0,
        "name": "item-00000",
        "step": "asr",
        "reason": "Succeeded",
        "message": f"new view(s) v_0 from {TEXTGEN}",
    }
    code, term = run.step(0, 1, apps["timeframes"][0], {"count": "2"})
    assert code == ExitCode.OK, term

    source = Mmif(pathlib.Path(run.layout.source_mmif(0)).read_text())
    assert source.documents[0].location == f"file://{run.ws}/media/a.mp4"
    final = pathlib.Path(run.layout.final_mmif(0)).read_bytes()
    assert final == pathlib.Path(run.out(0, 1)).read_bytes()
    Mmif.validate(final.decode())
    mmif = Mmif(final.decode())
    assert [v.metadata.app for v in mmif.views] == [TEXTGEN, TIMEFRAMES]
    assert len(list(mmif.views[1].get_annotations())) == 2
    assert mmif.views[0].get_documents()[0].text_value == f"transcript of file://{run.ws}/media/a.mp4"
    rec = run.record(0, 1)
    assert rec["state"] == "Succeeded" and rec["reason"] == "Succeeded" and rec["attempt"] == 1
    assert rec["sha256"] == sha256_file(run.layout.final_mmif(0))
    assert rec["app"] == TIMEFRAMES and rec["input"] == run.out(0, 0)
    assert rec["startedAt"] <= rec["finishedAt"]
    assert not [n for n in os.listdir(run.layout.item_dir(0)) if ".tmp-" in n]


def test_app_error_keeps_the_failed_mmif_and_reports_the_apps_message(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["fail"], [BOOM])
    code, term = run.step(0, 0, apps["failer"][0], {"failOn": "boom"})
    assert code == ExitCode.APP_ERROR == 1
    assert term["reason"] == "AppError" and term["name"] == "boom" and term["step"] == "fail"
    assert "failOn 'boom' matched document d1" in term["message"]
    kept = Mmif(pathlib.Path(run.out(0, 0)).read_text())
    assert kept.views[-1].metadata.app == FAILER and kept.views[-1].has_error()
    assert not os.path.exists(run.layout.final_mmif(0))
    rec = run.record(0, 0)
    assert rec["state"] == "Failed" and rec["httpStatus"] == 500 and rec["retriable"] is False
    assert rec["sha256"] == sha256_file(run.out(0, 0))


def test_a_second_failure_of_the_same_app_is_found_although_the_sdk_reuses_its_view(
    tmp_path, monkeypatch, apps
):
    # the SDK writes the error into the app's latest view instead of adding one
    run = Run(tmp_path, monkeypatch, ["first", "second"], [BOOM])
    assert run.step(0, 0, apps["failer"][0])[0] == ExitCode.OK
    code, term = run.step(0, 1, apps["failer"][0], {"failOn": "boom"})
    assert code == ExitCode.APP_ERROR and "failOn 'boom'" in term["message"]
    assert len(Mmif(pathlib.Path(run.out(0, 1)).read_text()).views) == 1


def test_an_error_view_in_a_200_answer_is_an_app_error(tmp_path, monkeypatch):
    def post(body):
        mmif = Mmif(body.decode())
        view = mmif.new_view()
        view.metadata.app = "http://apps.mmif.dev/fake/v1"
        view.set_error("model exploded", "trace")
        return 200, "application/json", mmif.serialize().encode()

    run = Run(tmp_path, monkeypatch, ["fake"], [VIDEO])
    with harness.serve(fake_app("http://apps.mmif.dev/fake/v1", post)) as url:
        code, term = run.step(0, 0, url)
    assert (code, term["reason"], term["message"]) == (ExitCode.APP_ERROR, "AppError", "model exploded")
    assert os.path.exists(run.out(0, 0))


@pytest.mark.parametrize(
    "status, ctype, body, expected",
    [
        (200, "text/html", b"<html>hello</html>", "not JSON"),
        (200, "application/json", b'{"metadata": {}}', "not valid MMIF"),
        (500, "text/plain", b"Invalid input data. See below for validation error.", "rejected its input"),
        (400, "text/html", b"bad request", "HTTP 400"),
    ],
)
def test_answers_that_are_not_mmif_are_invalid_output(tmp_path, monkeypatch, status, ctype, body, expected):
    run = Run(tmp_path, monkeypatch, ["fake"], [VIDEO])
    with harness.serve(fake_app("http://apps.mmif.dev/fake/v1", lambda _: (status, ctype, body))) as url:
        code, term = run.step(0, 0, url)
    assert code == ExitCode.INVALID_OUTPUT == 3
    assert term["reason"] == "InvalidOutput" and expected in term["message"]
    assert not os.path.exists(run.out(0, 0))
    assert run.record(0, 0)["state"] == "Failed"


def test_an_answer_without_a_new_view_signed_by_the_app_is_invalid_output(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["echo"], [VIDEO])
    with harness.serve(
        fake_app("http://apps.mmif.dev/echo/v1", lambda b: (200, "application/json", b))
    ) as url:
        code, term = run.step(0, 0, url)
    assert code == ExitCode.INVALID_OUTPUT
    assert "no new view signed by http://apps.mmif.dev/echo/v1" in term["message"]
    # a proxy that claims another identity than the app that signs the views
    textgen = harness.wsgi_app("textgen")

    def impostor(environ, start_response):
        if environ["REQUEST_METHOD"] == "GET":
            return fake_app("http://apps.mmif.dev/other/v1", None)(environ, start_response)
        return textgen(environ, start_response)

    with harness.serve(impostor) as url:
        code, term = run.step(0, 0, url)
    assert code == ExitCode.INVALID_OUTPUT and f"signed by {TEXTGEN}" in term["message"]


def test_connection_refused_is_an_infrastructure_failure(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    code, term = run.step(0, 0, f"http://127.0.0.1:{free_port()}", **{E.APP_WAIT: "0.3"})
    assert code == ExitCode.INFRA == 2
    assert term["reason"] == "AppUnreachable" and "did not accept connections within 0.3s" in term["message"]
    rec = run.record(0, 0)
    assert rec["retriable"] is True and rec["attempt"] == 1


def test_a_sidecar_app_that_never_listens_fails_for_good_with_the_port_named(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    port = free_port()
    code, term = run.step(
        0, 0, f"http://127.0.0.1:{port}", **{E.APP_STARTUP_TIMEOUT: "0.3", E.APP_WAIT: "60"}
    )
    assert code == ExitCode.APP_NOT_LISTENING == 7 and code in FAIL_JOB  # never retried by the Job
    assert term["reason"] == "AppNotListening"
    assert term["message"].startswith(f"nothing listened on port {port} within 0.3 s"), term
    assert run.record(0, 0)["retriable"] is False
    # The same bound, with an app that listens: the step goes on as usual.
    assert run.step(0, 0, apps["textgen"][0], **{E.APP_STARTUP_TIMEOUT: "5"})[0] == ExitCode.OK


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_infrastructure_failures(tmp_path, monkeypatch, status):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    with harness.serve(fake_app(TEXTGEN, lambda _: (status, "text/plain", b"busy"))) as url:
        code, term = run.step(0, 0, url)
    assert (code, term["reason"]) == (ExitCode.INFRA, "AppUnavailable")


def answering(status, get_status=200):
    """A WSGI app answering GET / with `get_status` (metadata when 200) and POST with `status`."""

    def wsgi(environ, start_response):
        code = get_status if environ["REQUEST_METHOD"] == "GET" else status
        body = json.dumps({"identifier": TEXTGEN}).encode() if code == 200 else b"<html>Not Found</html>"
        start_response(f"{code} X", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi


@pytest.mark.parametrize(
    "get_status, post_status", [(404, 200), (405, 200), (200, 404), (200, 405), (200, 421)]
)
def test_not_the_app_yet_is_an_infrastructure_failure_retried_by_the_job(
    tmp_path, monkeypatch, get_status, post_status
):
    """Right after a Service-mode Deployment became Ready, `GET /` may reach something that is
    not the app yet (404); that answer is retried (exit 2), never taken as the app's output."""
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    with harness.serve(answering(post_status, get_status)) as url:
        code, term = run.step(0, 0, url)
    assert (code, term["reason"]) == (ExitCode.INFRA, "AppUnavailable"), term
    assert f"HTTP {get_status if get_status != 200 else post_status}" in term["message"]
    assert "retried" in term["message"] and run.record(0, 0)["retriable"] is True


def test_the_infrastructure_statuses_are_the_gateway_and_not_the_app_ones():
    from mmif_operator.runner.appclient import infra_status

    assert [s for s in range(100, 600) if infra_status(s)] == [404, 405, 421, 429, 502, 503, 504]


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_answer_over_the_cap_is_output_too_large_final_and_never_read_whole(
    tmp_path, monkeypatch, declare_length
):
    from mmif_operator.runner.appclient import MAX_ANSWER_BYTES

    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    bigmouth = harness.load_module("bigmouth").get_flask()  # tests/apps/bigmouth: 3 GiB answers
    with harness.serve(bigmouth) as url:
        code, term = run.step(0, 0, url, {"declareLength": str(declare_length).lower()})
    assert code == ExitCode.INVALID_OUTPUT == 3, term
    assert term["reason"] == "OutputTooLarge"
    assert f"the {MAX_ANSWER_BYTES // (1 << 20)} MiB the runner reads" in term["message"]
    assert ("3221225472 bytes long (Content-Length)" in term["message"]) == declare_length
    assert run.record(0, 0)["retriable"] is False and not os.path.exists(run.out(0, 0))


def test_an_answer_just_under_the_cap_is_read(tmp_path, monkeypatch, apps):
    from mmif_operator.runner import appclient

    class Body:
        def __init__(self, data):
            self.data, self.headers = data, {}

        def read(self, n):
            out, self.data = self.data[:n], self.data[n:]
            return out

    data = b"x" * appclient.MAX_ANSWER_BYTES
    assert appclient.read_capped(Body(data), appclient.MAX_ANSWER_BYTES, "POST /") == data
    with pytest.raises(appclient.TooLargeError):
        appclient.read_capped(Body(data + b"x"), appclient.MAX_ANSWER_BYTES, "POST /")


def test_an_input_mmif_over_the_cap_is_invalid_input(tmp_path, monkeypatch, apps):
    from mmif_operator.runner import appclient

    monkeypatch.setattr(appclient, "MAX_ANSWER_BYTES", 1000)
    run = Run(tmp_path, monkeypatch, ["asr"], [{"mmif": "big.mmif"}], files={"big.mmif": b" " * 1001})
    code, term = run.step(0, 0, apps["textgen"][0])
    assert (code, term["reason"]) == (ExitCode.INVALID_INPUT, "InvalidInput")
    assert "1001 bytes long, more than the 1000 bytes the runner reads" in term["message"]


def test_a_read_timeout_is_an_infrastructure_failure(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["sleep"], [VIDEO])
    code, term = run.step(0, 0, apps["sleeper"][0], {"seconds": "1.5"}, **{E.HTTP_TIMEOUT: "0.3"})
    assert (code, term["reason"]) == (ExitCode.INFRA, "AppTimeout")


def test_a_rerun_of_a_succeeded_step_does_not_call_the_app_again(tmp_path, monkeypatch, apps):
    url, counter = apps["textgen"]
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    assert run.step(0, 0, url)[0] == ExitCode.OK
    posts, digest = counter.posts, sha256_file(run.layout.final_mmif(0))
    os.unlink(run.layout.final_mmif(0))  # killed between the writes: repaired, not re-run
    code, term = run.step(0, 0, url)
    assert (code, term["reason"], counter.posts) == (ExitCode.OK, "Succeeded", posts)
    assert sha256_file(run.layout.final_mmif(0)) == digest
    with open(run.out(0, 0), "ab") as f:  # an output that does not match its record: redo
        f.write(b" ")
    assert run.step(0, 0, url)[0] == ExitCode.OK
    assert counter.posts == posts + 1 and run.record(0, 0)["attempt"] == 2


def test_a_retry_after_an_infrastructure_failure_succeeds_and_counts_the_attempt(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    assert run.step(0, 0, f"http://127.0.0.1:{free_port()}", **{E.APP_WAIT: "0"})[0] == ExitCode.INFRA
    assert run.step(0, 0, apps["textgen"][0])[0] == ExitCode.OK
    assert run.record(0, 0)["attempt"] == 2


def test_an_item_given_as_mmif_continues_from_that_file(tmp_path, monkeypatch, apps):
    first = Run(tmp_path / "one", monkeypatch, ["asr"], [VIDEO])
    assert first.step(0, 0, apps["textgen"][0])[0] == ExitCode.OK
    previous = pathlib.Path(first.layout.final_mmif(0)).read_bytes()
    run = Run(tmp_path / "two", monkeypatch, ["seg"], [{"mmif": "prev.mmif"}], {"prev.mmif": previous})
    assert run.step(0, 0, apps["timeframes"][0])[0] == ExitCode.OK
    final = Mmif(pathlib.Path(run.layout.final_mmif(0)).read_text())
    assert [v.metadata.app for v in final.views] == [TEXTGEN, TIMEFRAMES]
    assert not os.path.exists(run.layout.source_mmif(0))


def test_step_refuses_a_folder_claimed_by_another_run_and_a_missing_item(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    code, term = run.step(0, 0, apps["textgen"][0], **{E.RUN_UID: "uid-2"})
    assert (code, term["reason"]) == (ExitCode.OUTPUT_CONFLICT, "OutputConflict")
    code, term = run.step(7, 0, apps["textgen"][0])
    assert (code, term["reason"]) == (ExitCode.INVALID_INPUT, "InvalidInput")
    code, term = run.step(0, 3, apps["textgen"][0])
    assert (code, term["reason"]) == (ExitCode.INVALID_CONFIG, "InvalidConfig")


def test_manifest_lists_every_item_with_state_failing_step_output_and_digest(tmp_path, monkeypatch, apps):
    b = {"name": "b", "documents": [{"location": "media/b.mp4", "mimeType": "video/mp4"}]}
    run = Run(tmp_path, monkeypatch, ["asr", "fail"], [VIDEO, BOOM, b])
    for i in (0, 1):
        assert run.step(i, 0, apps["textgen"][0])[0] == ExitCode.OK
    assert run.step(0, 1, apps["failer"][0], {"failOn": "boom"})[0] == ExitCode.OK
    assert run.step(1, 1, apps["failer"][0], {"failOn": "boom"})[0] == ExitCode.APP_ERROR
    states = [
        ItemState(1, ItemPhase.SUCCEEDED),
        ItemState(1, ItemPhase.FAILED),
        ItemState(0, ItemPhase.CANCELLED),
    ]
    manifest = run.manifest(states)
    assert manifest["run"] == "run-1" and manifest["phase"] == "Failed"
    assert manifest["steps"] == ["asr", "fail"]
    assert manifest["counts"] == {
        "total": 3,
        "pending": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 1,
    }
    ok, failed, cancelled = manifest["items"]
    assert ok["state"] == "Succeeded" and ok["output"] == "items/00000/final.mmif"
    assert ok["sha256"] == sha256_file(run.layout.final_mmif(0)) and ok["finishedAt"]
    assert failed["state"] == "Failed" and failed["name"] == "boom" and failed["failedStep"] == "fail"
    assert failed["reason"] == "AppError" and "failOn 'boom'" in failed["message"]
    assert failed["output"] == "items/00001/01-fail.mmif"
    assert failed["sha256"] == sha256_file(run.out(1, 1))
    assert cancelled["state"] == "Cancelled" and cancelled["failedStep"] == "asr"
    assert cancelled["output"] is None and cancelled["sha256"] is None


def test_spy_app_records_which_file_accesses_were_allowed_or_denied(tmp_path, monkeypatch):
    run = Run(tmp_path, monkeypatch, ["spy"], [VIDEO])
    target = tmp_path / "written-by-spy"
    with harness.serve_app("spy") as url:
        code, term = run.step(
            0, 0, url, {"readPath": str(tmp_path / "no-such-file"), "writePath": str(target)}
        )
    assert code == ExitCode.OK, term
    view = Mmif(pathlib.Path(run.layout.final_mmif(0)).read_text()).views[-1]
    found = {a.get_property("op"): a for a in view.get_annotations()}
    assert found["identity"].get_property("uid") == os.getuid()
    assert found["read"].get_property("outcome") == "denied"
    assert found["read"].get_property("errnoName") == "ENOENT"
    assert found["write"].get_property("outcome") == "allowed" and target.exists()


def test_after_an_invalid_output_the_next_step_reads_the_newest_earlier_mmif(tmp_path, monkeypatch, apps):
    # onItemFailure=Continue: step 0 left no MMIF, so step 1 starts from the source MMIF
    run = Run(tmp_path, monkeypatch, ["broken", "asr"], [VIDEO])
    with harness.serve(
        fake_app("http://apps.mmif.dev/fake/v1", lambda _: (200, "text/plain", b"oops"))
    ) as url:
        assert run.step(0, 0, url)[0] == ExitCode.INVALID_OUTPUT
    assert run.step(0, 1, apps["textgen"][0])[0] == ExitCode.OK
    assert run.record(0, 1)["input"] == run.layout.source_mmif(0)
    assert [v.metadata.app for v in Mmif(pathlib.Path(run.layout.final_mmif(0)).read_text()).views] == [
        TEXTGEN
    ]


def test_steps_sharing_a_pod_call_each_app_in_turn_and_write_each_steps_mmif(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr", "seg"], [VIDEO])
    calls = [
        {"url": apps["textgen"][0], "params": {}},
        {"url": apps["timeframes"][0], "params": {"count": "2"}},
    ]
    code, term = run.shared(0, 0, calls)
    assert code == ExitCode.OK, term
    assert (term["step"], term["reason"]) == ("seg", "Succeeded")
    assert run.record(0, 0)["state"] == run.record(0, 1)["state"] == "Succeeded"
    assert run.record(0, 1)["input"] == run.out(0, 0)
    final = pathlib.Path(run.layout.final_mmif(0)).read_bytes()
    assert final == pathlib.Path(run.out(0, 1)).read_bytes()
    mmif = Mmif(final.decode())
    assert [v.metadata.app for v in mmif.views] == [TEXTGEN, TIMEFRAMES]
    assert len(list(mmif.views[1].get_annotations())) == 2


def test_a_shared_pod_stops_at_the_first_failed_step_and_names_it(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr", "fail", "seg"], [BOOM])
    calls = [
        {"url": apps["textgen"][0], "params": {}},
        {"url": apps["failer"][0], "params": {"failOn": "boom"}},
        {"url": apps["timeframes"][0], "params": {}},
    ]
    posts = apps["timeframes"][1].posts
    code, term = run.shared(0, 0, calls)
    assert code == ExitCode.APP_ERROR
    assert (term["step"], term["reason"], term["name"]) == ("fail", "AppError", "boom")
    assert run.record(0, 0)["state"] == "Succeeded" and run.record(0, 1)["state"] == "Failed"
    assert apps["timeframes"][1].posts == posts and not os.path.exists(run.out(0, 2))


def test_a_retried_shared_pod_goes_on_from_its_first_step_not_done(tmp_path, monkeypatch, apps):
    run = Run(tmp_path, monkeypatch, ["asr", "seg"], [VIDEO])
    down = f"http://127.0.0.1:{free_port()}"
    calls = [{"url": apps["textgen"][0], "params": {}}, {"url": down, "params": {}}]
    code, term = run.shared(0, 0, calls, **{E.APP_WAIT: "0"})
    assert (code, term["step"]) == (ExitCode.INFRA, "seg")
    posts = apps["textgen"][1].posts
    calls[1]["url"] = apps["timeframes"][0]
    assert run.shared(0, 0, calls)[0] == ExitCode.OK
    assert apps["textgen"][1].posts == posts  # step asr was done: not called again
    assert run.record(0, 1)["attempt"] == 2


def test_a_shared_pod_killed_mid_step_leaves_that_steps_name_as_its_termination_message(
    tmp_path, monkeypatch, apps
):
    from mmif_operator.runner import step as runner_step

    run = Run(tmp_path, monkeypatch, ["asr", "seg"], [VIDEO])
    real = runner_step.run_step

    def killed_at_seg(cfg):
        if cfg.step == "seg":
            raise SystemExit(143)  # SIGTERM (the Job's deadline): the runner's _on_sigterm
        return real(cfg)

    monkeypatch.setattr(runner_step, "run_step", killed_at_seg)
    calls = [{"url": apps["textgen"][0], "params": {}}, {"url": apps["timeframes"][0], "params": {}}]
    with pytest.raises(SystemExit):
        run.shared(0, 0, calls)
    assert json.loads(run.term.read_text()) == {"item": 0, "step": "seg"}


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ("not json", "is not JSON"),
        ("[]", "non-empty JSON list"),
        (json.dumps([{"url": "ftp://x"}]), ".url="),
        (json.dumps([{"url": "http://x", "timeout": 0}]), ".timeout="),
        (json.dumps([{"url": "http://x", "params": {"a": {"b": 1}}}]), ".params"),
        (json.dumps([{"url": "http://x"}, {"url": "http://y"}]), "has 1 step(s)"),
    ],
)
def test_a_bad_step_calls_variable_is_an_invalid_config(tmp_path, monkeypatch, calls, problem):
    run = Run(tmp_path, monkeypatch, ["asr"], [VIDEO])
    code, term = run._main(
        "step",
        {
            E.WORKSPACE: str(run.ws),
            E.RUN_DIR: run.layout.root,
            E.ITEM_INDEX: "0",
            E.STEP_INDEX: "0",
            E.STEPS: "asr",
            E.STEP_CALLS: calls,
        },
    )
    assert code == ExitCode.INVALID_CONFIG and problem in term["message"], term
