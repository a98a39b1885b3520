"""Issue 10 on the real cluster: no namespace reaches another's app, a name someone else holds is
never taken for the operator's own, and an app scaled to 0 by hand comes back.

1. alice (namespace A only) cannot point a step at bob's app Service in B, by name or ClusterIP:
   the API server refuses with the field named; B's app pods are fenced by a NetworkPolicy.
3. Pipelines `col` + step `a-b` and `col-a` + step `b` each get their own app (their runs' views
   are signed by their own app); a Service squatting a Pipeline's app name makes that Pipeline
   `Ready=False NameConflict`, and the squatter is left as it was.
4. bob's AnalysisJob named `<alice's next run>-<analysis>` gives alice's run `NameConflict` for
   that analysis, never `Created`; bob's object is untouched.
   A Job someone made under a run's step Job name (and labels) fails that item `NameConflict`.
6. `kubectl scale --replicas=0` of an app Deployment is undone within 30 s; a run goes through.

Users act by impersonation (`kubectl --as`) with the Roles of docs/examples/visit-roles.yaml,
bound only in their own namespace.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from pathlib import Path

import pytest
import yaml
from mmif import Mmif

from mmif_operator.core import names
from tests import kube

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
SAMPLES = REPO / "config" / "samples"
DRIFT_UNDONE_SECONDS = 30  # a Deployment event wakes the Pipeline's loop at once
CONFLICT_SECONDS = 60


def member(namespace: str, user: str) -> None:
    """The visit's roles in `namespace`, and `user` bound as a member there (only there)."""
    kube.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "visit-roles.yaml"))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-member"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mmif-member"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    kube.apply(binding, namespace)


def as_user(user: str, *args: str, input: str | None = None, check: bool = True):
    return kube.kubectl("--as", user, *args, input=input, check=check)


def create_as(user: str, obj: dict, namespace: str, check: bool = True):
    return as_user(user, "create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=check)


def condition(obj: dict, type_: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


def wait_ready(namespace: str, pipeline: str, timeout: int = 180) -> dict:
    kube.wait(f"pipeline/{pipeline}", "condition=Ready", namespace, timeout=timeout)
    return kube.get("pipeline", pipeline, namespace)


def last_view_app(workspace, run: dict) -> str:
    manifest = json.loads(workspace.read_file(run["status"]["manifestPath"]))
    (entry,) = manifest["items"]
    mmif = Mmif(workspace.read_file(posixpath.join(run["status"]["outputPath"], entry["output"])).decode())
    return mmif.views[-1].metadata.app


@pytest.fixture
def namespace_b(cluster):
    """A second namespace, bob's, deleted afterwards."""
    name = f"t-iso-b-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    if os.environ.get("MMIF_KEEP_NAMESPACES") != "1":
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- 1. one namespace cannot reach another's app ---------------------------------------------------


def test_a_step_url_may_not_name_another_namespaces_app_and_the_app_is_fenced(
    operator_deployed, namespace, namespace_b, build
):
    ns_a, ns_b = namespace, namespace_b
    member(ns_a, "alice")
    member(ns_b, "bob")
    pvc = yaml.safe_load((SAMPLES / "workspace-pvc.yaml").read_text())
    pvc["spec"]["resources"]["requests"]["storage"] = "1Gi"
    kube.apply(pvc, ns_b)
    create_as("bob", build.pipeline("col", [build.step("a-b", "textgen", mode="Service")]), ns_b)
    wait_ready(ns_b, "col")
    app = names.app_service_name("col", "a-b")
    svc = kube.get("service", app, ns_b)
    cluster_ip = svc["spec"]["clusterIP"]
    # alice has no rights in B.
    denied = as_user("alice", "get", "services", "-n", ns_b, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr

    # (b) Her step may not name B's app, by any DNS form or by ClusterIP: the API server refuses,
    # naming the field; nothing is created.
    for i, url in enumerate(
        [
            f"http://{app}.{ns_b}.svc:5000",
            f"http://{app.upper()}.{ns_b}:5000",
            f"http://{app}.{ns_b}.svc.cluster.local.:5000/",
            f"http://{cluster_ip}:5000",
        ]
    ):
        spy = build.pipeline(
            f"spy-{i}", [build.step("t", "textgen"), {"name": "steal", "mode": "Service", "url": url}]
        )
        proc = create_as("alice", spy, ns_a, check=False)
        assert proc.returncode != 0, f"{url} was admitted"
        assert 'admission webhook "urls.pipelines.mmif.dev" denied the request' in proc.stderr, proc.stderr
        assert f"spec.steps[1].url: '{url}'" in proc.stderr and f"namespace {ns_b}" in proc.stderr, (
            proc.stderr
        )
    assert kube.get_list("pipelines", ns_a) == []
    # The same form naming something that is not an operator's app, or her own namespace's, is fine.
    create_as(
        "alice",
        build.pipeline(
            "elsewhere",
            [
                {"name": "ext", "mode": "Service", "url": f"http://not-an-app.{ns_b}.svc:5000"},
                {"name": "own", "mode": "Service", "url": f"http://{app}:5000"},
            ],
        ),
        ns_a,
    )
    analysis = {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "AnalysisJob",
        "metadata": {"name": "spy-aj"},
        "spec": {"runRef": {"name": "any"}, "app": {"mode": "Service", "url": f"http://{cluster_ip}:5000"}},
    }
    proc = create_as("alice", analysis, ns_a, check=False)
    assert proc.returncode != 0 and "spec.app.url" in proc.stderr, proc.stderr

    # (a) B's app pods are selected by a NetworkPolicy owned by the Pipeline that admits only
    # B's own step and analysis pods, on the app port.
    policy = kube.get("networkpolicy", app, ns_b)
    pipeline_uid = kube.get("pipeline", "col", ns_b)["metadata"]["uid"]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == pipeline_uid
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    selector = ",".join(f"{k}={v}" for k, v in spec["podSelector"]["matchLabels"].items())
    app_pods = kube.get_list("pods", ns_b, selector)
    deployment_pods = kube.get_list("pods", ns_b, f"mmif.dev/app={app}")
    assert app_pods and sorted(p["metadata"]["name"] for p in app_pods) == sorted(
        p["metadata"]["name"] for p in deployment_pods
    )
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/managed-by": "mmif-operator"},
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["step", "analyze"]}
                ],
            }
        }
    ]


