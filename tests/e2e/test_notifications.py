"""Notifications end to end, on the real cluster with the real operator and real receivers as
pods (tests/apps/cereceiver: every request parsed with the cloudevents SDK; tests/apps/smtpsink:
an aiosmtpd SMTP server requiring a login), as a user observes them: what the receivers got, the
run's `status.notifications`, its Events.

Every target here retries after 1 s, 2 s, 4 s, ... (`retry.backoffSeconds: 1`), so a test waits
seconds, not the default half hour."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections import defaultdict

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

RECEIVER = "cereceiver"
SMTP = "smtpsink"
HMAC_KEY = "hmac-key-of-the-test"
TOKEN = "token-of-the-test"
ADDRESS = "qa@example.org"
ANALYSTS = "analysts@example.org"
SOURCE = "/apis/mmif.dev/v1alpha1/namespaces/{ns}/pipelineruns/{run}"


# --- the receivers ------------------------------------------------------------------------------


def receiver_objects(
    app: str, image: str, ports: dict[str, int], env: dict[str, str] | None = None
) -> list[dict]:
    labels = {"app": app}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": app, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": app,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                    "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
                    "readinessProbe": {"tcpSocket": {"port": next(iter(ports.values()))}, "periodSeconds": 1},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app},
        "spec": {
            "selector": labels,
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()],
        },
    }
    return [pod, service]


def opted_in_secret(name: str, data: dict[str, str], labelled: bool = True) -> dict:
    meta: dict = {"name": name}
    if labelled:
        meta["labels"] = {"mmif.dev/notifications": "true"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data}


@pytest.fixture
def receivers(operator_deployed, namespace, build):
    objects = [
        *receiver_objects(RECEIVER, build.app_image(RECEIVER), {"http": 5000}),
        *receiver_objects(
            SMTP,
            build.app_image(SMTP),
            {"smtp": 2525, "http": 5000},
            {"SMTP_USERNAME": "mmif", "SMTP_PASSWORD": "pw"},
        ),
        opted_in_secret("hook-auth", {"token": TOKEN, "hmac": HMAC_KEY}),
        opted_in_secret("smtp-login", {"username": "mmif", "password": "pw"}),
    ]
    build.apply(objects, namespace)
    for app in (RECEIVER, SMTP):
        kube.wait(f"pod/{app}", "condition=Ready", namespace, timeout=120)
    return namespace


def _http(namespace: str, pod: str, method: str, path: str) -> dict:
    """A request to a receiver pod's HTTP side, from inside the pod."""
    code = (
        "import json,sys,urllib.request as u;"
        f"r=u.urlopen(u.Request('http://127.0.0.1:5000{path}',method='{method}',data=b'' if '{method}'=='PUT' else None),timeout=10);"
        "sys.stdout.write(r.read().decode())"
    )
    return json.loads(kube.kubectl("exec", pod, "-n", namespace, "--", "python", "-c", code).stdout)


def received(namespace: str) -> dict:
    return _http(namespace, RECEIVER, "GET", "/events")


def answer_with(namespace: str, status: int) -> None:
    _http(namespace, RECEIVER, "PUT", f"/status/{status}")


def mails(namespace: str) -> list[dict]:
    return _http(namespace, SMTP, "GET", "/messages")["messages"]


# --- Pipelines and runs -------------------------------------------------------------------------


def webhook_target(namespace: str, events: list[str], **retry) -> dict:
    return {
        "name": "hooks",
        "events": events,
        "webhook": {
            "url": f"http://{RECEIVER}.{namespace}.svc:5000/hook",
            "bearerTokenSecretRef": {"name": "hook-auth", "key": "token"},
            "hmacSecretRef": {"name": "hook-auth", "key": "hmac"},
        },
        "retry": {"backoffSeconds": 1, "maxAttempts": 16, **retry},
    }


def email_target(
    namespace: str, name: str, to: str, events: list[str], messages: list[dict] | None = None
) -> dict:
    return {
        "name": name,
        "events": events,
        "email": {
            "smtp": {"host": f"{SMTP}.{namespace}.svc", "port": 2525, "tls": "None"},
            "credentialsSecretRef": {"name": "smtp-login"},
            "from": "mmif@example.org",
            "to": [to],
            "messages": messages or [],
        },
        "retry": {"backoffSeconds": 1},
    }


