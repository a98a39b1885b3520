"""The operator runtime's pure pieces: settings, main's options, wake-ups, k8s helpers, metrics,
the Job index entry."""

from __future__ import annotations

import asyncio
import json
import logging

import kopf
import pytest

from mmif_operator import main as M
from mmif_operator import metrics
from mmif_operator import settings as S
from mmif_operator.core.kube import ops
from mmif_operator.core.observed import JobKind
from mmif_operator.core.runtime import wakeups as W
from mmif_operator.core.runtime.jobs import job_index_entry
from mmif_operator.kinds.pipelinerun import children as jobs
from tests.unit import typed as T

CTX = jobs.RunContext(name="run-1", namespace="ns", uid="uid-1", pipeline="pipe", claim_name="media")
SPEC = {"steps": [{"name": "asr", "image": "asr:1"}]}


# -- settings and main ------------------------------------------------------------------------


def test_config_from_env_defaults_and_values():
    c = S.config_from_env({})
    assert c.operator_image == "mmif.local/mmif-operator:dev" and c.clusterwide
    assert c.metrics_port == 8080 and c.liveness == "http://0.0.0.0:8081/healthz"
    c = S.config_from_env(
        {
            "MMIF_OPERATOR_IMAGE": "reg/op:1",
            "MMIF_WATCH_NAMESPACE": " a, b ,a",
            "MMIF_LOG_FORMAT": "JSON",
            "MMIF_METRICS_PORT": "0",
            "POD_NAME": "op-1",
        }
    )
    assert c.operator_image == "reg/op:1" and c.namespaces == ("a", "b") and not c.clusterwide
    assert c.log_format == "json" and c.metrics_port == 0 and c.instance == "op-1"
    for bad in ({"MMIF_LOG_FORMAT": "xml"}, {"MMIF_METRICS_PORT": "x"}, {"MMIF_LOG_LEVEL": "LOUD"}):
        with pytest.raises(ValueError):
            S.config_from_env(bad)


def test_kopf_settings_use_our_names():
    settings = kopf.OperatorSettings()
    S.apply_kopf_settings(settings, S.Config(namespaces=("a",)))
    assert settings.persistence.finalizer == "mmif.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "mmif.dev"
    diffbase = settings.persistence.diffbase_storage
    assert list(diffbase.make_keys(diffbase.key)) == ["mmif.dev/last-handled-configuration"]
    assert (
        settings.watching.label_selectors["batch", "v1", "jobs"]
        == "app.kubernetes.io/managed-by=mmif-operator"
    )
    assert settings.queueing.worker_limit is None  # a bound deadlocks kopf's index at start
    assert settings.posting.reporting_component == "mmif-operator"
    assert settings.peering.standalone and not settings.peering.clusterwide
    bounded = kopf.OperatorSettings()
    S.apply_kopf_settings(bounded, S.Config(worker_limit=500))
    assert bounded.queueing.worker_limit == 500
    assert S.config_from_env({}).worker_limit == 0


def test_routine_handler_lines_are_filtered():
    f = S.RoutineHandlerFilter(("job_event",))

    def rec(msg, level=logging.INFO):
        return logging.LogRecord("kopf.objects", level, __file__, 1, msg, None, None)

    assert not f.filter(rec("Handler 'job_event' succeeded."))
    assert f.filter(rec("Handler 'job_event' succeeded.", logging.WARNING))
    assert f.filter(rec("Handler 'other' succeeded."))


def test_main_options_override_the_environment():
    env = {"MMIF_WATCH_NAMESPACE": "x"}
    assert M.build_config(M.parse_args([]), env).namespaces == ("x",)
    assert M.build_config(M.parse_args(["-n", "a", "-n", "b"]), env).namespaces == ("a", "b")
    assert M.build_config(M.parse_args(["-A"]), env).clusterwide
    c = M.build_config(M.parse_args(["--metrics-port", "9000", "--liveness", "", "--log-format", "json"]), {})
    assert (c.metrics_port, c.liveness, c.log_format) == (9000, "", "json")


# -- wake-ups ---------------------------------------------------------------------------------


