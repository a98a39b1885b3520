"""What parsing a PipelineRun where it enters costs the run loop (core/specs.py,
`kinds.pipelinerun.planning.parse_run`): the spec and its pipeline snapshot parsed into the
models, for N inline items (a spec holds at most 1,000; larger batches come from `itemsFrom`,
which costs nothing here), without and with the loop's cache (one parse per generation).

    .venv/bin/python -m bench.parse_cost [N ...]      # default 0 100 1000

No cluster.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from mmif_operator.core.specs import ParseCache
from mmif_operator.kinds.pipelinerun import planning as R

REPEAT = 50
STEPS = 3


def run_body(items: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"pipelineRef": {"name": "pipe"}, "workspace": {"claimName": "media"}}
    if items:
        spec["items"] = [
            {
                "name": f"item-{i}",
                "documents": [
                    {"location": f"videos/v{i}.mp4", "mimeType": "video/mp4"},
                    {"location": f"text/v{i}.txt", "mimeType": "text/plain"},
                ],
            }
            for i in range(items)
        ]
    else:
        spec["itemsFrom"] = {"path": "batch.jsonl"}
    snapshot = {"steps": [{"name": f"s{k}", "image": f"app-{k}:1"} for k in range(STEPS)]}
    return {
        "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": spec,
        "status": {"phase": "Running", "pipelineSpec": snapshot},
    }


def parse_ms(items: int, cache: ParseCache | None) -> float:
    body = run_body(items)
    R.parse_run(body, cache)  # (warm: the cache holds it from here on)
    start = time.perf_counter()
    for _ in range(REPEAT):
        R.parse_run(body, cache)
    return (time.perf_counter() - start) / REPEAT * 1000


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [0, 100, 1000]
    print(
        f"| inline items | parse_run ms, no cache (mean of {REPEAT}) | with the loop's cache |\n|---|---|---|"
    )
    for n in sizes:
        print(f"| {n} | {parse_ms(n, None):.2f} | {parse_ms(n, ParseCache(2)):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
