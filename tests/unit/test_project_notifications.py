"""A Project's notifications (kinds/project/notify.py, planning.py's notes, notifications/):
the events a project sends, their CloudEvent and email, queueing once per occurrence (restart
safe), the delivery pass over a cluster-scoped Project, and the API's rule on a Project's events."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from mmif_operator.core.kube.ops import KubeError
from mmif_operator.kinds.project import notify
from mmif_operator.kinds.project import planning as P
from mmif_operator.kinds.project.model import ProjectSpec
from mmif_operator.notifications import messages, outbox
from mmif_operator.notifications.model import CloudEventMode, Delivery, NotificationEvent
from mmif_operator.notifications.outbox import Outcome

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
E = NotificationEvent


def hook(name="hook", events=("ProjectClosed", "DisposalNotice", "SharedRecords")):
    return {"name": name, "events": list(events), "webhook": {"url": "http://rx.p.svc:5000/"}}


def project(*targets, rv="1", box=None):
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Project",
        "metadata": {"name": "p", "uid": "puid", "resourceVersion": rv},
        "spec": {"state": "Closed", "notifications": list(targets)},
        "status": {"phase": "Closing", **({"notifications": box} if box else {})},
    }


def test_a_projects_targets_take_only_project_events():
    ProjectSpec.from_obj({"notifications": [hook()]})
    with pytest.raises(ValidationError, match="take only DisposalNotice, ProjectClosed and SharedRecords"):
        ProjectSpec.from_obj({"notifications": [hook(events=["RunSucceeded"])]})
    rule = next(r for r in ProjectSpec.cel_rules if "notifications" in r.rule)
    assert '["DisposalNotice", "ProjectClosed", "SharedRecords"]' in rule.rule


def closed_plan():
    return P.plan_closure("p", ProjectSpec.from_obj({"state": "Closed"}), "Closing", [])


def test_the_notes_of_a_project_key_each_occurrence():
    closed = P.closed_note(closed_plan(), 4)
    assert (closed.event, closed.key, closed.reason, closed.phase) == (
        E.PROJECT_CLOSED,
        "ProjectClosed/4",
        P.R_PROJECT_CLOSED,
        "Closed",
    )
    assert "project p is Closed" in closed.message
    steps = [
        P.DisposalStep("r2", P.NOTICE, T0 + timedelta(days=7)),
        P.DisposalStep("r1", P.NOTICE, T0 + timedelta(days=6)),
        P.DisposalStep("r3", P.DISPOSE, T0),
    ]
    note = P.disposal_note("p", "P90D", steps, "Open")
    assert note is not None and note.event is E.DISPOSAL_NOTICE
    assert (
        "deletes the work in progress of 2 run(s): r1 at 2026-12-07T12:00:00Z, r2 at 2026-12-08"
        in note.message
    )
    assert "r3" not in note.message, "a run disposed of now was told before"
    assert note.key == P.disposal_note("p", "P90D", list(reversed(steps)), "Open").key, "order-free"
    later = [P.DisposalStep("r1", P.NOTICE, T0 + timedelta(days=8))]
    assert P.disposal_note("p", "P90D", later, "Open").key != note.key, "a moved due: a new notice"
    assert P.disposal_note("p", "P90D", steps[2:], "Open") is None
    shared = P.shared_note("runs of other Open projects ...", "Open")
    assert shared.event is E.SHARED_RECORDS and shared.key.startswith("SharedRecords/")
    assert shared.key != P.shared_note("another message", "Open").key


def test_an_occurrence_is_queued_once_and_a_later_one_replaces_it():
    ts = outbox.parse_targets({"notifications": [hook()]})
    note = P.closed_note(closed_plan(), 4)
    box = outbox.queue_once(None, [note], ts, uid="puid/ProjectClosed/4", phase="Closed", now=T0)
    assert box is not None and box["pending"] == 1
    [d] = box["deliveries"]
    assert d["id"] == outbox.delivery_id("puid/ProjectClosed/4", "ProjectClosed", "hook")
    # Replayed (a restart before the phase said Closed): nothing to write, even once delivered.
    assert outbox.queue_once(box, [note], ts, uid="puid/ProjectClosed/4", phase="Closed", now=T0) is None
    done, _ = outbox.record(box, {d["id"]: Outcome(True)}, {}, T0)
    assert outbox.queue_once(done, [note], ts, uid="puid/ProjectClosed/4", phase="Closed", now=T0) is None
    # Opened and closed again: a new occurrence, a new id; the old entry goes.
    again = outbox.queue_once(done, [note], ts, uid="puid/ProjectClosed/6", phase="Closed", now=T0)
    assert again is not None and [x["state"] for x in again["deliveries"]] == ["Pending"]
    assert again["deliveries"][0]["id"] != d["id"]
    # No target wants it: nothing.
    others = outbox.parse_targets({"notifications": [hook(events=["SharedRecords"])]})
    assert outbox.queue_once(None, [note], others, uid="u", phase=None, now=T0) is None


def delivery(event=E.PROJECT_CLOSED):
    ts = outbox.parse_targets({"notifications": [hook()]})
    note = P.ProjectNote(event, "k", "ProjectClosed", "project p is Closed", "Closed")
    box = outbox.queue_once(None, [note], ts, uid="puid/k", phase="Closed", now=T0)
    return Delivery.model_validate(box["deliveries"][0])


@pytest.mark.parametrize("mode", list(CloudEventMode))
def test_the_cloudevent_of_a_project_event_reads_back_with_the_sdk(mode):
    d = delivery()
    headers, body = messages.http_request(messages.cloud_event(project(hook()), d), mode)
    event = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
    assert event.get_type() == "dev.mmif.project.closed"
    assert event.get_source() == "/apis/mmif.dev/v1alpha1/projects/p"
    assert event.get_subject() == "p" and event.get_id() == d.id
    assert event.get_data() == {
        "project": "p",
        "namespace": "p",
        "uid": "puid",
        "event": "ProjectClosed",
        "phase": "Closed",
        "reason": "ProjectClosed",
        "message": "project p is Closed",
    }
    assert messages.event_type(E.DISPOSAL_NOTICE) == "dev.mmif.project.disposal-notice"
    assert messages.event_type(E.SHARED_RECORDS) == "dev.mmif.project.shared-records"


def test_a_projects_secrets_are_of_its_namespace_and_its_mail_names_it():
    assert messages.secrets_namespace(project()) == "p"
    assert (
        messages.secrets_namespace({"kind": "PipelineRun", "metadata": {"name": "r", "namespace": "ns"}})
        == "ns"
    )
    target = outbox.parse_targets(
        {
            "notifications": [
                {
                    "name": "mail",
                    "events": ["ProjectClosed"],
                    "email": {"smtp": {"host": "smtp"}, "from": "a@x.org", "to": ["b@x.org"]},
                }
            ]
        }
    )[0]
    assert target.email is not None
    msg = messages.email_message(target.email, project(), delivery())
    assert msg["Subject"] == "[mmif] project p closed"
    assert msg["X-Mmif-Project"] == "p" and msg["X-Mmif-Run"] is None
    assert "Project p (namespace p): ProjectClosed." in msg.get_content()


class ProjectKube:
    """A cluster-scoped Project; the first status patch meets a conflict (the delivery daemon
    recorded an outcome meanwhile)."""

    def __init__(self, obj, meanwhile=None):
        self.obj, self.meanwhile, self.patches = obj, meanwhile, []

    async def get_custom(self, plural, ns, name):
        assert (plural, ns, name) == ("projects", "", "p")
        return copy.deepcopy(self.obj)

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        assert (plural, ns) == ("projects", "")
        self.patches.append(resource_version)
        if self.meanwhile is not None:
            self.obj["status"]["notifications"] = self.meanwhile
            self.obj["metadata"]["resourceVersion"] = "2"
            self.meanwhile = None
        if resource_version != self.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "modified")
        self.obj["status"].update(copy.deepcopy(patch))
        return self.obj


def test_queueing_a_note_writes_the_outbox_conditionally_and_once():
    ts = outbox.parse_targets({"notifications": [hook()]})
    shared = P.shared_note("shared with q", "Open")
    meanwhile = outbox.queue_once(None, [shared], ts, uid="puid/" + shared.key, phase="Open", now=T0)
    kube = ProjectKube(project(hook()), meanwhile=meanwhile)
    note = P.closed_note(closed_plan(), 4)
    assert asyncio.run(notify.queue(kube, "p", note, now=T0)) is True
    assert kube.patches == ["1", "2"], "a conflict reads again"
    box = kube.obj["status"]["notifications"]
    assert sorted(d["event"] for d in box["deliveries"]) == ["ProjectClosed", "SharedRecords"]
    assert asyncio.run(notify.queue(kube, "p", note, now=T0)) is False, "replayed: nothing"
    assert kube.patches == ["1", "2"]
    nobody = ProjectKube(project())
    assert asyncio.run(notify.queue(nobody, "p", note, now=T0)) is False and nobody.patches == []


def test_the_delivery_pass_serves_a_cluster_scoped_project(monkeypatch):
    from mmif_operator.notifications import handler as NH

    ts = outbox.parse_targets({"notifications": [hook()]})
    note = P.closed_note(closed_plan(), 4)
    box = outbox.queue_once(None, [note], ts, uid="puid/" + note.key, phase="Closed", now=T0)
    kube = ProjectKube(project(hook(), box=box))
    sent = []

    async def fake_attempt(target, obj, d):
        sent.append((target.name, d.event, obj["kind"]))
        return Outcome(True)

    monkeypatch.setattr(NH, "_attempt", fake_attempt)
    assert asyncio.run(NH.deliver_pass(kube, "", "p", "puid", now=T0, plural="projects")) is None
    assert sent == [("hook", E.PROJECT_CLOSED, "Project")]
    assert kube.obj["status"]["notifications"]["delivered"] == 1


def test_a_projects_webhooks_are_checked_against_other_namespaces_app_services():
    from mmif_operator.admission import urls

    spec = {
        "notifications": [
            {"name": "a", "events": ["ProjectClosed"], "webhook": {"url": "http://app-x.other.svc:80/"}},
            {"name": "b", "events": ["ProjectClosed"], "webhook": {"url": "http://rx.p.svc:5000/"}},
        ]
    }
    [target] = urls.targets("Project", spec, "p")
    assert target.service == ("other", "app-x") and target.field == "spec.notifications[0].webhook.url"
    assert urls.targets("Project", {"notifications": [hook()]}, "p") == [], "its own namespace's"


class _Response:
    def __init__(self, status, body):
        self.status, self._body, self.reason = status, json.dumps(body).encode(), ""

    async def read(self):
        return self._body

    def release(self):
        pass


class _CustomApi:
    """The CustomObjectsApi calls Kube makes, recording which: cluster-scoped or namespaced."""

    def __init__(self):
        self.calls = []

    async def _ok(self, call, *args):
        self.calls.append((call, args))
        return _Response(200, {"kind": "Project"})

    def get_cluster_custom_object(self, group, version, plural, name, **_):
        return self._ok("get_cluster", plural, name)

    def get_namespaced_custom_object(self, group, version, ns, plural, name, **_):
        return self._ok("get_namespaced", ns, plural, name)

    def patch_cluster_custom_object_status(self, group, version, plural, name, body, **_):
        return self._ok("patch_cluster_status", plural, name, body)

    def patch_namespaced_custom_object_status(self, group, version, ns, plural, name, body, **_):
        return self._ok("patch_namespaced_status", ns, plural, name, body)


def test_kube_gets_and_patches_the_status_of_a_cluster_scoped_object_with_namespace_empty():
    from mmif_operator.core.kube import ops

    kube = ops.Kube.__new__(ops.Kube)
    kube.timeout = 1.0
    kube.custom = _CustomApi()
    asyncio.run(kube.get_custom("projects", "", "p"))
    asyncio.run(kube.patch_status("projects", "", "p", {"phase": "Closed"}, resource_version="7"))
    asyncio.run(kube.get_custom("pipelineruns", "ns", "r"))
    body = {"status": {"phase": "Closed"}, "metadata": {"resourceVersion": "7"}}
    assert kube.custom.calls == [
        ("get_cluster", ("projects", "p")),
        ("patch_cluster_status", ("projects", "p", body)),
        ("get_namespaced", ("ns", "pipelineruns", "r")),
    ]
