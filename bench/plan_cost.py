"""What one reconcile pass costs the operator in CPU: `plan_run` timed on a run in the middle of
its batch (1,000 items in flight, 15 of their Jobs just finished), for N items.

    .venv/bin/python -m bench.plan_cost [N ...]      # default 1000 10000

No cluster: the run is driven by the unit tests' simulator (tests/unit/test_reconcile_run.py).
"""

from __future__ import annotations

import sys
import time

from mmif_operator.kinds.pipelinerun import planning as R
from tests.unit.test_reconcile_run import Sim, make_run

STEPS = 3
IN_FLIGHT = 1000
FINISHED = 15
REPEAT = 20


def plan_ms(items: int) -> float:
    pipeline = {"steps": [{"name": f"s{k}", "image": f"app-{k}:1"} for k in range(STEPS)]}
    sim = Sim(
        make_run(n_items=0, parallelism=min(IN_FLIGHT, items), items=None, itemsFrom={"path": "batch.jsonl"}),
        pipeline,
    )
    sim.started(items)
    for job in list(sim.jobs.values())[:FINISHED]:
        sim.finish(job.name)
    observed = list(sim.jobs.values())
    run = R.parse_run(sim.run)  # (the handler parses it; bench.parse_cost times that)
    start = time.perf_counter()
    for _ in range(REPEAT):
        R.plan_run(run, None, observed, sim.now, operator_image="img")
    return (time.perf_counter() - start) / REPEAT * 1000


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1000, 10000]
    print("| items | plan_run ms (mean of 20) |\n|---|---|")
    for n in sizes:
        print(f"| {n} | {plan_ms(n):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
