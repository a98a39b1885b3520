"""The web console end to end, in a real browser: headless Chromium (Debian's `chromium`) driven
by Playwright, against the console Deployment that `make deploy` installs, reached the way a
person reaches it (`kubectl port-forward svc/mmif-console`). People are ServiceAccounts of the
test's namespace with Roles the test grants; each logs in on the login page with a token from
`kubectl create token`, so every call the console makes for them carries that token.

1. A person watches a run live: its overall and per-step bars move (an intermediate value is
   seen) to 100% and Succeeded without a reload; the run page shows the item table.
2. A reviewer passes a run from the run page; a person without the `review` verb is refused with
   the admission webhook's message; the page shows Succeeded and the reviewer's name.
3. A token that may not read a namespace sees nothing of it: "Not allowed", no run names.
4. The console and the operator restart while the page is open: the page reconnects and keeps
   updating to 100%.
5. The MMIF viewer: a person bound to the shipped `mmif-user` ClusterRole opens an item's MMIF
   from the run page and sees its views (app names, parameters), the annotation counts per type
   and a timeline with one bar per TimeFrame of the item's final MMIF (read from the volume with
   mmif-python); the download link gives that MMIF; the reader pod is gone afterwards. A person
   who may read the run but not create pods sees the API server's refusal.
5b. An item's logs: from a failed item's row, a person bound to `mmif-user` opens its logs and
   sees the app's own message, kept by the operator after the step's pod was gone; a succeeded
   item's logs say that its app's log is not kept.
6. `kubectl mmif console --no-open` with a kubeconfig whose user is a token (bound to the
   shipped Role `mmif-console-access`): the printed address logs that person in on the namespace's
   runs; Ctrl-C (SIGINT) ends it and its port-forward (exit 130, the port closed).

Screenshots (runs page mid-run, run page, MMIF viewer) go to $MMIF_CONSOLE_SCREENSHOTS when set
(docs/images was made that way), else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mmif import AnnotationTypes, Mmif
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import kube

pytestmark = pytest.mark.cluster

CONSOLE_NS = "mmif-system"
CHROMIUM = "/usr/bin/chromium"
WEBHOOK_PROBE = Path(__file__).resolve().parents[2] / "config" / "samples" / "webhook-probe.yaml"
UI_TIMEOUT_MS = 15_000  # a page reacting to something already true in the cluster


# --- reaching the console ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortForward:
    """`kubectl port-forward svc/mmif-console PORT:80`, started and stopped by the test (bounded:
    it must say "Forwarding from" and answer /healthz within `timeout`)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        # Its output goes to a file: it prints a line per connection, which would fill a pipe.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="console-port-forward-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["kubectl", "-n", CONSOLE_NS, "port-forward", "svc/mmif-console", f"{self.port}:80"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def forwarding():
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"kubectl port-forward exited: {Path(self.log.name).read_text()!r}")
            return "Forwarding from" in Path(self.log.name).read_text()

        def healthy():
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as resp:
                return resp.status == 200

        deadline = time.monotonic() + timeout
        try:
            kube.eventually(forwarding, timeout=timeout, interval=0.1, what="kubectl port-forward")
            kube.eventually(
                _quiet(healthy),
                timeout=max(1.0, deadline - time.monotonic()),
                what="the console via port-forward",
            )
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def _quiet(probe):
    def call():
        try:
            return probe()
        except OSError:
            return None

    return call


def console_ready(timeout: int = 120) -> None:
    kube.kubectl(
        "-n",
        CONSOLE_NS,
        "rollout",
        "status",
        "deployment/mmif-console",
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )


@pytest.fixture(scope="module")
def console(operator_deployed):
    console_ready()
    forward = PortForward()
    forward.start()
    yield forward
    forward.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MMIF_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- people ------------------------------------------------------------------------------------