class Flag:
    def __init__(self):
        self.event = asyncio.Event()

    def is_set(self):
        return self.event.is_set()

    async def wait(self):
        await self.event.wait()


def test_waker_wakes_times_out_and_stops():
    async def scenario():
        wakers = W.Wakers()
        waker = wakers.register(("ns", "r"), pipeline="p")
        assert await waker.wait(0.01) is W.Wake.TIMEOUT
        assert await waker.wait(0) is W.Wake.TIMEOUT
        asyncio.get_running_loop().call_later(0.01, wakers.wake, ("ns", "r"))
        assert await waker.wait(5) is W.Wake.WOKEN
        assert await waker.wait(5) is W.Wake.WOKEN  # kept until cleared
        waker.clear()
        stop = Flag()
        asyncio.get_running_loop().call_later(0.01, stop.event.set)
        assert await waker.wait(None, stop) is W.Wake.STOPPED
        assert not wakers.wake(("ns", "other"))
        assert wakers.wake_where(lambda w: w.tags.get("pipeline") == "p") == 1
        newer = wakers.register(("ns", "r"))
        wakers.unregister(waker)  # a stale waker does not remove the newer one
        assert wakers.get(("ns", "r")) is newer
        wakers.unregister(newer)
        assert len(wakers) == 0

    asyncio.run(scenario())


def test_a_wake_can_ask_for_a_fresh_read_until_taken():
    wakers = W.Wakers()
    waker = wakers.register(("ns", "r"))
    wakers.wake(("ns", "r"))
    assert waker.woken and not waker.take_refresh()
    wakers.wake(("ns", "r"), refresh=True)
    wakers.wake(("ns", "r"))  # a later plain wake does not cancel the request
    assert waker.take_refresh() and not waker.take_refresh()


