"""Which app serves a step with `alternatives`: the choice by the Monitors' health and reliability.

Pure: the run loop hands `choose` the Monitors of the run's namespace (`MonitorView`, from the
kopf index in kinds/pipelinerun/handler.py) and launches each item-step Job on the app it
returns. The rule (docs/design.md, "Alternatives"):

- Candidates: the step's own app (named after the step), then its `alternatives`, in order.
- An app is known by its image, or by its url when it has no image (what a Monitor's activity
  entry and `status.target` name: kinds/monitor/planning.py). A Monitor covers a candidate when
  one of its `status.activities` names that app (a single-app Monitor's one activity, or a
  pipeline Monitor's step running that app); its reliability is the pooled `passed / tests` of
  every such entry. Only a single-app Monitor (`spec.target.app` that app) says the app's own
  health: a pipeline Monitor's health is the whole pipeline's, which another step may have caused.
- Rank: `Healthy` (covered, and no single-app Monitor of it Degraded or Failing), then not
  monitored (no report names it yet), then `Degraded`, then `Failing`; in a rank, higher
  reliability first; ties keep the declared order, so the choice is deterministic.
- When every candidate is Failing the first of them by that order still runs (the run does not
  stop on a monitor's word): the choice's reason `AllFailing` says so.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmif_operator.kinds.pipeline.app import App
from mmif_operator.kinds.pipeline.model import MAX_ALTERNATIVES, Step

MAX_CANDIDATES = MAX_ALTERNATIVES + 1  # the step's own app and its alternatives


class Rank(enum.IntEnum):
    HEALTHY = 0
    UNKNOWN = 1  # no Monitor covers it
    DEGRADED = 2
    FAILING = 3


# Why a choice was made (the run's `status.alternatives[].reason`).
R_HEALTHIEST = "Healthiest"  # a Healthy candidate, the most reliable
R_NOT_MONITORED = "NotMonitored"  # nothing monitored is Healthy; the first not monitored
R_DEGRADED = "Degraded"  # every candidate Degraded or Failing: the most reliable Degraded
R_ALL_FAILING = "AllFailing"  # every candidate Failing: it still runs
WARNING_REASONS = (R_DEGRADED, R_ALL_FAILING)

_REASONS = {
    Rank.HEALTHY: R_HEALTHIEST,
    Rank.UNKNOWN: R_NOT_MONITORED,
    Rank.DEGRADED: R_DEGRADED,
    Rank.FAILING: R_ALL_FAILING,
}


def app_id(app: App) -> str:
    """How Monitors name an app: its image, or its url."""
    return app.image or app.url or ""


@dataclass(frozen=True)
class MonitorView:
    """What the choice reads of one Monitor."""

    name: str
    app: str | None = None  # a single-app Monitor: the app it tests (image or url); None: a pipeline's
    health: str | None = None  # status.health
    activities: tuple[tuple[str, int, int], ...] = ()  # (app, tests, passed) of status.activities

    @classmethod
    def from_monitor(cls, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> MonitorView:
        target = (spec or {}).get("target") or {}
        app = target.get("app") if isinstance(target, Mapping) else None
        single = (app.get("image") or app.get("url")) if isinstance(app, Mapping) else None
        activities = []
        for a in (status or {}).get("activities") or ():
            if isinstance(a, Mapping) and a.get("app"):
                try:
                    activities.append((str(a["app"]), int(a.get("tests") or 0), int(a.get("passed") or 0)))
                except (TypeError, ValueError):
                    continue
        return cls(
            name=name,
            app=str(single) if single else None,
            health=(status or {}).get("health"),
            activities=tuple(activities),
        )


@dataclass(frozen=True)
class Candidate:
    """One app that may serve the step: the step's own (index 0, named after the step) or an
    alternative."""

    index: int
    name: str
    app: App

    @property
    def id(self) -> str:
        return app_id(self.app)


@dataclass(frozen=True)
class Assessment:
    candidate: Candidate
    rank: Rank
    reliability: float | None  # None: no report names it
    monitors: tuple[str, ...]  # the Monitors that cover it

    def key(self) -> tuple[int, float, int]:
        return (
            int(self.rank),
            -(self.reliability if self.reliability is not None else 0.0),
            self.candidate.index,
        )

    def describe(self) -> str:
        if not self.monitors:
            return f"{self.candidate.name} ({self.candidate.id}) not monitored"
        rel = f"reliability {self.reliability:.2f}" if self.reliability is not None else "no reliability yet"
        return (
            f"{self.candidate.name} ({self.candidate.id}) {self.rank.name.capitalize()}, {rel} "
            f"(monitors {', '.join(self.monitors)})"
        )


@dataclass(frozen=True)
class Choice:
    """The app the step's new items go to, and why."""

    candidate: Candidate
    reason: str
    message: str

    @property
    def warning(self) -> bool:
        return self.reason in WARNING_REASONS

    @property
    def event_reason(self) -> str:
        """The reason of the Event announcing a new choice."""
        return {R_DEGRADED: "AlternativesDegraded", R_ALL_FAILING: "AllAlternativesFailing"}.get(
            self.reason, "AlternativeChosen"
        )


def candidates(step: Step) -> list[Candidate]:
    """The step's own app, then its alternatives, in the declared order."""
    return [Candidate(0, step.name, step)] + [
        Candidate(i, alt.name, alt) for i, alt in enumerate(step.alternatives, start=1)
    ]


def assess(candidate: Candidate, monitors: Iterable[MonitorView]) -> Assessment:
    tests = passed = 0
    covering: list[str] = []
    healths: list[str] = []
    for m in monitors:
        covers = False
        for app, t, p in m.activities:
            if app == candidate.id and t > 0:
                tests, passed, covers = tests + t, passed + p, True
        if m.app == candidate.id and m.health not in (None, "Unknown"):
            healths.append(str(m.health))
            covers = True
        if covers:
            covering.append(m.name)
    reliability = passed / tests if tests else None
    if "Failing" in healths:
        rank = Rank.FAILING
    elif "Degraded" in healths:
        rank = Rank.DEGRADED
    elif covering:
        rank = Rank.HEALTHY
    else:
        rank = Rank.UNKNOWN
    return Assessment(candidate, rank, reliability, tuple(sorted(covering)))


def choose(step: Step, monitors: Sequence[MonitorView]) -> Choice:
    """The candidate the step's items launched now go to (see the module docstring)."""
    ranked = sorted((assess(c, monitors) for c in candidates(step)), key=Assessment.key)
    best = ranked[0]
    reason = _REASONS[best.rank]
    others = "; ".join(a.describe() for a in ranked[1:])
    if reason == R_ALL_FAILING:
        message = f"every app of step {step.name} is Failing; {best.describe()} still runs"
    else:
        message = f"step {step.name}: {best.describe()}"
    if others:
        message += f"; then {others}"
    return Choice(best.candidate, reason, message)


def served_step(step: Step, candidate: Candidate) -> Step:
    """The step as the chosen candidate runs it: the candidate's app under the step's name (its
    output files and Job names stay the step's)."""
    if candidate.index == 0:
        return step
    fields = {f: getattr(candidate.app, f) for f in App.model_fields}
    return Step.model_construct(**fields, name=step.name, alternatives=[])


def served_by(candidate: Candidate) -> dict[str, str]:
    """What the step's result record and the manifest say served the item."""
    out = {"name": candidate.name}
    if candidate.app.image:
        out["image"] = candidate.app.image
    if candidate.app.url:
        out["url"] = candidate.app.url
    return out
