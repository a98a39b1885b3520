"""The runner's peak memory for an answer just under its cap (docs/design.md, "Runner exit codes").

    python -m bench.runner_memory [--input-mib 1] [--input-mib 30]

Serves, from this process, an app whose answer to POST is the input MMIF plus one new view of
annotation-dense TimeFrames (the densest kind of MMIF: the most mmif-python objects per byte),
just under `MAX_ANSWER_BYTES`; runs `mmif-runner prepare` and `mmif-runner step` as children on a
temporary workspace whose item is an input MMIF of `--input-mib` MiB (annotation-dense as well);
prints the step's peak RSS (the children's maxrss) and duration. The runner's memory limit
(`RUNNER_RESOURCES`, kinds/pipelinerun/children.py) must stay above it.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

from mmif_operator.runner import appclient, inputs
from mmif_operator.runner import env as E

APP = "http://apps.mmif.dev/dense/v1"
TIMEFRAME = "http://mmif.clams.ai/vocabulary/TimeFrame/v5"


def _annotation(i: int) -> dict:
    return {"@type": TIMEFRAME, "properties": {"id": f"tf{i}", "start": 0, "end": 1}}


def _view(view_id: str, app: str, count: int) -> dict:
    return {
        "id": view_id,
        "metadata": {
            "app": app,
            "timestamp": "2024-01-01T00:00:00Z",
            "contains": {TIMEFRAME: {"document": "d1"}},
        },
        "annotations": [_annotation(i) for i in range(count)],
    }


def bodies(input_mib: float, cap: int) -> tuple[bytes, bytes]:
    per = len(json.dumps(_annotation(100000))) + 2
    doc = {
        "metadata": {"mmif": "http://mmif.clams.ai/1.0.5"},
        "documents": [
            {
                "@type": "http://mmif.clams.ai/vocabulary/VideoDocument/v1",
                "properties": {"id": "d1", "mime": "video/mp4", "location": "file:///data/a.mp4"},
            }
        ],
        "views": [_view("v1", "http://apps.mmif.dev/earlier/v1", int(input_mib * 2**20) // per)],
    }
    source = json.dumps(doc).encode()
    doc["views"].append(_view("v2", APP, (cap - len(source) - 2000) // per))
    answer = json.dumps(doc).encode()
    assert len(answer) <= cap, (len(answer), cap)
    return source, answer


def measure(input_mib: float) -> dict:
    cap = appclient.MAX_ANSWER_BYTES
    source, answer = bodies(input_mib, cap)

    class App(http.server.BaseHTTPRequestHandler):
        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            self._send(json.dumps({"identifier": APP}).encode())

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        ws = os.path.join(tmp, "data")
        os.makedirs(ws)
        with open(os.path.join(ws, "in.mmif"), "wb") as f:
            f.write(source)
        items = os.path.join(tmp, "items.json.z")
        with open(items, "wb") as f:
            f.write(inputs.encode("u", {"items": [{"mmif": "in.mmif"}]}))
        base = dict(
            os.environ,
            **{
                E.WORKSPACE: ws,
                E.RUN_DIR: os.path.join(ws, "mmif-runs", "r"),
                E.RUN_UID: "u",
                E.TERMINATION_LOG: os.path.join(tmp, "termination-log"),
            },
        )
        runner = [sys.executable, "-m", "mmif_operator.runner.cli"]
        prep = subprocess.run(
            [*runner, "prepare"], env={**base, E.ITEMS_FILE: items}, capture_output=True, text=True
        )
        assert prep.returncode == 0, prep.stdout + prep.stderr
        started = time.monotonic()
        step = subprocess.run(
            [*runner, "step"],
            capture_output=True,
            text=True,
            env={
                **base,
                E.ITEM_INDEX: "0",
                E.STEP_INDEX: "0",
                E.STEPS: "dense",
                E.APP_URL: f"http://127.0.0.1:{server.server_port}",
            },
        )
        took = time.monotonic() - started
    server.shutdown()
    summary = json.loads(step.stdout.strip().splitlines()[-1])
    return {
        "inputMiB": round(len(source) / 2**20, 1),
        "answerMiB": round(len(answer) / 2**20, 2),
        "capMiB": cap // 2**20,
        "exit": step.returncode,
        "reason": summary.get("reason"),
        "peakRssMiB": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "seconds": round(took),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-mib", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.input_mib)))


if __name__ == "__main__":
    main()
