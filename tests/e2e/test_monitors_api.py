"""The monitors HTTP API and Atom feed end to end: the operator's Service `mmif-monitors`, reached
with `kubectl port-forward`, read with real ServiceAccount tokens (`kubectl create token`).

A pipeline Monitor at PT5S makes a few reports (passed, then failed when its second step is
broken), then is suspended so its reports stay still. A reader granted `get monitors` in the
namespace pages through the JSON reports (limit, since, next) and gets the same reports as
`kubectl get healthreports`; the Atom feed parses with feedparser (bozo 0), its entries match the
reports and it validates against RFC 4287's schema (tests/schemas/atom.rng, RELAX NG, lxml). A
token without the grant gets 403, another namespace's monitor is 403 (existing or not), no token
or a bad one is 401; `/activities` is for those who may list monitors cluster-wide."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from tests import kube
from tests.e2e.test_monitors import get_monitor, monitor_body, reports_of, set_fail_on

pytestmark = pytest.mark.cluster

API_NS = "mmif-system"
SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "atom.rng"
SAMPLE_FILE = "media/probe.mp4"


class Forward:
    """`kubectl port-forward svc/mmif-monitors :80` (bounded: it must print its port in 30 s)."""

    def __enter__(self) -> Forward:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="monitors-port-forward-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["kubectl", "-n", API_NS, "port-forward", "svc/mmif-monitors", ":80"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def port():
            if self.proc.poll() is not None:
                raise AssertionError(f"kubectl port-forward exited: {Path(self.log.name).read_text()!r}")
            for line in Path(self.log.name).read_text().splitlines():
                if line.startswith("Forwarding from 127.0.0.1:"):
                    return int(line.split(":")[1].split()[0])
            return None

        try:
            self.port = kube.eventually(port, timeout=30, interval=0.1, what="kubectl port-forward")
        except AssertionError:
            self.__exit__()
            raise
        self.base = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *_) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def get(self, path: str, token: str | None = None, accept: str | None = None) -> tuple[int, str, bytes]:
        url = path if path.startswith("http") else f"{self.base}{path}"
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if accept:
            headers["Accept"] = accept
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def json(self, path: str, token: str | None = None, status: int = 200) -> dict:
        code, _, body = self.get(path, token)
        assert code == status, (path, code, body[:500])
        return json.loads(body)


def service_account_token(namespace: str, name: str) -> str:
    kube.kubectl("create", "serviceaccount", name, "-n", namespace)
    return kube.kubectl("create", "token", name, "-n", namespace, "--duration=15m").stdout.strip()


def grant(namespace: str, account: str, verbs: str, resource: str, role: str) -> None:
    kube.kubectl("create", "role", role, "-n", namespace, f"--verb={verbs}", f"--resource={resource}")
    kube.kubectl(
        "create",
        "rolebinding",
        role,
        "-n",
        namespace,
        f"--role={role}",
        f"--serviceaccount={namespace}:{account}",
    )


@pytest.fixture
def other_namespace(namespace):
    name = f"{namespace}-other"[:63]
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_reports_json_paging_atom_feed_and_access(
    namespace, other_namespace, operator_deployed, workspace, build
):
    kube.kubectl("-n", API_NS, "rollout", "status", "deployment/mmif-operator", "--timeout=120s", timeout=150)
    workspace.write_media({SAMPLE_FILE: "not really a video\n"})
    steps = [build.step("transcript", "textgen"), build.step("check", "failer", parameters={"failOn": ""})]
    build.apply(build.pipeline("pipe", steps, claim_name=workspace.claim_name), namespace)
    build.apply(monitor_body("web", workspace.claim_name, {"pipeline": "pipe"}, "PT5S"), namespace)
    # Another namespace's Monitor (suspended: it never tests), for the 403 checks.
    build.apply(
        monitor_body("theirs", "nowhere", {"pipeline": "nothing"}, "PT1H", suspend=True), other_namespace
    )

    reader = service_account_token(namespace, "reader")
    grant(namespace, "reader", "get", "monitors.mmif.dev", "monitor-reader")
    stranger = service_account_token(namespace, "stranger")
    grant(namespace, "stranger", "get,list", "pipelineruns.mmif.dev", "run-reader")

    # Two passed reports, then a failed one (the second step broken), then the monitor suspended.
    kube.eventually(lambda: len(reports_of(namespace, "web")) >= 2, timeout=150, interval=1, what="2 reports")
    set_fail_on(namespace, "pipe", "probe")
    kube.eventually(
        lambda: any(r["spec"]["result"] == "Failed" for r in reports_of(namespace, "web")),
        timeout=120,
        interval=1,
        what="a failed report",
    )
    kube.kubectl(
        "patch", "monitor", "web", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    kube.eventually(
        lambda: (
            get_monitor(namespace, "web").get("status", {}).get("currentTest") is None
            and not get_monitor(namespace, "web").get("status", {}).get("nextTestTime")
        ),
        timeout=120,
        interval=1,
        what="the suspended monitor's last test reported",
    )
    reports = sorted(reports_of(namespace, "web"), key=lambda r: r["spec"]["id"], reverse=True)
    ids = [r["spec"]["id"] for r in reports]
    assert len(ids) >= 3, ids

    with Forward() as api:
        root = api.json("/")
        assert {link["rel"] for link in root["links"]} >= {"monitor", "reports", "feed", "activities"}

        # Who may read: no token or a bad one 401; without the grant 403; another namespace 403,
        # whether its monitor exists or not.
        assert api.get(f"/monitors/{namespace}/web/reports")[0] == 401
        assert api.get(f"/monitors/{namespace}/web/reports", "not-a-token")[0] == 401
        assert api.get(f"/monitors/{namespace}/web", stranger)[0] == 403
        assert api.get(f"/monitors/{namespace}/web/reports.atom", stranger)[0] == 403
        assert api.get(f"/monitors/{other_namespace}/theirs", reader)[0] == 403
        assert api.get(f"/monitors/{other_namespace}/theirs/reports", reader)[0] == 403
        assert api.get(f"/monitors/{other_namespace}/no-such-monitor", reader)[0] == 403
        assert api.get("/activities", reader)[0] == 403

        # The monitor, its status and one report, with computed links.
        mon = api.json(f"/monitors/{namespace}/web", reader)
        assert mon["name"] == "web" and mon["status"]["health"] in ("Degraded", "Failing")
        rels = {link["rel"]: link for link in mon["links"]}
        assert rels["alternate"]["type"] == "application/atom+xml"
        assert rels["alternate"]["href"] == f"{api.base}/monitors/{namespace}/web/reports.atom"
        status = api.json(f"/monitors/{namespace}/web/status", reader)
        assert status["lastReport"]["id"] == ids[0]
        one = api.json(f"/monitors/{namespace}/web/report/{ids[-1]}", reader)
        assert one["id"] == ids[-1] and one["result"] == reports[-1]["spec"]["result"]
        assert api.get(f"/monitors/{namespace}/web/report/20000101T000000Z", reader)[0] == 404

        # Paging: limit 2, following `next` to the end, gives every report once, newest first.
        page = api.json(f"/monitors/{namespace}/web/reports?limit=2", reader)
        seen = [r["id"] for r in page["items"]]
        assert seen == ids[:2]
        assert any(
            link["rel"] == "alternate" and link["type"] == "application/atom+xml" for link in page["links"]
        )
        pages = 1
        while page["next"]:
            page = api.json(page["next"], reader)
            assert 1 <= len(page["items"]) <= 2
            seen += [r["id"] for r in page["items"]]
            pages += 1
        assert seen == ids and pages == (len(ids) + 1) // 2
        # since: the reports at or after the second-newest report's time.
        since = reports[1]["spec"]["time"]
        page = api.json(f"/monitors/{namespace}/web/reports?since={since}", reader)
        assert [r["id"] for r in page["items"]] == ids[:2] and page["next"] is None
        assert api.get(f"/monitors/{namespace}/web/reports?since=yesterday", reader)[0] == 400

        # The Atom feed: at reports.atom and by content negotiation on /reports.
        code, ctype, body = api.get(f"/monitors/{namespace}/web/reports.atom?limit=100", reader)
        assert code == 200 and ctype.startswith("application/atom+xml"), (code, ctype)
        code2, ctype2, body2 = api.get(
            f"/monitors/{namespace}/web/reports?limit=100", reader, accept="application/atom+xml"
        )
        assert code2 == 200 and ctype2.startswith("application/atom+xml")
        assert etree.fromstring(body2).findtext("{http://www.w3.org/2005/Atom}id") == etree.fromstring(
            body
        ).findtext("{http://www.w3.org/2005/Atom}id")

    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    doc = etree.fromstring(body)
    assert schema.validate(doc), schema.error_log
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.id == f"urn:uuid:{get_monitor(namespace, 'web')['metadata']['uid']}"
    entries = parsed.entries
    assert len(entries) == len(reports)
    for entry, report in zip(entries, reports, strict=True):
        spec = report["spec"]
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(spec["id"], "%Y%m%dT%H%M%SZ"))
        assert entry.title == f"{spec['result']} monitoring at {when}"
        assert entry.id == f"urn:uuid:{report['metadata']['uid']}"
        assert entry.summary == spec["summary"]
        (alternate,) = [link for link in entry.links if link.rel == "alternate"]
        assert alternate.href.endswith(f"/monitors/{namespace}/web/report/{spec['id']}")
    assert any(
        e.title.startswith("Failed monitoring at") and e.summary == "1 activity failed" for e in entries
    )
    assert any(e.title.startswith("Passed monitoring at") for e in entries)


def test_activities_need_list_monitors_cluster_wide(namespace, operator_deployed):
    admin = f"{namespace}-monitors-admin"[:63]
    token = service_account_token(namespace, "admin")
    try:
        kube.kubectl("create", "clusterrole", admin, "--verb=list", "--resource=monitors.mmif.dev")
        kube.kubectl(
            "create",
            "clusterrolebinding",
            admin,
            f"--clusterrole={admin}",
            f"--serviceaccount={namespace}:admin",
        )
        with Forward() as api:
            doc = kube.eventually(
                lambda: (lambda r: json.loads(r[2]) if r[0] == 200 else None)(api.get("/activities", token)),
                timeout=30,
                what="/activities allowed once the ClusterRoleBinding is in place",
            )
            assert isinstance(doc["items"], list)
            assert all("app" in item and item["monitors"] for item in doc["items"])
    finally:
        kube.kubectl("delete", "clusterrolebinding", admin, "--ignore-not-found", check=False)
        kube.kubectl("delete", "clusterrole", admin, "--ignore-not-found", check=False)
