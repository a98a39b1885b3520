"""Notifications: the outbox (which deliveries an event makes, ids, backoff, bounds), what a
delivery sends (CloudEvents, signatures, email templates), the API's rules, and one attempt
against the real receivers of tests/apps (cereceiver, smtpsink) served in-process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import importlib.util
import json
import socket
import sys
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from mmif_operator.admission import urls
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.notifications import deliver, messages, outbox
from mmif_operator.notifications.model import (
    DEFAULT_BODY,
    DEFAULT_SUBJECTS,
    MAX_DELIVERIES,
    CloudEventMode,
    Delivery,
    NotificationEvent,
    NotificationTarget,
    RetryPolicy,
    RunNotifications,
)
from mmif_operator.notifications.outbox import Outcome
from tests.unit import test_handlers_runs as runs_test

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
E = NotificationEvent
APPS = Path(__file__).resolve().parents[1] / "apps"


@dataclass(frozen=True)
class Note:
    event: NotificationEvent
    reason: str = "Succeeded"
    message: str = "3 of 3 items succeeded"


def hook(name="hook", events=("RunSucceeded", "RunFailed"), **webhook):
    return {"name": name, "events": list(events), "webhook": {"url": "http://rx.ns.svc:5000/", **webhook}}


def mail(name="mail", events=("RunFailed",), **email):
    body = {"smtp": {"host": "smtp", "port": 2525, "tls": "None"}, "from": "mmif@x.org", "to": ["qa@x.org"]}
    body.update(email)
    return {"name": name, "events": list(events), "email": body}


def targets(*raw):
    return outbox.parse_targets({"notifications": list(raw)})


RUN = {
    "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"},
    "spec": {"pipelineRef": {"name": "pipe"}},
    "status": {"phase": "Succeeded", "manifestPath": "/data/mmif-runs/run-1/manifest.json"},
}


# -- the API ---------------------------------------------------------------------------------


def test_a_target_is_exactly_one_of_webhook_or_email_and_names_are_unique():
    base = {"steps": [{"name": "a", "image": "a:1"}]}
    ok = PipelineSpec.from_obj({**base, "notifications": [hook(), mail()]})
    assert [t.name for t in ok.notifications] == ["hook", "mail"]
    both = {**hook(), "email": mail()["email"]}
    neither = {"name": "x", "events": ["RunFailed"]}
    for bad, why in [
        (both, "exactly one of webhook or email"),
        (neither, "exactly one of webhook or email"),
        (hook(events=()), "at least 1"),
        (hook(events=("Nope",)), "RunSucceeded"),
        (hook(url="ftp://x/"), "pattern"),
        (mail(to=["not an address"]), "pattern"),
    ]:
        with pytest.raises(ValidationError, match=why):
            PipelineSpec.from_obj({**base, "notifications": [bad]})
    with pytest.raises(ValidationError, match="target names must be unique"):
        PipelineSpec.from_obj({**base, "notifications": [hook(), hook()]})
    with pytest.raises(ValidationError, match="at most 8"):
        PipelineSpec.from_obj({**base, "notifications": [hook(f"h{i}") for i in range(9)]})


def test_the_crd_carries_the_rules_and_bounds():
    schema = PipelineSpec.model_json_schema(by_alias=True)
    text = json.dumps(schema)
    assert "has(self.webhook) != has(self.email)" in text
    assert "spec.notifications: target names must be unique" in text
    assert RunNotifications.model_json_schema()["properties"]["deliveries"]["maxItems"] == MAX_DELIVERIES


def test_the_url_check_of_step_urls_covers_notification_webhooks():
    spec = {"steps": [{"name": "a", "image": "a:1"}], "notifications": [hook(url="http://app.other:5000/")]}
    assert ("spec.notifications[0].webhook.url", "http://app.other:5000/") in urls.url_fields(
        "Pipeline", spec
    )
    (target,) = urls.targets("Pipeline", spec, "ns")
    assert target.service == ("other", "app") and target.field == "spec.notifications[0].webhook.url"
    refused = urls.refusal(target, "ns", [urls.AppService("other", "app")])
    assert refused and "spec.notifications[0].webhook.url" in refused


# -- the outbox ------------------------------------------------------------------------------


def test_an_event_makes_one_delivery_per_target_that_wants_it_with_a_deterministic_id():
    ts = targets(
        hook("a", events=["RunSucceeded"]),
        hook("b", events=["RunFailed"]),
        mail("c", events=["RunSucceeded"]),
    )
    box = outbox.queue(None, [Note(E.RUN_SUCCEEDED)], ts, run_uid="uid-1", phase="Succeeded", now=T0)
    assert box is not None
    deliveries = box["deliveries"]
    assert [(d["target"], d["event"], d["state"]) for d in deliveries] == [
        ("a", "RunSucceeded", "Pending"),
        ("c", "RunSucceeded", "Pending"),
    ]
    assert box["pending"] == 2 and box["delivered"] == 0 and box["failed"] == 0
    assert deliveries[0]["id"] == outbox.delivery_id("uid-1", "RunSucceeded", "a")
    assert deliveries[0]["id"] != outbox.delivery_id("uid-2", "RunSucceeded", "a")
    assert deliveries[0]["id"] != deliveries[1]["id"]
    assert deliveries[0]["nextAttemptAt"] == "2026-01-01T12:00:00Z" and deliveries[0]["attempts"] == 0
    assert deliveries[0]["reason"] == "Succeeded" and deliveries[0]["message"] == "3 of 3 items succeeded"
    # The same event again (a transition planned again) adds nothing; another event does.
    assert outbox.queue(box, [Note(E.RUN_SUCCEEDED)], ts, run_uid="uid-1", phase="Succeeded", now=T0) is None
    again = outbox.queue(
        box, [Note(E.RUN_FAILED, "ItemsFailed")], ts, run_uid="uid-1", phase="Failed", now=T0
    )
    assert again is not None and [d["target"] for d in again["deliveries"]] == ["a", "c", "b"]


def test_an_event_is_routed_only_by_the_targets_events():
    """A publish-failed list is just a target with `events: [PublishFailed]`."""
    ts = targets(
        mail("everyone", events=[e.value for e in E if e is not E.PUBLISH_FAILED]),
        mail("analysts", events=["PublishFailed"]),
    )
    for event in E:
        box = outbox.queue(None, [Note(event)], ts, run_uid="u", phase="Failed", now=T0)
        assert box is not None
        want = ["analysts"] if event is E.PUBLISH_FAILED else ["everyone"]
        assert [d["target"] for d in box["deliveries"]] == want


def test_the_outbox_is_bounded_whatever_happens():
    ts = targets(*(hook(f"h{i}", events=[e.value for e in E]) for i in range(8)))
    box = None
    for _ in range(3):
        for event in E:
            box = outbox.queue(box, [Note(event)], ts, run_uid="u", phase="Running", now=T0) or box
    assert box is not None and len(box["deliveries"]) == MAX_DELIVERIES == 8 * len(E)
    # Long messages are cut.
    long = outbox.queue(
        None, [Note(E.RUN_FAILED, message="x" * 5000)], ts[:1], run_uid="u", phase="Failed", now=T0
    )
    assert long is not None and len(long["deliveries"][0]["message"]) == 512


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy.model_validate({})
    assert (policy.max_attempts, policy.backoff_seconds) == (8, 15)
    waits = [outbox.backoff_seconds(n, policy) for n in range(1, 8)]
    assert waits == [15, 30, 60, 120, 240, 480, 960]
    assert 29 * 60 < sum(waits) < 33 * 60, "8 attempts over about half an hour"
    assert outbox.backoff_seconds(40, RetryPolicy.model_validate({"backoffSeconds": 600})) == 3600


def one_pending(policy=None):
    raw = hook("a", events=["RunFailed"])
    if policy:
        raw["retry"] = policy
    ts = targets(raw)
    box = outbox.queue(None, [Note(E.RUN_FAILED, "ItemsFailed")], ts, run_uid="u", phase="Failed", now=T0)
    return box, {"a": ts[0].retry}, box["deliveries"][0]["id"]


def test_a_failed_attempt_is_retried_with_backoff_then_given_up_with_a_warning():
    box, policies, did = one_pending({"maxAttempts": 3, "backoffSeconds": 2})
    assert [d.id for d in outbox.due(box, T0)] == [did]
    now = T0
    box, notices = outbox.record(box, {did: Outcome(False, error="HTTP 503")}, policies, now)
    d = box["deliveries"][0]
    assert (d["state"], d["attempts"], d["lastError"]) == ("Pending", 1, "HTTP 503")
    assert d["nextAttemptAt"] == "2026-01-01T12:00:02Z" and notices == []
    assert outbox.due(box, now + timedelta(seconds=1)) == []
    assert outbox.seconds_to_next(box, now) == 2
    now += timedelta(seconds=2)
    box, _ = outbox.record(box, {did: Outcome(False, error="HTTP 503")}, policies, now)
    assert box["deliveries"][0]["nextAttemptAt"] == "2026-01-01T12:00:06Z"  # 4 s: doubled
    now += timedelta(seconds=4)
    box, notices = outbox.record(box, {did: Outcome(False, error="connection refused")}, policies, now)
    d = box["deliveries"][0]
    assert (d["state"], d["attempts"], box["pending"], box["failed"]) == ("Failed", 3, 0, 1)
    assert "nextAttemptAt" not in d and d["lastError"] == "connection refused"
    assert [(n.type, n.reason) for n in notices] == [("Warning", "NotificationFailed")]
    assert "gave up after 3 attempts" in notices[0].message and did in notices[0].message
    assert outbox.seconds_to_next(box, now) is None and not outbox.has_pending({"notifications": box})
    # An outcome for a delivery already over changes nothing.
    assert outbox.record(box, {did: Outcome(True)}, policies, now)[0] == box


def test_a_delivered_attempt_and_a_permanent_failure_end_the_delivery_at_once():
    box, policies, did = one_pending()
    done, notices = outbox.record(box, {did: Outcome(True)}, policies, T0)
    assert (done["deliveries"][0]["state"], done["delivered"], done["pending"]) == ("Delivered", 1, 0)
    assert [(n.type, n.reason) for n in notices] == [("Normal", "NotificationDelivered")]
    gone, notices = outbox.record(box, {did: Outcome(False, permanent=True, error="HTTP 404")}, policies, T0)
    assert (gone["deliveries"][0]["state"], gone["deliveries"][0]["attempts"]) == ("Failed", 1)
    assert "a permanent failure" in notices[0].message


def test_http_statuses():
    assert messages.http_outcome(200).delivered and messages.http_outcome(204).delivered
    for code in (408, 429, 500, 502, 503, 504, 301):
        o = messages.http_outcome(code, "later")
        assert not o.delivered and not o.permanent and o.error.startswith(f"HTTP {code}")
    for code in (400, 401, 403, 404, 410):
        assert messages.http_outcome(code).permanent


# -- what is sent ----------------------------------------------------------------------------


def delivery(event=E.RUN_SUCCEEDED, **kw):
    box = outbox.queue(
        None,
        [Note(event, **kw)],
        targets(hook(events=[event.value])),
        run_uid="uid-1",
        phase="Succeeded",
        now=T0,
    )
    return Delivery.model_validate(box["deliveries"][0])


@pytest.mark.parametrize("mode", list(CloudEventMode))
def test_the_cloudevent_reads_back_with_the_sdk_in_both_modes(mode):
    d = delivery()
    run = copy.deepcopy(RUN)
    run["spec"]["review"] = {"decision": "Pass", "comment": "fine", "reviewer": "rita"}
    headers, body = messages.http_request(
        messages.cloud_event(run, d), mode, bearer_token="tok", hmac_key=b"k3y"
    )
    event = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
    assert event.get_specversion() == "1.0"
    assert event.get_id() == d.id == outbox.delivery_id("uid-1", "RunSucceeded", "hook")
    assert event.get_type() == "dev.mmif.pipelinerun.succeeded"
    assert event.get_source() == "/apis/mmif.dev/v1alpha1/namespaces/ns/pipelineruns/run-1"
    assert event.get_subject() == "run-1" and event.get_time() == T0
    data = event.get_data()
    assert data == {
        "run": "run-1",
        "namespace": "ns",
        "uid": "uid-1",
        "pipeline": "pipe",
        "event": "RunSucceeded",
        "phase": "Succeeded",
        "reason": "Succeeded",
        "message": "3 of 3 items succeeded",
        "manifestPath": "/data/mmif-runs/run-1/manifest.json",
        "review": {"decision": "Pass", "comment": "fine", "reviewer": "rita"},
    }
    assert headers["Authorization"] == "Bearer tok"
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert headers["X-Mmif-Signature"] == f"sha256={expected}" == messages.signature(b"k3y", body)
    if mode is CloudEventMode.STRUCTURED:
        assert headers["content-type"].startswith("application/cloudevents+json")
    else:
        assert headers["ce-id"] == d.id


def test_every_event_has_a_type_and_a_default_subject():
    for event in E:
        prefix = (
            "dev.mmif.monitor."
            if event is E.HEALTH_CHANGED
            else "dev.mmif.project."
            if event.value in ("DisposalNotice", "ProjectClosed", "SharedRecords")
            else "dev.mmif.pipelinerun."
        )
        assert messages.event_type(event).startswith(prefix)
        assert event in DEFAULT_SUBJECTS
    assert len({messages.event_type(e) for e in E}) == len(E)


def test_templates_fill_only_known_placeholders():
    values = {"run": "r", "namespace": "n", "message": "m"}
    assert messages.render("{namespace}/{run}: {message} {unknown} {", values) == "n/r: m {unknown} {"
    assert messages.render("{run.__class__}", values) == "{run.__class__}"


def test_the_email_of_an_event_default_and_per_event():
    t = targets(
        mail(
            messages=[
                {"event": "RunFailed", "subject": "FAILED {run}: {reason}\nX", "body": "see {manifestPath}"}
            ]
        )
    )[0]
    assert t.email is not None
    d = delivery(E.RUN_FAILED, reason="ItemsFailed", message="1 of 3 failed")
    msg = messages.email_message(t.email, RUN, d)
    assert msg["Subject"] == "FAILED run-1: ItemsFailed X"
    assert msg.get_content().strip() == "see /data/mmif-runs/run-1/manifest.json"
    assert (
        msg["Message-ID"] == f"<{d.id}@mmif.dev>" and msg["To"] == "qa@x.org" and msg["From"] == "mmif@x.org"
    )
    d2 = delivery(E.RUN_SUCCEEDED)
    msg2 = messages.email_message(t.email, RUN, d2)
    assert msg2["Subject"] == "[mmif] ns/run-1 succeeded"
    assert msg2.get_content().strip() == messages.render(DEFAULT_BODY, messages.event_data(RUN, d2)).strip()
    assert "Phase: Succeeded" in msg2.get_content()


# -- the handler queues with the transition --------------------------------------------------


def test_the_status_patch_that_ends_a_run_holds_its_deliveries():
    pipeline = {
        **runs_test.PIPELINE,
        "notifications": [hook("ok", events=["RunSucceeded"]), mail("bad", events=["RunFailed"])],
    }
    kube = runs_test.FakeKube(runs_test.make_run(2), pipeline=pipeline)
    patches = []
    orig = kube.patch_status

    async def spy(plural, ns, name, patch, resource_version=None):
        patches.append(copy.deepcopy(patch))
        return await orig(plural, ns, name, patch, resource_version=resource_version)

    kube.patch_status = spy
    for _ in range(20):
        runs_test.finish_all(kube)
        if runs_test.reconcile(kube).done:
            break
    final = [p for p in patches if p.get("phase") == "Succeeded"]
    assert len(final) == 1 and "notifications" in final[0], "queued in the transition's own patch"
    assert not any("notifications" in p for p in patches if p is not final[0])
    box = kube.run["status"]["notifications"]
    assert [(d["target"], d["event"], d["state"]) for d in box["deliveries"]] == [
        ("ok", "RunSucceeded", "Pending")
    ]
    assert box["deliveries"][0]["id"] == outbox.delivery_id("uid-1", "RunSucceeded", "ok")


# -- one attempt, against the real receivers (tests/apps) served in-process -------------------


def load_app(name):
    spec = importlib.util.spec_from_file_location(f"mmif_test_receiver_{name}", APPS / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve_http(module):
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class SecretsKube:
    def __init__(self, secrets):
        self.secrets = secrets

    async def get(self, kind, ns, name):
        assert kind == "Secret"
        return copy.deepcopy(self.secrets.get((ns, name)))


def secret(data, labelled=True):
    labels = {"mmif.dev/notifications": "true"} if labelled else {}
    return {
        "metadata": {"labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def attempt(kube, target, d, run=RUN):
    async def go():
        sender = deliver.Sender(kube)
        try:
            return await sender.attempt(target, run, d)
        finally:
            await sender.close()

    return asyncio.run(go())


def test_a_webhook_attempt_against_the_cloudevents_receiver():
    rx = load_app("cereceiver")
    kube = SecretsKube(
        {
            ("ns", "hook-auth"): secret({"token": "s3cret", "key": "hm"}),
            ("ns", "plain"): secret({"token": "x"}, labelled=False),
        }
    )
    with serve_http(rx) as url:
        t = targets(
            hook(
                url=url + "/hook",
                bearerTokenSecretRef={"name": "hook-auth", "key": "token"},
                hmacSecretRef={"name": "hook-auth", "key": "key"},
            )
        )[0]
        d = delivery()
        assert attempt(kube, t, d) == Outcome(True)
        (got,) = rx.STATE["events"]
        assert got["attributes"]["id"] == d.id and got["authorization"] == "Bearer s3cret"
        assert got["signature"] == messages.signature(b"hm", got["body"].encode())
        # Down: retried; a request that is not a CloudEvent is refused with 400 (permanent).
        rx.STATE["status"] = 503
        o = attempt(kube, t, d)
        assert not o.delivered and not o.permanent and o.error.startswith("HTTP 503")
        rx.STATE["status"] = 200
        req = urllib.request.Request(
            url + "/hook", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400 and rx.STATE["refused"] == 1
        # A Secret not opted in is not used: the attempt fails saying why.
        t2 = targets(hook(url=url, bearerTokenSecretRef={"name": "plain", "key": "token"}))[0]
        o = attempt(kube, t2, d)
        assert not o.delivered and "is not labelled mmif.dev/notifications='true'" in o.error
        o = attempt(kube, targets(hook(url=url, hmacSecretRef={"name": "missing", "key": "k"}))[0], d)
        assert "Secret 'missing' not found in namespace 'ns'" in o.error
        assert len(rx.STATE["events"]) == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_email_attempt_against_the_smtp_server():
    from aiosmtpd.controller import Controller

    sink = load_app("smtpsink")
    port = free_port()
    controller = Controller(
        sink.Recorder(),
        hostname="127.0.0.1",
        port=port,
        authenticator=sink.authenticator("mmif", "pw"),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        kube = SecretsKube(
            {
                ("ns", "smtp"): secret({"username": "mmif", "password": "pw"}),
                ("ns", "wrong"): secret({"username": "mmif", "password": "no"}),
            }
        )
        smtp = {"host": "127.0.0.1", "port": port, "tls": "None"}
        t = targets(mail(smtp=smtp, credentialsSecretRef={"name": "smtp"}))[0]
        d = delivery(E.RUN_FAILED, reason="ItemsFailed")
        assert attempt(kube, t, d) == Outcome(True)
        (got,) = sink.STATE["messages"]
        assert got["subject"] == "[mmif] ns/run-1 failed: ItemsFailed" and got["to"] == ["qa@x.org"]
        assert got["messageId"] == f"<{d.id}@mmif.dev>" and got["authenticated"]
        bad = attempt(kube, targets(mail(smtp=smtp, credentialsSecretRef={"name": "wrong"}))[0], d)
        assert not bad.delivered and bad.permanent and bad.error.startswith("SMTP 535")
        nologin = attempt(kube, targets(mail(smtp=smtp))[0], d)
        assert not nologin.delivered and "530" in nologin.error
    finally:
        controller.stop()
    down = attempt(
        SecretsKube({}), targets(mail(smtp={"host": "127.0.0.1", "port": free_port(), "tls": "None"}))[0], d
    )
    assert not down.delivered and not down.permanent and "SMTP 127.0.0.1" in down.error


def test_a_target_list_that_does_not_parse_keeps_the_others():
    ok = NotificationTarget.model_validate(hook()).to_dict()
    assert [t.name for t in outbox.parse_targets({"notifications": [ok, {"name": "x"}]})] == ["hook"]


def test_a_run_that_fails_before_it_took_a_snapshot_notifies_the_pipelines_targets():
    """WorkspaceNotFound for longer than startTimeoutSeconds: no status.pipelineSpec yet, so the
    targets are those of the Pipeline read in that pass."""
    pipeline = {**runs_test.PIPELINE, "notifications": [mail("qa", events=["RunFailed"])]}
    run = runs_test.make_run(1, startTimeoutSeconds=60)
    run["metadata"]["creationTimestamp"] = "2025-01-01T12:00:00Z"
    kube = runs_test.FakeKube(run, pipeline=pipeline, pvc=False)
    runs_test.reconcile(kube)
    assert kube.run["status"]["phase"] == "Pending" and "notifications" not in kube.run["status"]
    runs_test.reconcile(kube, now=runs_test.T0 + timedelta(seconds=61))
    status = kube.run["status"]
    assert status["phase"] == "Failed" and "pipelineSpec" not in status
    (d,) = status["notifications"]["deliveries"]
    assert (d["target"], d["event"], d["reason"], d["phase"]) == (
        "qa",
        "RunFailed",
        "WorkspaceNotFound",
        "Failed",
    )


class OutboxKube:
    """A run with an outbox; the first status patch meets a conflict (the run's loop queued
    another delivery meanwhile)."""

    def __init__(self, run, meanwhile):
        self.run, self.meanwhile, self.patches = run, meanwhile, []

    async def get_custom(self, plural, ns, name):
        assert plural == "pipelineruns"
        return copy.deepcopy(self.run)

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        from mmif_operator.core.kube.ops import KubeError

        self.patches.append(resource_version)
        if self.meanwhile is not None:
            self.run["status"]["notifications"] = self.meanwhile
            self.run["metadata"]["resourceVersion"] = "2"
            self.meanwhile = None
        if resource_version != self.run["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "modified")
        self.run["status"].update(copy.deepcopy(patch))
        return self.run


def test_a_delivery_pass_records_its_outcomes_onto_the_latest_run(monkeypatch):
    from mmif_operator.notifications import handler as NH

    ts = targets(hook("a", events=["RunSucceeded", "AwaitingReview"]))
    first = outbox.queue(None, [Note(E.AWAITING_REVIEW)], ts, run_uid="uid-1", phase="AwaitingReview", now=T0)
    both = outbox.queue(first, [Note(E.RUN_SUCCEEDED)], ts, run_uid="uid-1", phase="Succeeded", now=T0)
    run = copy.deepcopy(RUN)
    run["metadata"]["resourceVersion"] = "1"
    run["status"] = {
        "pipelineSpec": {"notifications": [hook("a", events=["RunSucceeded", "AwaitingReview"])]},
        "notifications": first,
    }
    kube = OutboxKube(run, meanwhile=both)
    sent = []

    async def fake_attempt(target, run, delivery):
        sent.append((target.name, delivery.event))
        return Outcome(True)

    monkeypatch.setattr(NH, "_attempt", fake_attempt)
    wait = asyncio.run(NH.deliver_pass(kube, "ns", "run-1", "uid-1", now=T0))
    assert sent == [("a", E.AWAITING_REVIEW)] and kube.patches == ["1", "2"]
    box = kube.run["status"]["notifications"]
    assert [(d["event"], d["state"]) for d in box["deliveries"]] == [
        ("AwaitingReview", "Delivered"),
        ("RunSucceeded", "Pending"),
    ]
    assert wait == 0.0, "the one queued meanwhile is due at once"
    assert asyncio.run(NH.deliver_pass(kube, "ns", "run-1", "uid-1", now=T0)) is None
    assert kube.run["status"]["notifications"]["delivered"] == 2
    assert asyncio.run(NH.deliver_pass(kube, "ns", "run-1", "another-uid")) is None