def person(namespace: str, name: str, run_verbs: list[str] | None) -> str:
    """A ServiceAccount `name` of `namespace` (granted `run_verbs` on pipelineruns and get/list on
    pipelines by a Role, or nothing when None) and a token for it."""
    kube.kubectl("-n", namespace, "create", "serviceaccount", name)
    if run_verbs is not None:
        kube.apply(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": name},
                    "rules": [
                        {"apiGroups": ["mmif.dev"], "resources": ["pipelineruns"], "verbs": run_verbs},
                        {"apiGroups": ["mmif.dev"], "resources": ["pipelines"], "verbs": ["get", "list"]},
                    ],
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                },
            ],
            namespace,
        )
    return kube.kubectl("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()


def login(browser: Browser, console: PortForward, token: str, then: str) -> Page:
    """A fresh browser session: the login page, the token pasted, then the page `then`. The page
    records what the browser's console says (a Content-Security-Policy refusal shows there)."""
    context = browser.new_context(viewport={"width": 1100, "height": 640}, reduced_motion="reduce")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.console_messages_seen = messages  # type: ignore[attr-defined]
    page.goto(f"{console.url}/login?next={urllib.request.quote(then, safe='')}")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{console.url}{then}")
    return page


def no_page_errors(page: Page) -> None:
    """Nothing the pages do is refused by their Content-Security-Policy, no script failed."""
    bad = [
        m for m in page.console_messages_seen if "Content Security Policy" in m or m.startswith("pageerror")
    ]  # type: ignore[attr-defined]
    assert not bad, bad


def overall(page: Page, run: str):
    return page.locator(f'tr[data-run="{run}"] .bar-row.overall [role=progressbar]')


def bar_values(page: Page, run: str) -> list[int]:
    """The aria values of a run's bars on the runs page, overall first, then each step; each
    checked against the bar as drawn (its fill's width over the bar's, within a pixel or two)."""
    bars = page.evaluate(
        """(run) => [...document.querySelectorAll(`tr[data-run="${run}"] [role=progressbar]`)].map((b) => {
             const fill = b.querySelector(".fill");
             return [Number(b.getAttribute("aria-valuenow")),
                     100 * fill.getBoundingClientRect().width / b.getBoundingClientRect().width];
           })""",
        run,
    )
    for value, drawn in bars:
        assert abs(value - drawn) < 2, f"a bar says {value}% but is drawn {drawn:.1f}% full"
    return [value for value, _ in bars]


def watch_bars(page: Page, run: str, timeout: float, on_intermediate=None) -> list[list[int]]:
    """Every distinct set of bar values the page shows until the overall bar reads 100."""
    seen: list[list[int]] = []

    def probe():
        values = bar_values(page, run)
        if values and (not seen or seen[-1] != values):
            seen.append(values)
            if on_intermediate and 0 < values[0] < 100:
                on_intermediate()
        return values and values[0] == 100

    kube.eventually(probe, timeout=timeout, interval=0.2, what=f"the overall bar of {run} at 100%")
    return seen


def sleeper_setup(namespace, workspace, build, items: int, seconds: str, steps: int = 2) -> list[dict]:
    media = {f"media/clip-{i}.mp4": f"clip {i}\n".encode() for i in range(items)}
    workspace.write_media(media)
    chain = [
        build.step("transcript", "textgen"),
        build.step("nap", "sleeper", parameters={"seconds": seconds}),
    ]
    build.apply(build.pipeline("live", chain[:steps], claim_name=workspace.claim_name), namespace)
    return [build.item(loc, name=f"clip-{i}") for i, loc in enumerate(media)]


# --- the tests ---------------------------------------------------------------------------------


def test_a_person_sees_a_runs_bars_move_to_100_and_its_item_table(
    console, browser, namespace, workspace, build, runs, shots
):
    token = person(namespace, "archivist", ["get", "list", "watch"])
    items = sleeper_setup(namespace, workspace, build, items=3, seconds="2")
    page = login(browser, console, token, f"/runs?ns={namespace}")
    expect(page.locator("#username")).to_have_text(f"system:serviceaccount:{namespace}:archivist")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#live")).to_have_text("live")

    # Created while the page is open: it appears and moves without a reload.
    build.apply(
        build.run("batch-1", "live", items, claim_name=workspace.claim_name, parallelism=1), namespace
    )
    expect(page.locator('tr[data-run="batch-1"] a.run-link')).to_have_text("batch-1")
    shot = shots / "console-runs.png"
    seen = watch_bars(
        page, "batch-1", timeout=240, on_intermediate=lambda: shot.exists() or page.screenshot(path=str(shot))
    )
    assert any(0 < v[0] < 100 for v in seen), f"no intermediate overall value was shown: {seen}"
    assert any(0 < s < 100 for v in seen for s in v[1:]), f"no intermediate step value was shown: {seen}"
    assert seen[-1] == [100, 100, 100]
    row = page.locator('tr[data-run="batch-1"]')
    expect(row.locator(".phase")).to_have_text("Succeeded")
    expect(row.locator(".bar-row.overall .bar-pct")).to_have_text("100%")
    expect(row.locator(".bar-row.overall .bar-counts")).to_have_text("3/3")
    run = runs.wait_to_finish(namespace, "batch-1", timeout=30)
    assert run["status"]["phase"] == "Succeeded", runs.diagnostics(namespace, "batch-1")

    page.click('tr[data-run="batch-1"] a.run-link')
    page.wait_for_url(f"{console.url}/run?ns={namespace}&name=batch-1")
    expect(page.locator("#run-phase")).to_have_text("Succeeded")
    table = page.locator("#items tbody tr")
    expect(table).to_have_count(3)
    assert [table.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == [
        "clip-0",
        "clip-1",
        "clip-2",
    ]
    assert [table.nth(i).locator("td").nth(2).inner_text() for i in range(3)] == ["Succeeded"] * 3
    expect(page.locator("#bars [role=progressbar]").first).to_have_attribute("aria-valuenow", "100")
    page.screenshot(path=str(shots / "console-run.png"))
    # The MMIF viewer: tests/e2e/test_console_viewer.py.

    # The Pipelines page: the Pipeline's Ready condition and each step's readiness.
    page.click("nav >> text=Pipelines")
    row = page.locator('tr[data-pipeline="live"]')
    expect(row.locator(".ready-True")).to_have_text("Ready")
    expect(row.locator(".step-chip")).to_have_text(["transcript (Job): ready", "nap (Job): ready"])
    no_page_errors(page)
    page.context.close()


def test_a_reviewer_passes_a_run_from_the_run_page(console, browser, namespace, workspace, build, runs):
    reviewer = person(namespace, "rita", ["get", "list", "watch", "patch", "review"])
    editor = person(namespace, "eddie", ["get", "list", "watch", "patch"])  # no `review`
    workspace.write_media({"media/clip.mp4": b"clip\n"})
    build.apply(
        build.pipeline(
            "reviewed",
            [build.step("transcript", "textgen")],
            claim_name=workspace.claim_name,
            review={"required": True},
        ),
        namespace,
    )
    build.apply(
        build.run(
            "rev", "reviewed", [build.item("media/clip.mp4", name="clip")], claim_name=workspace.claim_name
        ),
        namespace,
    )
    run_page = f"/run?ns={namespace}&name=rev"

    # Someone who may patch runs but lacks `review` sees the webhook's refusal.
    page = login(browser, console, editor, run_page)
    expect(page.locator("#run-phase")).to_have_text("AwaitingReview", timeout=240_000)
    page.fill("#review-comment", "looks fine to me")
    page.click("#review-form button.pass")
    expect(page.locator("#review-message")).to_contain_text("may not review pipelineruns")
    assert kube.get("pipelinerun", "rev", namespace)["status"]["phase"] == "AwaitingReview"
    no_page_errors(page)
    page.context.close()

    page = login(browser, console, reviewer, run_page)
    expect(page.locator("#review-form")).to_be_visible()
    page.fill("#review-comment", "checked the clip by hand")
    page.click("#review-form button.pass")
    expect(page.locator("#run-phase")).to_have_text("Succeeded", timeout=120_000)
    decision = page.locator("#review-decision")
    expect(decision).to_contain_text("Passed by")
    expect(decision.locator(".reviewer")).to_have_text(f"system:serviceaccount:{namespace}:rita")
    expect(decision).to_contain_text("checked the clip by hand")
    run = kube.get("pipelinerun", "rev", namespace)
    assert run["spec"]["review"]["reviewer"] == f"system:serviceaccount:{namespace}:rita"
    no_page_errors(page)
    page.context.close()


def test_a_token_that_may_not_read_a_namespace_sees_nothing_of_it(console, browser, namespace, build):
    allowed = person(namespace, "insider", ["get", "list", "watch"])
    outsider = person(namespace, "outsider", None)
    build.apply(build.run("secret-batch", "no-such-pipeline", [build.item("media/x.mp4")]), namespace)

    page = login(browser, console, outsider, f"/runs?ns={namespace}")
    expect(page.locator("#message")).to_contain_text("Not allowed")
    expect(page.locator("#message")).to_contain_text(f"namespace {namespace}")
    assert "secret-batch" not in page.content()
    # The stream refuses as well, whatever the page does.
    body = page.evaluate(
        """async (url) => { const r = await fetch(url); const reader = r.body.getReader();
           const { value } = await reader.read(); reader.cancel(); return new TextDecoder().decode(value); }""",
        f"/api/namespaces/{namespace}/stream",
    )
    assert body.startswith("event: denied") and "secret-batch" not in body
    page.goto(f"{console.url}/run?ns={namespace}&name=secret-batch")
    expect(page.locator("#message")).to_contain_text("Not allowed")
    expect(page.locator("#run")).to_be_hidden()
    assert "no-such-pipeline" not in page.content()
    no_page_errors(page)
    page.context.close()

    # The same page with a token that may list runs there shows the run: the refusal was the token's.
    page = login(browser, console, allowed, f"/runs?ns={namespace}")
    expect(page.locator('tr[data-run="secret-batch"] a.run-link')).to_have_text("secret-batch")
    no_page_errors(page)
    page.context.close()


def test_the_page_keeps_updating_when_the_console_and_the_operator_restart(
    console, browser, namespace, workspace, build, runs
):
    token = person(namespace, "watcher", ["get", "list", "watch"])
    items = sleeper_setup(namespace, workspace, build, items=4, seconds="3", steps=2)
    build.apply(build.run("long", "live", items, claim_name=workspace.claim_name, parallelism=1), namespace)
    page = login(browser, console, token, f"/runs?ns={namespace}")
    kube.eventually(
        lambda: 0 < bar_values(page, "long")[0] < 100, timeout=180, interval=0.2, what="the run under way"
    )
    before = bar_values(page, "long")[0]

    old = {
        d: kube.kubectl(
            "-n", CONSOLE_NS, "get", "pods", "-l", f"app.kubernetes.io/name={d}", "-o", "name"
        ).stdout.split()
        for d in ("mmif-console", "mmif-operator")
    }
    kube.kubectl(
        "-n",
        CONSOLE_NS,
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/name in (mmif-console,mmif-operator)",
        "--wait=false",
    )
    expect(page.locator("#live")).not_to_have_text("live", timeout=30_000)  # the page noticed
    for d, pods in old.items():
        kube.eventually(
            lambda d=d, pods=pods: all(
                p not in pods
                for p in kube.kubectl(
                    "-n", CONSOLE_NS, "get", "pods", "-l", f"app.kubernetes.io/name={d}", "-o", "name"
                ).stdout.split()
            ),
            timeout=60,
            what=f"the old {d} pod gone",
        )
    console_ready()
    kube.kubectl(
        "-n", CONSOLE_NS, "rollout", "status", "deployment/mmif-operator", "--timeout=180s", timeout=210
    )
    console.stop()  # the forward followed the old pod: open it again, on the same port
    console.start()

    expect(page.locator("#live")).to_have_text("live", timeout=30_000)  # reconnected, not reloaded
    seen = watch_bars(page, "long", timeout=240)
    assert seen[-1][0] == 100 and before < 100
    expect(page.locator('tr[data-run="long"] .phase')).to_have_text("Succeeded")
    assert runs.wait_to_finish(namespace, "long", timeout=30)["status"]["phase"] == "Succeeded"
    no_page_errors(page)
    page.context.close()
    # Leave the operator as found: its admission webhook answers again (as `make deploy` checks).
    kube.eventually(
        lambda: (
            kube.kubectl(
                "-n",
                CONSOLE_NS,
                "create",
                "--dry-run=server",
                "-o",
                "name",
                "-f",
                str(WEBHOOK_PROBE),
                check=False,
            ).returncode
            == 0
        ),
        timeout=60,
        interval=1,
        what="the operator's admission webhook answering",
    )


# --- the MMIF viewer ----------------------------------------------------------------------------

READER_PODS = "app.kubernetes.io/managed-by=kubectl-mmif"


def mmif_user(namespace: str, name: str) -> str:
    """A ServiceAccount bound to the shipped `mmif-user` ClusterRole in `namespace`, its token."""
    kube.kubectl("-n", namespace, "create", "serviceaccount", name)
    kube.kubectl(
        "-n",
        namespace,
        "create",
        "rolebinding",
        name,
        "--clusterrole=mmif-user",
        f"--serviceaccount={namespace}:{name}",
    )
    return kube.kubectl("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()


def test_a_person_opens_an_items_mmif_and_sees_its_views_counts_and_timeline(
    console, browser, namespace, workspace, build, runs, shots
):
    media = {f"media/clip-{i}.mp4": f"not really a video {i}\n" for i in range(2)}
    workspace.write_media(media)
    chain = [
        build.step("transcript", "textgen"),
        build.step("segments", "timeframes", parameters={"count": "3"}),
    ]
    build.apply(build.pipeline("view", chain, claim_name=workspace.claim_name), namespace)
    items = [build.item(loc, name=f"clip-{i}") for i, loc in enumerate(media)]
    build.apply(build.run("viewed", "view", items, claim_name=workspace.claim_name), namespace)
    run = runs.wait_to_finish(namespace, "viewed", timeout=240)
    assert run["status"]["phase"] == "Succeeded", runs.diagnostics(namespace, "viewed")
    final = Mmif(workspace.read_file(f"{run['status']['outputPath']}/items/00001/final.mmif").decode())
    frames = [a.id for v in final.views for a in v.get_annotations(AnnotationTypes.TimeFrame)]
    assert len(frames) == 3

    token = mmif_user(namespace, "viewer")
    page = login(browser, console, token, f"/run?ns={namespace}&name=viewed")
    expect(page.locator("#run-phase")).to_have_text("Succeeded")
    page.locator('#items tbody tr[data-index="1"] button.mmif').click()
    viewer = page.locator("#mmif-viewer")
    expect(viewer.locator("h2")).to_have_text("Item 1 (clip-1): Succeeded", timeout=60_000)

    views = viewer.locator("#mmif-views tbody tr")
    expect(views.locator("td.app")).to_have_text(
        ["http://apps.mmif.dev/textgen", "http://apps.mmif.dev/timeframes"]
    )
    expect(views.nth(1)).to_contain_text("count=3")
    expect(views.nth(1).locator('.count[data-type="TimeFrame"]')).to_have_text("TimeFrame 3")
    expect(views.nth(0).locator('.count[data-type="TextDocument"]')).to_have_text("TextDocument 1")
    expect(viewer.locator('#mmif-totals .count[data-type="TimeFrame"]')).to_have_text("TimeFrame 3")
    expect(viewer.locator("#mmif-documents tbody tr").first).to_contain_text("file:///data/media/clip-1.mp4")

    # One bar per TimeFrame of the final MMIF, placed along the track (the CSSOM, not a style attribute).
    bars = viewer.locator("#timeline .tl-frame")
    expect(bars).to_have_count(len(frames))
    assert sorted(bars.evaluate_all("els => els.map((e) => e.dataset.id)")) == sorted(frames)
    boxes = bars.evaluate_all(
        "els => els.map((e) => { const b = e.getBoundingClientRect(), t = e.parentElement.getBoundingClientRect();"
        " return [b.left - t.left, b.width, t.width]; })"
    )
    lefts = [left for left, _, _ in boxes]
    assert lefts == sorted(lefts) and lefts[0] < lefts[-1], boxes  # 0-0.5 s, 1-1.5 s, 2-2.5 s
    assert all(0 < width < track for _, width, track in boxes), boxes
    page.screenshot(path=str(shots / "console-mmif-viewer.png"), full_page=True)

    with page.expect_download() as got:
        viewer.locator("#mmif-download").click()
    downloaded = Mmif(got.value.path().read_text(encoding="utf-8"))
    assert downloaded.serialize() == final.serialize()
    no_page_errors(page)
    page.context.close()
    kube.eventually(
        lambda: (
            not [
                p
                for p in kube.get_list("pods", namespace, READER_PODS)
                if not p["metadata"].get("deletionTimestamp")
            ]
        ),
        timeout=30,
        what="the console's reader pods deleted",
    )

    # May read the run (get/list/watch pipelineruns) but not create pods: the API server's refusal.
    token = person(namespace, "onlooker", ["get", "list", "watch"])
    page = login(browser, console, token, f"/run?ns={namespace}&name=viewed")
    page.locator('#items tbody tr[data-index="0"] button.mmif').click()
    expect(page.locator("#mmif-error")).to_contain_text(
        f'pods is forbidden: User "system:serviceaccount:{namespace}:onlooker" cannot create resource "pods"'
    )
    no_page_errors(page)
    page.context.close()


def test_a_person_opens_a_failed_items_logs_and_sees_the_apps_message(
    console, browser, namespace, workspace, build, runs, shots
):
    workspace.write_media({"media/bad.mp4": "not really a video\n", "media/good.mp4": "fine\n"})
    chain = [build.step("check", "failer", parameters={"failOn": "bad"})]
    build.apply(build.pipeline("checked", chain, claim_name=workspace.claim_name), namespace)
    items = [build.item("media/good.mp4", name="good"), build.item("media/bad.mp4", name="bad")]
    build.apply(build.run("mixed", "checked", items, claim_name=workspace.claim_name), namespace)
    run = runs.wait_to_finish(namespace, "mixed", timeout=240)
    assert run["status"]["phase"] == "Failed", runs.diagnostics(namespace, "mixed")
    kube.eventually(
        lambda: not kube.get_list("pods", namespace, "mmif.dev/run=mixed,app.kubernetes.io/component=step"),
        timeout=60,
        what="the step pods deleted",
    )

    token = mmif_user(namespace, "triage")
    page = login(browser, console, token, f"/run?ns={namespace}&name=mixed")
    expect(page.locator("#run-phase")).to_have_text("Failed")
    failed = page.locator('#items tbody tr[data-index="1"]')
    expect(failed).to_contain_text("Failed")
    expect(failed.locator("button.mmif")).to_be_visible()  # its MMIF, beside its logs
    failed.locator("button.logs").click()
    panel = page.locator("#logs-viewer")
    expect(panel.locator("h2")).to_have_text("Item 1: logs")
    kept = panel.locator("section.log-kept")
    expect(kept.locator("h3")).to_contain_text(
        "item 1 (bad) step check: the app, kept by the operator when the step failed", timeout=60_000
    )
    expect(kept.locator("pre")).to_contain_text("failer: refusing document d1: it contains 'bad'")
    expect(panel.locator("section.log-volume h3")).to_contain_text("the runner, from the volume")
    page.screenshot(path=str(shots / "console-item-logs.png"), full_page=True)

    page.locator('#items tbody tr[data-index="0"] button.logs').click()  # it succeeded: not kept
    expect(panel.locator("h2")).to_have_text("Item 0: logs")
    expect(panel.locator("section.log-none h3")).to_contain_text(
        "the operator keeps the app's log of failed item-steps only", timeout=60_000
    )
    no_page_errors(page)
    page.context.close()


# --- kubectl mmif console -----------------------------------------------------------------------

BIN = Path(sys.executable).parent  # the venv's bin: where `pip install` put kubectl-mmif


def token_kubeconfig(path: Path, token: str, namespace: str) -> Path:
    """A kubeconfig for the cluster (its address and CA from the admin's) whose user is `token`."""
    admin = json.loads(kube.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = admin["clusters"][0]["cluster"]
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
        "current-context": "ctx",
    }
    path.write_text(json.dumps(cfg))
    return path


def test_kubectl_mmif_console_logs_the_kubeconfig_user_in_and_stops_its_port_forward(
    console, browser, namespace, tmp_path
):
    token = person(namespace, "pat", ["get", "list", "watch"])
    kube.kubectl(
        "-n",
        CONSOLE_NS,
        "create",
        "rolebinding",
        f"pat-{namespace}"[:63],
        "--role=mmif-console-access",
        f"--serviceaccount={namespace}:pat",
    )
    try:
        config = token_kubeconfig(tmp_path / "pat.kubeconfig", token, namespace)
        port = free_port()
        out = tmp_path / "console.out"
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(config),
        }
        with out.open("w") as sink:
            proc = subprocess.Popen(
                ["kubectl", "mmif", "console", "--no-open", "--port", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        try:
            kube.eventually(
                lambda: (
                    proc.poll() is None and out.read_text().startswith("http://") or proc.poll() is not None
                ),
                timeout=45,
                what="kubectl mmif console printing the address",
            )
            assert proc.poll() is None, out.read_text()
            url = out.read_text().splitlines()[0]
            assert url == f"http://127.0.0.1:{port}/login?next=/runs%3Fns%3D{namespace}#token={token}"
            context = browser.new_context(viewport={"width": 1100, "height": 640})
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_url(f"http://127.0.0.1:{port}/runs?ns={namespace}")
            expect(page.locator("#username")).to_have_text(f"system:serviceaccount:{namespace}:pat")
            assert "token" not in page.url
            context.close()
        finally:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: the command stops its port-forward
            code = proc.wait(timeout=20)
        assert code == 130, out.read_text()
        with socket.socket() as s:  # nothing listens on the port any more
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        kube.kubectl("-n", CONSOLE_NS, "delete", "rolebinding", f"pat-{namespace}"[:63], "--ignore-not-found")