def test_backoff():
    assert [W.backoff(n) for n in range(0, 9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


# -- k8s helpers ------------------------------------------------------------------------------


def test_termination_message_of_picks_the_last_finished_runner():
    def pod(finished, message, name="runner"):
        return {
            "status": {
                "containerStatuses": [
                    {
                        "name": "app",
                        "state": {"terminated": {"finishedAt": "2099-01-01T00:00:00Z", "message": "app"}},
                    },
                    {"name": name, "state": {"terminated": {"finishedAt": finished, "message": message}}},
                ]
            }
        }

    pods = [pod("2025-01-01T00:00:05Z", "second"), pod("2025-01-01T00:00:01Z", "first")]
    assert ops.termination_message_of(pods) == "second"
    assert ops.termination_message_of([pod("x", "m", name="other")]) is None
    assert ops.termination_message_of([{"status": {}}]) is None


def test_selector_and_ownership():
    assert ops.selector({"b": "2", "a": "1"}) == "a=1,b=2"
    obj = {"metadata": {"ownerReferences": [{"uid": "x"}, {"uid": "u", "controller": True}]}}
    assert ops.controller_uid(obj) == "u" and ops.owned_by(obj, "u") and not ops.owned_by(obj, "")


class FakeResponse:
    def __init__(self, status, body):
        self.status = status
        self.reason = "Reason"
        self._body = body
        self.released = False

    async def read(self):
        return self._body

    def release(self):
        self.released = True


def test_call_returns_json_or_raises_kube_error():
    async def call(status, body):
        response = FakeResponse(status, body)

        async def request():
            return response

        try:
            return await ops._call(request())
        finally:
            assert response.released

    assert asyncio.run(call(200, b'{"a": 1}')) == {"a": 1}
    with pytest.raises(ops.KubeError) as e:
        asyncio.run(call(409, json.dumps({"reason": "AlreadyExists", "message": "exists"}).encode()))
    assert e.value.conflict and e.value.reason == "AlreadyExists"
    with pytest.raises(ops.KubeError) as e:
        asyncio.run(call(404, b"not json"))
    assert e.value.not_found


# -- Job index --------------------------------------------------------------------------------


def test_job_index_entry_is_a_small_summary():
    body = jobs.step_job(CTX, {}, T.pipe(SPEC), 3, 0, "img")
    entry = job_index_entry("ns", body)
    ((key, summary),) = entry.items()
    assert key == ("ns", "run-1") and summary.kind is JobKind.STEP and summary.item == 3
    assert job_index_entry("ns", {"metadata": {"name": "x", "labels": {}}}) is None
    assert job_index_entry(None, body) is None


# -- metrics ----------------------------------------------------------------------------------


def test_new_failures_and_job_duration():
    old = [{"index": 1, "step": "a", "time": "t1", "reason": "AppError"}]
    new = old + [{"index": 2, "step": "a", "time": "t2", "reason": "Timeout"}]
    assert metrics.new_failures(old, new) == [new[1]]
    assert metrics.new_failures(None, None) == []
    done = {"status": {"startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:30Z"}}
    assert metrics.job_duration(done) == 30
    failed = {
        "status": {
            "startTime": "2025-01-01T00:00:00Z",
            "conditions": [
                {"type": "Failed", "status": "True", "lastTransitionTime": "2025-01-01T00:01:00Z"}
            ],
        }
    }
    assert metrics.job_duration(failed) == 60
    assert metrics.job_duration({"status": {"startTime": "2025-01-01T00:00:00Z"}}) is None


def test_step_durations_are_observed_once_per_job():
    job = {
        "metadata": {"uid": "job-uid-once"},
        "status": {"startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:02Z"},
    }
    labels = {"pipeline": "p-once", "step": "s"}
    metrics.observe_step_job(job, **labels)
    metrics.observe_step_job(job, **labels)
    count = metrics.REGISTRY.get_sample_value("mmif_step_duration_seconds_count", labels)
    assert count == 1


def test_in_flight_gauge_sums_runs():
    metrics.set_in_flight(("ns", "a"), 3)
    metrics.set_in_flight(("ns", "b"), 2)
    assert metrics.REGISTRY.get_sample_value("mmif_items_in_flight") == 5
    metrics.set_in_flight(("ns", "a"), None)
    metrics.set_in_flight(("ns", "b"), None)
    assert metrics.REGISTRY.get_sample_value("mmif_items_in_flight") == 0


def test_a_reconcile_loop_retries_a_failed_pass_reads_again_on_request_and_stops(monkeypatch):
    from mmif_operator.core.runtime import loop as Lp

    posted = []
    monkeypatch.setattr(Lp.k8s_events, "post", lambda obj, t, r, m: posted.append((t, r, m)))
    monkeypatch.setattr(Lp, "backoff", lambda failures: 0.01)
    monkeypatch.setattr(Lp, "TIMER_REFRESH_SECONDS", 0.01)
    log = logging.getLogger("test")

    async def scenario():
        wakers = W.Wakers()
        waker = wakers.register(("ns", "r"))
        stop = Flag()
        calls = []

        async def one_pass(refresh):
            calls.append(refresh)
            if len(calls) == 1:
                raise RuntimeError("API down")
            if len(calls) == 2:  # retried after the backoff timer
                asyncio.get_running_loop().call_later(0.01, wakers.wake, ("ns", "r"), True)
                return Lp.Next(timeout=None)  # nothing to wait for but a wake-up
            if len(calls) == 3:
                return Lp.Next(timeout=0.0)  # at once, trusting its copy
            return Lp.Next(stop=True)

        await asyncio.wait_for(
            Lp.reconcile_forever(waker, stop, log, kind="run", ref={}, one_pass=one_pass, debounce=0),
            timeout=5,
        )
        assert calls == [False, True, True, False]
        assert posted == [("Warning", "ReconcileError", "RuntimeError: API down")]

        stop.event.set()  # kopf's stop flag ends a waiting loop
        await asyncio.wait_for(
            Lp.reconcile_forever(waker, stop, log, kind="run", ref={}, one_pass=one_pass), timeout=5
        )
        assert len(calls) == 4

    asyncio.run(scenario())


def test_resync_timeout():
    from mmif_operator.core.runtime.loop import resync_timeout

    assert resync_timeout(None, 300) == 300 and resync_timeout(5, 300) == 5
    assert resync_timeout(-1, 300) == 0 and resync_timeout(900, 300) == 300