def make_pipeline(build, workspace, name: str, notifications: list[dict]) -> None:
    build.apply(
        build.pipeline(
            name,
            [build.step("text", "textgen")],
            claim_name=workspace.claim_name,
            notifications=notifications,
        ),
        workspace.namespace,
    )


def make_run(build, workspace, name: str, pipeline: str, location: str) -> None:
    build.apply(
        build.run(name, pipeline, [build.item(location, name="clip")], claim_name=workspace.claim_name),
        workspace.namespace,
    )


def outbox(namespace: str, run: str) -> dict:
    return (kube.get("pipelinerun", run, namespace).get("status") or {}).get("notifications") or {}


def wait_delivered(runs, namespace: str, run: str, count: int, timeout: float = 90) -> dict:
    def done():
        box = outbox(namespace, run)
        return box if box.get("delivered") == count and not box.get("pending") else None

    try:
        return kube.eventually(done, timeout=timeout, interval=1, what=f"{count} deliveries of {run}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{runs.diagnostics(namespace, run)}") from None


def events_by_id(namespace: str) -> dict[str, list[dict]]:
    by_id: dict[str, list[dict]] = defaultdict(list)
    for record in received(namespace)["events"]:
        by_id[record["attributes"]["id"]].append(record)
    return by_id


def run_events(namespace: str, run: str, reason: str) -> list[dict]:
    return [
        e
        for e in kube.get_list("events", namespace)
        if e.get("involvedObject", {}).get("name") == run and e.get("reason") == reason
    ]


def one_event_for(namespace: str, run: str) -> dict:
    """The one CloudEvent (by id) the receiver accepted for `run`; duplicates only with that id."""
    source = SOURCE.format(ns=namespace, run=run)
    mine = {i: rs for i, rs in events_by_id(namespace).items() if rs[0]["attributes"]["source"] == source}
    assert len(mine) == 1, mine
    (records,) = mine.values()
    assert all(r["attributes"] == records[0]["attributes"] for r in records), "a duplicate differs"
    return records[0]


# --- 1. a run that succeeds and one that fails --------------------------------------------------


