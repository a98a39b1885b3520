"""How many replicas an autoscaled Service-mode step keeps (`Step.autoscaling`, docs/design.md).

The runs of a Pipeline tell the operator, after each of their passes, how many of their items
still need each step and how many are at it (`Need`, core/runtime/backlog.py). From the sum the
step wants one replica while any item still needs it (so the app is up when the first one gets
there), one per item at the step beyond that (one request at a time reaches an app replica),
between `autoscaling.minReplicas` and `replicas`. Replicas go up at once; they come down only
once the step has wanted fewer for `autoscaling.scaleDownDelaySeconds`. Every decision of that is
a pure function here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mmif_operator.kinds.pipeline.model import PipelineSpec, Step


@dataclass(frozen=True)
class Need:
    """One run's need of one step: items still to reach it or at it, and items at it."""

    items: int = 0
    at_step: int = 0


def step_needs(steps_status: Iterable[Mapping[str, object]]) -> dict[str, Need]:
    """A run's `status.steps` (pending = still to reach the step) as needs, by step name."""
    out: dict[str, Need] = {}
    for s in steps_status:
        pending, running = _count(s.get("pending")), _count(s.get("running"))
        out[str(s.get("name") or "")] = Need(items=pending + running, at_step=running)
    return out


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def wanted(needs: Iterable[Need], low: int, high: int) -> int:
    """The replicas the runs' `needs` ask of a step, between `low` and `high`."""
    needs = list(needs)
    asked = 0 if sum(n.items for n in needs) == 0 else max(1, sum(n.at_step for n in needs))
    return max(low, min(high, asked))


def bounds(step: Step) -> tuple[int, int] | None:
    """(fewest, most) replicas of an autoscaled step; None when it is not autoscaled."""
    return None if step.autoscaling is None else (step.autoscaling.min_replicas, step.replicas)


def snapshot_bounds(steps: Iterable[Mapping[str, object]]) -> dict[str, tuple[int, int]]:
    """`bounds` of the autoscaled steps of a run's Pipeline snapshot (`status.pipelineSpec`:
    the spec as stored, defaults filled in), by step name."""
    out: dict[str, tuple[int, int]] = {}
    for s in steps:
        auto = s.get("autoscaling")
        if isinstance(auto, Mapping):
            out[str(s.get("name") or "")] = (_count(auto.get("minReplicas")), _count(s.get("replicas")) or 1)
    return out


def wanted_replicas(step: Step, needs: Iterable[Need]) -> int:
    """The replicas the runs' needs ask of `step` (`replicas` for a step not autoscaled)."""
    b = bounds(step)
    return step.replicas if b is None else wanted(needs, *b)


@dataclass(frozen=True)
class Scale:
    replicas: int  # what the Deployment gets now
    needed_at: float  # when the step last wanted `replicas` or more (monotonic seconds)
    recheck_in: float | None  # seconds until a scale-down is due (None: none pending)


def next_replicas(
    wanted: int, current: int | None, needed_at: float | None, now: float, delay: float
) -> Scale:
    """Up at once; down to `wanted` once the step has wanted less than `current` for `delay`
    seconds. `current`: the Deployment's replicas (None: no Deployment yet); `needed_at`: the
    last time `current` was wanted (None: not known since the operator started, taken as now:
    a restart never scales down early)."""
    if current is None or wanted >= current:
        return Scale(wanted, now, None)
    since = now if needed_at is None else needed_at
    left = since + delay - now
    if left <= 0:
        return Scale(wanted, now, None)
    return Scale(current, since, left)


def plan_replicas(
    steps: Iterable[Step],
    current: Mapping[str, int | None],
    needs: Mapping[str, Iterable[Need]],
    needed_at: Mapping[str, float],
    now: float,
) -> tuple[dict[str, int], dict[str, float], float | None]:
    """For the autoscaled `steps`: (replicas by step, when each last needed them, seconds until
    the next scale-down is due or None). `current`: each step's Deployment replicas (None or
    absent: no Deployment yet); `needed_at`: the previous answer's second element."""
    replicas: dict[str, int] = {}
    at: dict[str, float] = {}
    recheck: float | None = None
    for step in steps:
        if step.autoscaling is None:
            continue
        scale = next_replicas(
            wanted_replicas(step, needs.get(step.name, ())),
            current.get(step.name),
            needed_at.get(step.name),
            now,
            step.autoscaling.scale_down_delay_seconds,
        )
        replicas[step.name], at[step.name] = scale.replicas, scale.needed_at
        if scale.recheck_in is not None:
            recheck = scale.recheck_in if recheck is None else min(recheck, scale.recheck_in)
    return replicas, at, recheck


def with_replicas(spec: PipelineSpec, replicas: Mapping[str, int]) -> PipelineSpec:
    """`spec` with the autoscaled steps' `replicas` set to what they get now (what the app's
    Deployment and the Pipeline's status then say), the others as they are."""
    if not replicas:
        return spec
    steps = [
        s.model_copy(update={"replicas": replicas[s.name]}) if s.name in replicas else s for s in spec.steps
    ]
    return spec.model_copy(update={"steps": steps})
