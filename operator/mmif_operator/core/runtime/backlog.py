"""What the runs in flight need of their Pipelines' autoscaled steps (kinds/pipeline/scaling.py).

Each run's loop reports, after each pass, its needs of each autoscaled step of its Pipeline;
the Pipeline's loop sums them to scale the step's app. Kept in memory only: after a restart the
runs' first passes report again, and until then a step keeps the replicas it has (scale-downs
wait for the delay, taken from the restart).
"""

from __future__ import annotations

from collections.abc import Mapping

from mmif_operator.kinds.pipeline.scaling import Need, wanted

Key = tuple[str, str]  # runtime.pipeline_key(namespace, pipeline)
Bounds = Mapping[str, tuple[int, int]]  # step -> (minReplicas, replicas) of the run's snapshot


class Backlogs:
    def __init__(self) -> None:
        # pipeline -> run -> (its needs by step, the bounds of its snapshot's autoscaled steps)
        self._by_pipeline: dict[Key, dict[str, tuple[dict[str, Need], dict[str, tuple[int, int]]]]] = {}

    def needs(self, key: Key) -> dict[str, list[Need]]:
        """Step name -> the needs of every run reporting for the Pipeline `key`."""
        out: dict[str, list[Need]] = {}
        for per_step, _ in self._by_pipeline.get(key, {}).values():
            for step, need in per_step.items():
                out.setdefault(step, []).append(need)
        return out

    def report(self, key: Key, run: str, needs: Mapping[str, Need], bounds: Bounds) -> bool:
        """Record `run`'s needs (empty: it needs nothing, e.g. it ended); True when that changes
        the replicas some step wants (its Pipeline should look again)."""
        runs = self._by_pipeline.setdefault(key, {})
        seen = {**(runs[run][1] if run in runs else {}), **bounds}
        before = self._signature(key, seen)
        if needs:
            runs[run] = (dict(needs), dict(bounds))
        else:
            runs.pop(run, None)
        if not runs:
            self._by_pipeline.pop(key, None)
        return self._signature(key, seen) != before

    def _signature(self, key: Key, bounds: Bounds) -> tuple[int, ...]:
        needs = self.needs(key)
        return tuple(wanted(needs.get(step, []), low, high) for step, (low, high) in sorted(bounds.items()))