def test_a_succeeded_and_a_failed_run_notify_the_webhook_and_the_email_targets_once_each(
    receivers, workspace, build, runs
):
    ns = workspace.namespace
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    make_pipeline(
        build,
        workspace,
        "told",
        [
            webhook_target(ns, ["RunSucceeded", "RunFailed"]),
            email_target(
                ns,
                "qa",
                ADDRESS,
                ["RunSucceeded", "RunFailed"],
                [
                    {
                        "event": "RunFailed",
                        "subject": "FAILED {run}: {reason}",
                        "body": "{namespace}/{run}: {message}",
                    }
                ],
            ),
            email_target(ns, "publish-failed", ANALYSTS, ["PublishFailed"]),
        ],
    )
    make_run(build, workspace, "good", "told", "media/clip.mp4")
    make_run(build, workspace, "bad", "told", "media/missing.mp4")  # prepare fails: InvalidItems
    good = runs.wait_to_finish(ns, "good", timeout=240)
    bad = runs.wait_to_finish(ns, "bad", timeout=240)
    assert (good["status"]["phase"], bad["status"]["phase"]) == ("Succeeded", "Failed")
    bad_reason = runs.condition(bad)["reason"]

    for run in ("good", "bad"):
        box = wait_delivered(runs, ns, run, 2)
        assert (box["pending"], box["failed"]) == (0, 0)
        assert sorted((d["target"], d["event"], d["attempts"]) for d in box["deliveries"]) == [
            ("hooks", "RunSucceeded" if run == "good" else "RunFailed", 1),
            ("qa", "RunSucceeded" if run == "good" else "RunFailed", 1),
        ]

    # The webhook: one CloudEvent per run, as the SDK reads it, signed, with the bearer token.
    for run, obj, kind in (("good", good, "succeeded"), ("bad", bad, "failed")):
        record = one_event_for(ns, run)
        attrs, data = record["attributes"], record["data"]
        box = outbox(ns, run)
        hook_delivery = next(d for d in box["deliveries"] if d["target"] == "hooks")
        assert attrs["specversion"] == "1.0"
        assert attrs["type"] == f"dev.mmif.pipelinerun.{kind}"
        assert attrs["source"] == SOURCE.format(ns=ns, run=run)
        assert attrs["subject"] == run and attrs["id"] == hook_delivery["id"]
        assert data["run"] == run and data["namespace"] == ns and data["uid"] == obj["metadata"]["uid"]
        assert data["phase"] == obj["status"]["phase"] and data["reason"] == runs.condition(obj)["reason"]
        assert record["authorization"] == f"Bearer {TOKEN}"
        digest = hmac.new(HMAC_KEY.encode(), record["body"].encode(), hashlib.sha256).hexdigest()
        assert record["signature"] == f"sha256={digest}"
    assert one_event_for(ns, "good")["data"]["manifestPath"] == good["status"]["manifestPath"]
    assert received(ns)["refused"] == 0

    # The email: one per run to the QA list (the default subject, and RunFailed's own), none to
    # the publish-failed list: no run failed publishing.
    got = mails(ns)
    assert sorted(m["subject"] for m in got) == sorted(
        [f"[mmif] {ns}/good succeeded", f"FAILED bad: {bad_reason}"]
    )
    assert all(m["to"] == [ADDRESS] and m["authenticated"] for m in got), got
    failed_mail = next(m for m in got if m["subject"].startswith("FAILED"))
    message = next(d["message"] for d in outbox(ns, "bad")["deliveries"] if d["target"] == "qa")
    assert runs.condition(bad)["message"].startswith(message.rstrip("…"))
    assert failed_mail["body"].strip() == f"{ns}/bad: {message}"
    good_mail = next(m for m in got if m is not failed_mail)
    assert "Phase: Succeeded" in good_mail["body"] and good["status"]["manifestPath"] in good_mail["body"]
    qa_id = next(d["id"] for d in outbox(ns, "good")["deliveries"] if d["target"] == "qa")
    assert good_mail["messageId"] == f"<{qa_id}@mmif.dev>"
    assert len(run_events(ns, "good", "NotificationDelivered")) >= 1


# --- 1b. the review gate's notifications; a publish failure goes to its own list ----------------


def test_review_notifications_and_a_publish_failure_mail_to_the_publish_failed_list(
    receivers, workspace, build, runs
):
    """A run with review notifies `AwaitingReview` (naming the manifest) and `ReviewPassed`; its
    publish failing sends `PublishFailed` to the publish-failed list only, with its own subject
    (as the table says: that row's only notification is PublishFailed, not RunFailed)."""
    ns = workspace.namespace
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    build.apply(
        build.pipeline(
            "gated",
            [build.step("text", "textgen")],
            claim_name=workspace.claim_name,
            review={"required": True},
            notifications=[
                webhook_target(ns, ["AwaitingReview", "ReviewPassed", "RunSucceeded", "RunFailed"]),
                email_target(ns, "qa", ADDRESS, ["AwaitingReview"]),
                email_target(ns, "publish-failed", ANALYSTS, ["PublishFailed"]),
            ],
        ),
        ns,
    )
    make_run(build, workspace, "gated-run", "gated", "media/clip.mp4")

    def awaiting():
        run = kube.get("pipelinerun", "gated-run", ns)
        phase = (run.get("status") or {}).get("phase")
        assert phase not in ("Succeeded", "Failed", "Cancelled"), runs.diagnostics(ns, "gated-run")
        return run if phase == "AwaitingReview" else None

    run = kube.eventually(awaiting, timeout=240, interval=2, what="gated-run awaiting review")
    manifest_path = run["status"]["manifestPath"]
    box = wait_delivered(runs, ns, "gated-run", 2)
    assert sorted((d["target"], d["event"]) for d in box["deliveries"]) == [
        ("hooks", "AwaitingReview"),
        ("qa", "AwaitingReview"),
    ]
    awaiting_event = one_event_for(ns, "gated-run")
    assert awaiting_event["attributes"]["type"] == "dev.mmif.pipelinerun.awaiting-review"
    assert awaiting_event["data"]["manifestPath"] == manifest_path
    (qa_mail,) = mails(ns)
    assert qa_mail["to"] == [ADDRESS] and manifest_path in qa_mail["body"], qa_mail

    # someone else's review.json sits where publishing writes: the publish Job fails
    workspace.write_media({f"{run['status']['outputPath']}/review.json": '{"decision": "Fail"}\n'})
    kube.kubectl(
        "patch",
        "pipelinerun",
        "gated-run",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"review": {"decision": "Pass", "comment": "looks right"}}}),
    )
    run = runs.wait_to_finish(ns, "gated-run", timeout=240)
    assert runs.condition(run)["reason"] == "PublishFailed", runs.diagnostics(ns, "gated-run")
    box = wait_delivered(runs, ns, "gated-run", 4)
    assert sorted((d["target"], d["event"]) for d in box["deliveries"]) == [
        ("hooks", "AwaitingReview"),
        ("hooks", "ReviewPassed"),
        ("publish-failed", "PublishFailed"),
        ("qa", "AwaitingReview"),
    ]
    types = sorted(rs[0]["attributes"]["type"] for rs in events_by_id(ns).values())
    assert types == ["dev.mmif.pipelinerun.awaiting-review", "dev.mmif.pipelinerun.review-passed"], types
    analysts = [m for m in mails(ns) if m["to"] == [ANALYSTS]]
    assert [m["subject"] for m in analysts] == [f"[mmif] {ns}/gated-run: publishing failed"], analysts
    assert len(mails(ns)) == 2  # the QA list got only its AwaitingReview mail


