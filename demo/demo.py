"""`make demo`: run a real two-step pipeline over the sample media in demo/media and summarise it.

Uses the cluster in $KUBECONFIG with the operator deployed (the Makefile sees to both). Creates the
namespace `mmif-demo`, a volume with the sample media on it, a Pipeline (a Job-mode step and a
Service-mode step) and a new PipelineRun; shows the run's progress live; then prints where the
results are and what the final MMIF files hold, read with mmif-python.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import yaml
from mmif import Mmif

HERE = pathlib.Path(__file__).parent
NS = "mmif-demo"


def kubectl(*args: str, input: str | None = None) -> str:
    proc = subprocess.run(["kubectl", "-n", NS, *args], input=input, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def on_volume(path: str) -> str:
    """Read a file from the demo volume through the loader pod."""
    return kubectl("exec", "loader", "--", "cat", path)


def setup() -> None:
    subprocess.run(["kubectl", "create", "namespace", NS], capture_output=True)
    kubectl("apply", "-f", str(HERE / "volume.yaml"))
    kubectl("wait", "pod/loader", "--for=condition=Ready", "--timeout=120s")
    kubectl("exec", "loader", "--", "mkdir", "-p", "/data/media")
    for f in sorted((HERE / "media").iterdir()):
        kubectl("cp", str(f), f"loader:/data/media/{f.name}")
    print(
        f"sample media copied to the volume: {', '.join(f.name for f in sorted((HERE / 'media').iterdir()))}"
    )
    kubectl("apply", "-f", str(HERE / "pipeline.yaml"))


def start_run() -> str:
    run = yaml.safe_load((HERE / "pipelinerun.yaml").read_text())
    run["metadata"]["name"] = name = "demo-" + time.strftime("%Y%m%d-%H%M%S")
    kubectl("create", "-f", "-", input=yaml.safe_dump(run))
    print(f"created pipelinerun/{name} in namespace {NS}\n")
    return name


def watch(name: str, timeout: float = 600) -> dict:
    start, shown = time.monotonic(), None
    while time.monotonic() - start < timeout:
        run = json.loads(kubectl("get", "pipelinerun", name, "-o", "json"))
        status = run.get("status", {})
        cond = next((c for c in status.get("conditions", []) if c["type"] == "Succeeded"), {})
        steps = "  ".join(
            f"{s['name']}: {s.get('running', 0)} running, {s.get('succeeded', 0)} done, "
            f"{s.get('failed', 0)} failed"
            for s in status.get("steps", [])
        )
        line = f"{status.get('phase', 'Pending'):<9} {status.get('progress', '-'):>5}  {steps}"
        if line != shown:
            print(f"[{time.monotonic() - start:5.1f}s] {line}")
            shown = line
        if cond.get("status") in ("True", "False"):
            print(f"\nSucceeded={cond['status']} reason={cond.get('reason')}: {cond.get('message', '')}")
            return run
        time.sleep(1)
    sys.exit(f"the run did not finish within {timeout:.0f}s")


def watch_analysis(name: str, timeout: float = 300) -> dict | None:
    """The run's triggered analysis, until it ends (None when the run created none)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        aj = json.loads(kubectl("get", "analysisjobs", "-l", f"mmif.dev/run={name}", "-o", "json"))["items"]
        if not aj:
            return None
        cond = next(
            (c for c in aj[0].get("status", {}).get("conditions", []) if c["type"] == "Succeeded"), {}
        )
        if cond.get("status") in ("True", "False"):
            return aj[0]
        time.sleep(1)
    sys.exit(f"the analysis did not finish within {timeout:.0f}s")


def summarise_analysis(aj: dict) -> None:
    status = aj["status"]
    cond = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    print(
        f"\nanalysisjob/{aj['metadata']['name']} ({aj['spec']['trigger']}, requested by "
        f"{aj['spec'].get('requester', {}).get('username')}): {status.get('progress')} items, "
        f"Succeeded={cond['status']} reason={cond['reason']}"
    )
    manifest = json.loads(on_volume(status["manifestPath"]))
    for item in manifest["items"]:
        mmif = Mmif(on_volume(f"{status['outputPath']}/{item['output']}"))
        print(
            f"  item {item['index']}: {status['outputPath']}/{item['output']}  finished {item['finishedAt']}  "
            f"views: {', '.join(v.metadata.app.rsplit('/', 2)[-2] for v in mmif.views)}"
        )


def summarise(run: dict) -> None:
    status = run["status"]
    manifest = json.loads(on_volume(status["manifestPath"]))
    print(f"\nresults: {status['outputPath']} on the volume (PVC {run['spec']['workspace']['claimName']})")
    print(f"manifest: {status['manifestPath']}")
    for item in manifest["items"]:
        print(f"\n  item {item['index']} {item['name']}: {item['state']}")
        if not item.get("output"):
            continue
        path = f"{manifest.get('runDir', status['outputPath'])}/{item['output']}"
        mmif = Mmif(on_volume(path))
        print(f"    {path}  sha256 {item.get('sha256', '')[:12]}…")
        print(f"    documents: {', '.join(d.at_type.shortname for d in mmif.documents)}")
        for view in mmif.views:
            counts: dict[str, int] = {}
            for ann in view.annotations:
                counts[ann.at_type.shortname] = counts.get(ann.at_type.shortname, 0) + 1
            print(
                f"    view {view.id} by {view.metadata.app}: "
                + (", ".join(f"{n} {t}" for t, n in counts.items()) or "no annotations")
            )


def main() -> None:
    setup()
    name = start_run()
    run = watch(name)
    summarise(run)
    aj = watch_analysis(name)
    if aj is not None:
        summarise_analysis(aj)


if __name__ == "__main__":
    main()
