"""The Argo CD health checks of config/argocd/resource_customizations/mmif.dev, run as Argo CD
runs them (gopher-lua with Argo CD's libraries; tests/health.py builds the Go runner): every case
of each kind's health_test.yaml (inputPath -> healthStatus {status, message}, as Argo CD's own
test runner reads them), over testdata taken from real objects of the local cluster
(tests/e2e/test_health_kstatus.py writes them). Also what kstatus computes for that testdata, and
that the `argocd-cm` snippet in config/argocd and docs/howto.md is the scripts' current text."""

from __future__ import annotations

import pytest
import yaml

from tests import health

CASES = [
    (kind, case)
    for kind in health.KINDS
    for case in yaml.safe_load((health.CUSTOMIZATIONS / kind / "health_test.yaml").read_text())["tests"]
]


def load(kind: str, input_path: str) -> dict:
    return yaml.safe_load((health.CUSTOMIZATIONS / kind / input_path).read_text())


@pytest.mark.parametrize(("kind", "case"), CASES, ids=[f"{k}:{c['inputPath']}" for k, c in CASES])
def test_health_test_yaml_case(kind, case):
    obj = load(kind, case["inputPath"])
    assert obj["kind"] == kind
    assert health.argocd_health(obj) == case["healthStatus"]


def test_every_testdata_file_has_a_case_and_every_kind_its_script():
    for kind in health.KINDS:
        folder = health.CUSTOMIZATIONS / kind
        assert (folder / "health.lua").is_file()
        used = {c["inputPath"] for k, c in CASES if k == kind}
        files = {f"testdata/{p.name}" for p in (folder / "testdata").iterdir()}
        assert files == used, (kind, files ^ used)


@pytest.mark.parametrize(
    ("kind", "input_path", "expected"),
    [
        # The long-lived kind: kstatus reads Ready, Reconciling, Stalled and observedGeneration.
        ("Pipeline", "testdata/ready.yaml", "Current"),
        ("Pipeline", "testdata/image-pull-failed.yaml", "InProgress"),
        ("Pipeline", "testdata/stalled.yaml", "Failed"),
        ("Pipeline", "testdata/generation-ahead.yaml", "InProgress"),
        ("Pipeline", "testdata/deleting.yaml", "Terminating"),
        # Runs: kstatus knows no `Succeeded` condition; it says Current whatever the phase
        # (docs/howto.md says so).
        ("PipelineRun", "testdata/running.yaml", "Current"),
        ("PipelineRun", "testdata/succeeded.yaml", "Current"),
        ("PipelineRun", "testdata/failed.yaml", "Current"),
        ("PipelineRun", "testdata/deleting.yaml", "Terminating"),
        ("AnalysisJob", "testdata/failed.yaml", "Current"),
        # Projects and Monitors: long-lived, with Ready, Reconciling and Stalled.
        ("Project", "testdata/open.yaml", "Current"),
        ("Project", "testdata/closed.yaml", "Current"),
        ("Project", "testdata/name-conflict.yaml", "Failed"),
        ("Project", "testdata/generation-ahead.yaml", "InProgress"),
        ("Monitor", "testdata/healthy.yaml", "Current"),
        ("Monitor", "testdata/first-test.yaml", "InProgress"),
        # Ready False (the target failed its test, or suspended while not Healthy): kstatus
        # waits, as it does for any object whose Ready is False.
        ("Monitor", "testdata/degraded.yaml", "InProgress"),
        ("Monitor", "testdata/suspended.yaml", "InProgress"),
        ("Monitor", "testdata/stalled.yaml", "Failed"),
        ("Monitor", "testdata/deleting.yaml", "Terminating"),
    ],
)
def test_what_kstatus_computes(kind, input_path, expected):
    assert health.kstatus(load(kind, input_path))["status"] == expected


def test_a_script_error_is_an_error_not_a_health():
    with pytest.raises(RuntimeError, match="mmifhealth lua"):
        health.argocd_health({"kind": "Pipeline", "metadata": None})


def test_the_argocd_cm_snippet_is_generated_from_the_scripts():
    assert health.CM_PATCH.read_text() == health.snippet(), "run: python -m tests.health write"
    assert health.howto_block() in health.HOWTO.read_text(), "run: python -m tests.health write"
    data = yaml.safe_load(health.CM_PATCH.read_text())["data"]
    assert data == {
        f"resource.customizations.health.mmif.dev_{kind}": health.script(kind).read_text()
        for kind in health.KINDS
    }