# --- 2. a receiver that is down -----------------------------------------------------------------


def test_a_receiver_that_is_down_delays_nothing_and_gets_the_event_once_it_is_back(
    receivers, workspace, build, runs
):
    ns = workspace.namespace
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    make_pipeline(build, workspace, "told", [webhook_target(ns, ["RunSucceeded"])])
    answer_with(ns, 503)
    make_run(build, workspace, "patient", "told", "media/clip.mp4")
    run = runs.wait_to_finish(ns, "patient", timeout=240)
    assert run["status"]["phase"] == "Succeeded"

    # The run ended while its delivery is still being tried: the receiver delayed nothing.
    def retried():
        box = outbox(ns, "patient")
        (d,) = box.get("deliveries") or [{}]
        return d if box.get("pending") == 1 and d.get("attempts", 0) >= 2 else None

    d = kube.eventually(retried, timeout=60, interval=1, what="two failed attempts")
    assert d["state"] == "Pending" and d["lastError"].startswith("HTTP 503") and d["nextAttemptAt"]
    assert received(ns)["unavailable"] >= 2 and received(ns)["events"] == []
    assert (
        kube.get("pipelinerun", "patient", ns)["status"]["completionTime"] == run["status"]["completionTime"]
    )

    answer_with(ns, 200)
    box = wait_delivered(runs, ns, "patient", 1, timeout=60)
    assert box["deliveries"][0]["attempts"] >= 3
    record = one_event_for(ns, "patient")
    assert record["attributes"]["id"] == box["deliveries"][0]["id"]
    assert len(received(ns)["events"]) == 1, "delivered once"


# --- 3. the operator killed while a delivery is pending ----------------------------------------


def test_a_delivery_pending_when_the_operator_is_killed_is_made_afterwards_once(
    receivers, workspace, build, runs, operator_deployed
):
    ns = workspace.namespace
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    make_pipeline(build, workspace, "told", [webhook_target(ns, ["RunSucceeded"])])
    answer_with(ns, 503)
    make_run(build, workspace, "survivor", "told", "media/clip.mp4")
    runs.wait_to_finish(ns, "survivor", timeout=240)
    kube.eventually(
        lambda: (outbox(ns, "survivor").get("deliveries") or [{}])[0].get("attempts", 0) >= 1,
        timeout=60,
        interval=1,
        what="a failed attempt",
    )

    ns_op = operator_deployed.namespace
    old = [
        p["metadata"]["name"] for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
    ]
    assert len(old) == 1, old
    kube.kubectl("delete", "pod", old[0], "-n", ns_op, "--grace-period=0", "--force")
    assert outbox(ns, "survivor")["pending"] == 1
    answer_with(ns, 200)

    box = wait_delivered(runs, ns, "survivor", 1, timeout=180)
    record = one_event_for(ns, "survivor")
    assert record["attributes"]["id"] == box["deliveries"][0]["id"]
    assert len(received(ns)["events"]) == 1, "delivered once"
    new = [
        p["metadata"]["name"] for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
    ]
    assert old[0] not in new