# --- 3. colliding names: each pipeline its own app; a squatted name is a conflict -----------------


def test_colliding_pipeline_and_step_names_each_get_their_own_app(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/clip.mp4": b"clip\n"})
    build.apply(
        build.pipeline(
            "col", [build.step("a-b", "textgen", mode="Service")], claim_name=workspace.claim_name
        ),
        namespace,
    )
    build.apply(
        build.pipeline(
            "col-a", [build.step("b", "timeframes", mode="Service")], claim_name=workspace.claim_name
        ),
        namespace,
    )
    for name in ("col", "col-a"):
        cond = condition(wait_ready(namespace, name), "Ready")
        assert cond["reason"] == "Ready", cond
    first, second = names.app_service_name("col", "a-b"), names.app_service_name("col-a", "b")
    assert first != second
    assert kube.get("deployment", first, namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == build.app_image("textgen")
    assert kube.get("deployment", second, namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == build.app_image("timeframes")
    for run_name, pipeline in (("run-col", "col"), ("run-col-a", "col-a")):
        build.apply(
            build.run(run_name, pipeline, [build.item("media/clip.mp4")], claim_name=workspace.claim_name),
            namespace,
        )
    signed = {}
    for run_name in ("run-col", "run-col-a"):
        run = runs.wait_to_finish(namespace, run_name, timeout=240)
        assert runs.condition(run)["status"] == "True", runs.diagnostics(namespace, run_name)
        signed[run_name] = last_view_app(workspace, run)
    assert signed == {
        "run-col": build.app_identifier("textgen"),
        "run-col-a": build.app_identifier("timeframes"),
    }


def test_a_service_squatting_a_pipelines_app_name_is_a_name_conflict(
    operator_deployed, namespace, workspace, build
):
    squatted = names.app_service_name("squat", "s")
    squatter = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": squatted},
        "spec": {"selector": {"app": "someone-else"}, "ports": [{"port": 5000}]},
    }
    kube.apply(squatter, namespace)
    before = kube.get("service", squatted, namespace)
    build.apply(
        build.pipeline(
            "squat", [build.step("s", "textgen", mode="Service")], claim_name=workspace.claim_name
        ),
        namespace,
    )

    def conflicted():
        cond = condition(kube.get("pipeline", "squat", namespace), "Ready")
        return cond if cond.get("reason") == "NameConflict" else None

    cond = kube.eventually(conflicted, timeout=CONFLICT_SECONDS, what="Ready=False NameConflict")
    assert cond["status"] == "False"
    assert (
        f"step s: Service {squatted} already exists and is not ours: it has no controlling owner"
        in cond["message"]
    ), cond
    step = kube.get("pipeline", "squat", namespace)["status"]["steps"][0]
    assert step["ready"] is False
    after = kube.get("service", squatted, namespace)
    assert after["spec"] == before["spec"] and after["metadata"].get("ownerReferences") is None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    events = kube.get_list("events", namespace)
    assert any(e["reason"] == "NameConflict" and e["involvedObject"]["name"] == "squat" for e in events)


def test_a_job_squatting_a_runs_step_job_name_fails_that_item_and_is_left_alone(
    operator_deployed, namespace, workspace, build, runs
):
    """A Job made by someone else under the name (and labels) of a run's step Job is never taken
    for the run's: that item fails `NameConflict` naming the Job's owner; the other item runs."""
    workspace.write_media({"media/a.mp4": b"a\n", "media/b.mp4": b"b\n"})
    build.apply(build.pipeline("p", [build.step("t", "textgen")], claim_name=workspace.claim_name), namespace)
    squatted = names.step_job_name("squatted", 0, 0)
    labels = {
        "app.kubernetes.io/managed-by": "mmif-operator",
        "app.kubernetes.io/component": "step",
        "mmif.dev/run": "squatted",
        "mmif.dev/item-index": "0",
        "mmif.dev/step-index": "0",
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": squatted, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "runner",
                            "image": "mmif.local/debian-python:bookworm",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["true"],
                        }
                    ],
                },
            },
        },
    }
    kube.create(job, namespace)
    before = kube.get("job", squatted, namespace)["metadata"]["uid"]
    build.apply(
        build.run(
            "squatted",
            "p",
            [build.item("media/a.mp4"), build.item("media/b.mp4")],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    run = runs.wait_to_finish(namespace, "squatted", timeout=180)
    assert runs.condition(run)["reason"] == "ItemsFailed", runs.diagnostics(namespace, "squatted")
    assert (run["status"]["itemsSucceeded"], run["status"]["itemsFailed"]) == (1, 1)
    (failure,) = run["status"]["failures"]
    assert (failure["index"], failure["step"], failure["reason"]) == (0, "t", "NameConflict"), failure
    assert failure["message"] == f"Job {squatted} already exists and is not ours: it has no controlling owner"
    assert kube.get("job", squatted, namespace)["metadata"]["uid"] == before  # never deleted


# --- 4. bob's AnalysisJob in the name of alice's next run's analysis ------------------------------


def test_an_analysis_job_squatting_alices_next_runs_name_is_not_hers(
    operator_deployed, namespace, workspace, build, runs
):
    member(namespace, "alice")
    member(namespace, "bob")
    workspace.write_media({"media/clip.mp4": b"clip\n"})
    timeframes = {
        "image": build.app_image("timeframes"),
        "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}],
    }
    create_as(
        "alice",
        build.pipeline(
            "p",
            [build.step("t", "textgen")],
            claim_name=workspace.claim_name,
            analyses=[{"name": "seg", "app": timeframes}],
        ),
        namespace,
    )
    bobs = {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "AnalysisJob",
        "metadata": {"name": "alice-next-seg"},
        "spec": {"runRef": {"name": "alice-next"}, "app": timeframes},
    }
    create_as("bob", bobs, namespace)
    before = kube.get("analysisjob", "alice-next-seg", namespace)
    assert before["spec"]["requester"]["username"] == "bob"

    create_as(
        "alice",
        build.run("alice-next", "p", [build.item("media/clip.mp4")], claim_name=workspace.claim_name),
        namespace,
    )
    decided = kube.eventually(
        lambda: condition(kube.get("pipelinerun", "alice-next", namespace), "AnalysesCreated") or None,
        timeout=120,
        what="alice's run to decide its analyses",
    )
    assert (decided["status"], decided["reason"]) == ("False", "NameConflict"), decided
    run = runs.wait_to_finish(namespace, "alice-next", timeout=240)
    assert runs.condition(run)["status"] == "True", runs.diagnostics(namespace, "alice-next")
    (entry,) = run["status"]["analyses"]
    assert entry["name"] == "seg" and entry["state"] == "NameConflict" and "analysisJob" not in entry
    assert (
        "AnalysisJob alice-next-seg already exists and is not ours: it has no controlling owner"
        in entry["message"]
    ), entry
    after = kube.get("analysisjob", "alice-next-seg", namespace)
    assert after["spec"] == before["spec"] and not after["metadata"].get("ownerReferences")
    assert after["spec"]["requester"]["username"] == "bob"
    events = kube.get_list("events", namespace)
    assert any(e["reason"] == "NameConflict" and e["involvedObject"]["name"] == "alice-next" for e in events)
    assert not any(
        e["reason"] == "AnalysisCreated" and e["involvedObject"]["name"] == "alice-next" for e in events
    )


# --- 6. drift: an app Deployment scaled to 0 by hand comes back ------------------------------------


def test_an_app_deployment_scaled_to_zero_by_hand_comes_back(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/clip.mp4": b"clip\n"})
    build.apply(
        build.pipeline(
            "svc", [build.step("gen", "textgen", mode="Service", replicas=2)], claim_name=workspace.claim_name
        ),
        namespace,
    )
    wait_ready(namespace, "svc")
    app = names.app_service_name("svc", "gen")
    kube.kubectl("scale", f"deployment/{app}", "--replicas=0", "-n", namespace)
    kube.eventually(
        lambda: kube.get("deployment", app, namespace)["spec"]["replicas"] == 2,
        timeout=DRIFT_UNDONE_SECONDS,
        interval=1,
        what="the replicas to come back to 2",
    )
    kube.wait(f"deployment/{app}", "condition=Available", namespace, timeout=120)
    build.apply(
        build.run("after-scale", "svc", [build.item("media/clip.mp4")], claim_name=workspace.claim_name),
        namespace,
    )
    run = runs.wait_to_finish(namespace, "after-scale", timeout=240)
    assert runs.condition(run)["status"] == "True", runs.diagnostics(namespace, "after-scale")
    assert last_view_app(workspace, run) == build.app_identifier("textgen")
