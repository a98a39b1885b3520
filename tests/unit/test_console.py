"""The web console's pure parts: status -> bars and the item table, SSE framing, the access
decisions, the shared watch's fan-out, and its manifests (least privilege, hardened pod)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from mmif_operator.console import auth, bars, sse
from mmif_operator.console.hub import Event, Hub
from mmif_operator.core import failurereasons, itemstates
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.kinds.pipelinerun.planning import encode_failed_steps, step_counts

REPO = Path(__file__).resolve().parents[2]
STEPS = ["asr", "ner"]


def run_obj(states, *, masks=None, phase="Running", failures=(), reasons=None, codes=None, items=None):
    status = {
        "phase": phase,
        "itemCount": len(states),
        "itemStates": itemstates.encode(states),
        "itemsSucceeded": sum(s.phase is ItemPhase.SUCCEEDED for s in states),
        "itemsFailed": sum(s.phase is ItemPhase.FAILED for s in states),
        "itemsCancelled": sum(s.phase is ItemPhase.CANCELLED for s in states),
        "steps": step_counts(states, masks or [0] * len(states), STEPS),
        "failures": list(failures),
        "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}],
    }
    if masks:
        status["itemFailedSteps"] = encode_failed_steps(masks)
    if reasons:
        status["failureReasons"] = reasons
        status["itemFailureReasons"] = failurereasons.encode(codes)
    spec = {"pipelineRef": {"name": "pipe"}}
    if items is not None:
        spec["items"] = items
    return {
        "metadata": {"namespace": "a1", "name": "r1", "resourceVersion": "7"},
        "spec": spec,
        "status": status,
    }


# --- bars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "total", "finished", "expected"),
    [
        (0, 4, False, 0),
        (1, 3, False, 33),
        (199, 200, False, 99),
        (200, 200, False, 100),
        (0, 0, False, 0),
        (0, 0, True, 100),
    ],
)
def test_percent_is_floored_so_100_means_all_done(done, total, finished, expected):
    assert bars.percent(done, total, finished) == expected


def test_bars_from_status_counts_mid_run():
    states = [
        ItemState(1, ItemPhase.SUCCEEDED),  # through both steps
        ItemState(1, ItemPhase.RUNNING),  # passed asr, running ner
        ItemState(0, ItemPhase.RUNNING),  # running asr
        ItemState(0, ItemPhase.FAILED),  # failed asr (Stop): never reaches ner
    ]
    s = bars.run_summary(run_obj(states))
    assert s["overall"] == {"succeeded": 1, "failed": 1, "cancelled": 0, "done": 2, "total": 4, "percent": 50}
    asr, ner = s["steps"]
    assert (asr["name"], asr["done"], asr["total"], asr["percent"], asr["running"]) == ("asr", 3, 4, 75, 1)
    # ner: 1 passed, 1 running, 1 still to come (the asr runner); the failed item is not counted.
    assert (ner["done"], ner["total"], ner["percent"]) == (1, 3, 33)
    assert s["phase"] == "Running" and s["pipeline"] == "pipe"


def test_bars_reach_100_when_the_run_is_done_even_with_failures():
    states = [ItemState(1, ItemPhase.SUCCEEDED), ItemState(0, ItemPhase.FAILED)]
    s = bars.run_summary(run_obj(states, phase="Failed"))
    assert s["overall"]["percent"] == 100
    assert [b["percent"] for b in s["steps"]] == [100, 100]


def test_a_pending_run_without_status_has_empty_bars():
    s = bars.run_summary({"metadata": {"name": "r"}, "spec": {}})
    assert s["phase"] == "Pending" and s["overall"]["percent"] == 0 and s["steps"] == []


def test_review_merges_spec_decision_and_status():
    obj = run_obj([ItemState(1, ItemPhase.SUCCEEDED)], phase="AwaitingReview")
    obj["status"]["pipelineSpec"] = {"review": {"required": True}}
    obj["status"]["review"] = {"requestedAt": "t0", "deadline": "t1"}
    assert bars.review(obj)["required"] and bars.review(obj)["decision"] is None
    obj["spec"]["review"] = {"decision": "Pass", "reviewer": "rita", "comment": "ok", "decidedAt": "t2"}
    r = bars.review(obj)
    assert (r["decision"], r["reviewer"], r["comment"], r["deadline"]) == ("Pass", "rita", "ok", "t1")


# --- the item table -----------------------------------------------------------------------------


def test_item_rows_name_state_step_and_reason():
    items = [
        {"name": "clip", "documents": [{"location": "v0.mp4", "mimeType": "video/mp4"}]},
        {"documents": [{"location": "v1.mp4", "mimeType": "video/mp4"}]},
        {"mmif": "in/x.mmif"},
        {"documents": [{"location": "v3.mp4", "mimeType": "video/mp4"}]},
    ]
    states = [
        ItemState(1, ItemPhase.SUCCEEDED),
        ItemState(1, ItemPhase.RUNNING),
        ItemState(0, ItemPhase.FAILED),
        ItemState(1, ItemPhase.FAILED),
    ]
    failures = [
        {"index": 2, "step": "asr", "reason": "Old", "message": "earlier", "time": "t"},
        {"index": 2, "step": "asr", "reason": "AppError", "message": "boom", "time": "t"},
    ]
    reasons = [{"step": "ner", "reason": "ImagePullFailed", "message": "no image"}]
    obj = run_obj(states, failures=failures, reasons=reasons, codes=[0, 0, 0, 1], items=items)
    rows, note = bars.item_rows(obj, 100)
    assert note == ""
    assert [(r["item"], r["state"], r["step"], r["reason"]) for r in rows] == [
        ("clip", "Succeeded", None, None),
        ("v1.mp4", "Running", "ner", None),
        ("in/x.mmif", "Failed", "asr", "AppError"),  # the latest failure of the item
        ("v3.mp4", "Failed", "ner", "ImagePullFailed"),
    ]
    assert rows[2]["message"] == "boom" and rows[3]["message"] == "no image"


def test_item_rows_continue_mode_names_the_first_failed_step_and_are_bounded():
    states = [ItemState(0, ItemPhase.FAILED)] * 3
    rows, note = bars.item_rows(run_obj(states, masks=[0b10, 0b01, 0b11]), 2)
    assert [r["step"] for r in rows] == ["ner", "asr"]
    assert [r["item"] for r in rows] == ["#0", "#1"]  # itemsFrom: by position
    assert note == "Showing the first 2 of 3 items; the manifest lists them all."


def test_item_rows_before_preparation_and_with_unreadable_states():
    assert bars.item_rows({"status": {}}, 10) == ([], "The items are listed once the run is prepared.")
    rows, note = bars.item_rows({"status": {"itemCount": 2, "itemStates": "bm90IHpsaWI="}}, 10)
    assert rows == [] and note.startswith("The item states in status cannot be read")


def test_pipeline_summary_step_readiness_in_spec_order():
    obj = {
        "metadata": {"namespace": "a1", "name": "p", "generation": 2},
        "spec": {"steps": [{"name": "asr", "image": "i", "mode": "Service"}, {"name": "ner", "image": "j"}]},
        "status": {
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "AppsNotReady", "message": "asr 0/1"}
            ],
            "steps": [{"name": "asr", "mode": "Service", "ready": False, "replicas": 1, "readyReplicas": 0}],
        },
    }
    p = bars.pipeline_summary(obj)
    assert p["ready"] == {"status": "False", "reason": "AppsNotReady", "message": "asr 0/1"}
    assert [(s["name"], s["mode"], s["ready"]) for s in p["steps"]] == [
        ("asr", "Service", False),
        ("ner", "Job", False),
    ]
    assert [s["alternatives"] for s in p["steps"]] == [[], []]


def test_pipeline_summary_names_a_steps_alternatives_and_their_readiness():
    obj = {
        "metadata": {"namespace": "a1", "name": "p"},
        "spec": {
            "steps": [
                {
                    "name": "asr",
                    "image": "whisper:v1",
                    "alternatives": [
                        {"name": "small", "image": "whisper-small:v1"},
                        {"name": "remote", "mode": "Service", "url": "http://asr.example/"},
                    ],
                }
            ]
        },
        "status": {
            "steps": [
                {
                    "name": "asr",
                    "mode": "Job",
                    "ready": True,
                    "alternatives": [{"name": "small", "mode": "Job", "ready": True}],
                }
            ]
        },
    }
    (step,) = bars.pipeline_summary(obj)["steps"]
    assert step["alternatives"] == [
        {"name": "small", "mode": "Job", "image": "whisper-small:v1", "url": None, "ready": True},
        # Not reported by the operator yet: not ready.
        {"name": "remote", "mode": "Service", "image": None, "url": "http://asr.example/", "ready": False},
    ]


# --- SSE framing --------------------------------------------------------------------------------


def test_sse_frame_is_one_event_with_json_data():
    raw = sse.frame("run", {"name": "r1", "text": "two\nlines"}, id="5", retry_ms=2000).decode()
    assert raw.startswith("event: run\nid: 5\nretry: 2000\ndata: ")
    assert raw.endswith("\n\n") and raw.count("\n\n") == 1  # the newline in the data is escaped
    assert sse.parse(raw) == [("run", {"name": "r1", "text": "two\nlines"})]


def test_sse_comments_are_ignored_and_names_are_one_line():
    stream = sse.comment("keepalive").decode() + sse.frame("snapshot", {"runs": []}).decode()
    assert sse.parse(stream) == [("snapshot", {"runs": []})]
    with pytest.raises(ValueError):
        sse.frame("a\nb", {})


# --- identity and access ------------------------------------------------------------------------


def test_token_from_header_first_then_cookie():
    assert auth.token_from({"Authorization": "Bearer abc.def-1"}, {auth.COOKIE: "other"}) == "abc.def-1"
    assert auth.token_from({}, {auth.COOKIE: "eyJhbGciOi.x_y"}) == "eyJhbGciOi.x_y"
    assert auth.token_from({"Authorization": "Basic dTpw"}, {}) is None
    assert auth.token_from({"Authorization": "Bearer two words"}, {}) is None
    assert auth.token_from({}, {auth.COOKIE: "a\nb"}) is None
    assert auth.token_from({}, {auth.COOKIE: "x" * (auth.MAX_TOKEN + 1)}) is None
    assert auth.token_from({}, {}) is None


@pytest.mark.parametrize(
    ("status", "access"),
    [
        (200, auth.Access.ALLOWED),
        (401, auth.Access.UNAUTHENTICATED),
        (403, auth.Access.DENIED),
        (500, auth.Access.UNKNOWN),
        (404, auth.Access.UNKNOWN),
    ],
)
def test_access_follows_the_persons_own_list(status, access):
    assert auth.decide(status) is access


def test_denied_message_names_the_namespace_and_the_grant_is_rechecked():
    assert "not allowed" in auth.message(auth.Access.DENIED, "a1").lower()
    assert "namespace a1" in auth.message(auth.Access.DENIED, "a1")
    assert auth.message(auth.Access.ALLOWED, "a1") == ""
    g = auth.Grant("a1", checked_at=100.0)
    assert not g.due(159.9, 60) and g.due(160.0, 60)
    assert g.next_check_in(130.0, 60) == 30.0 and g.next_check_in(200.0, 60) == 0.0


# --- the shared watch's fan-out -----------------------------------------------------------------


def obj(ns, name, rv):
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": rv}}


def test_hub_sends_an_event_only_to_its_namespace_subscribers():
    async def scenario():
        hub = Hub(queue_size=4)
        with hub.subscribe("a1") as a, hub.subscribe("b2") as b:
            hub.publish(Event("ADDED", obj("a1", "r", "1")))
            assert a.queue.qsize() == 1 and b.queue.qsize() == 0
            assert hub.subscriber_count() == 2
        assert hub.subscriber_count() == 0

    asyncio.run(scenario())


def test_hub_resync_after_a_relist_sends_what_changed_and_what_vanished():
    async def scenario():
        hub = Hub()
        hub.resync([obj("a1", "keep", "1"), obj("a1", "change", "1"), obj("a1", "gone", "1")])
        with hub.subscribe("a1") as a:
            hub.resync([obj("a1", "keep", "1"), obj("a1", "change", "2"), obj("a1", "new", "1")])
            got = sorted((e.type, e.name) for e in (a.queue.get_nowait() for _ in range(a.queue.qsize())))
        assert got == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "change")]

    asyncio.run(scenario())


def test_a_subscriber_that_cannot_keep_up_is_marked_to_be_dropped():
    async def scenario():
        hub = Hub(queue_size=2)
        with hub.subscribe("a1") as a:
            for i in range(3):
                hub.publish(Event("MODIFIED", obj("a1", "r", str(i))))
            assert a.overflowed and a.queue.qsize() == 2

    asyncio.run(scenario())


# --- manifests ----------------------------------------------------------------------------------


def console_manifests():
    return {d["kind"]: d for d in yaml.safe_load_all((REPO / "manifests" / "console.yaml").read_text())}


def test_the_consoles_service_account_may_only_list_and_watch_runs():
    docs = console_manifests()
    assert docs["ClusterRole"]["rules"] == [
        {"apiGroups": ["mmif.dev"], "resources": ["pipelineruns"], "verbs": ["list", "watch"]}
    ]
    assert docs["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "mmif-console", "namespace": "mmif-system"}
    ]
    assert (
        "console.yaml" in yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())["resources"]
    )


def test_the_console_pod_is_hardened_like_the_operators():
    pod = console_manifests()["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mmif-console"
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] != 0
    assert c["command"][-2:] == ["-m", "mmif_operator.console"]
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == {"tmp": {"emptyDir"}}