# --- 4. a Secret that is not opted in ----------------------------------------------------------


def test_a_secret_without_the_opt_in_label_is_not_used_and_the_delivery_says_why(
    receivers, workspace, build, runs
):
    ns = workspace.namespace
    workspace.write_media({"media/clip.mp4": "not really a video\n"})
    build.apply(opted_in_secret("not-for-us", {"token": "private"}, labelled=False), ns)
    target = webhook_target(ns, ["RunSucceeded"], maxAttempts=2)
    target["webhook"]["bearerTokenSecretRef"] = {"name": "not-for-us", "key": "token"}
    make_pipeline(build, workspace, "told", [target])
    make_run(build, workspace, "nosy", "told", "media/clip.mp4")
    runs.wait_to_finish(ns, "nosy", timeout=240)

    def given_up():
        box = outbox(ns, "nosy")
        return box if box.get("failed") == 1 else None

    box = kube.eventually(given_up, timeout=60, interval=1, what="the delivery to be given up")
    (d,) = box["deliveries"]
    assert (d["state"], d["attempts"]) == ("Failed", 2)
    assert "Secret 'not-for-us' is not labelled mmif.dev/notifications='true'" in d["lastError"]
    assert received(ns)["events"] == [], "nothing was sent"
    warnings = run_events(ns, "nosy", "NotificationFailed")
    assert warnings and warnings[0]["type"] == "Warning" and "not labelled" in warnings[0]["message"]


# --- 5. admission -------------------------------------------------------------------------------


@pytest.fixture
def other_namespace(cluster):
    name = f"t-notify-b-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    if os.environ.get("MMIF_KEEP_NAMESPACES") != "1":
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_webhook_may_not_name_another_namespaces_app_and_a_target_is_one_kind(
    operator_deployed, namespace, other_namespace, build
):
    # One of the operator's app Services (by its labels) in another namespace.
    app_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "col-a--1234abcd",
            "labels": {
                "app.kubernetes.io/managed-by": "mmif-operator",
                "app.kubernetes.io/component": "app-service",
            },
        },
        "spec": {"selector": {"app": "none"}, "ports": [{"port": 5000}]},
    }
    build.apply(app_service, other_namespace)
    url = f"http://col-a--1234abcd.{other_namespace}.svc:5000/"
    steps = [build.step("text", "textgen")]
    target = {"name": "leak", "events": ["RunSucceeded"], "webhook": {"url": url}}
    proc = kube.create(build.pipeline("leaky", steps, notifications=[target]), namespace, check=False)
    assert proc.returncode != 0, "admitted"
    assert 'admission webhook "urls.pipelines.mmif.dev" denied the request' in proc.stderr, proc.stderr
    assert f"spec.notifications[0].webhook.url: '{url}'" in proc.stderr, proc.stderr
    assert kube.get_list("pipelines", namespace) == []

    both = {
        **target,
        "webhook": {"url": "http://rx:5000/"},
        "email": {"smtp": {"host": "smtp"}, "from": "a@b.c", "to": ["d@e.f"]},
    }
    proc = kube.create(build.pipeline("both", steps, notifications=[both]), namespace, check=False)
    assert proc.returncode != 0 and "exactly one of webhook or email" in proc.stderr, proc.stderr
    assert "spec.notifications[0]" in proc.stderr, proc.stderr

    # The same name in the pipeline's own namespace is fine.
    own = {**target, "webhook": {"url": "http://col-a--1234abcd:5000/"}}
    kube.create(build.pipeline("fine", steps, notifications=[own]), namespace)
    assert [p["metadata"]["name"] for p in kube.get_list("pipelines", namespace)] == ["fine"]
