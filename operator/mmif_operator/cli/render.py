"""A run as the plugin shows it, computed from the object alone (pure): a `Frame` (per-step and
overall progress, phase, outcome), its plain lines (one per bar, what a non-terminal gets), and
rich renderables (the counts and failures tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.progress_bar import ProgressBar
from rich.table import Table

from mmif_operator.kinds.pipelinerun.model import Failure, PipelineRunStatus, RunPhase

TERMINAL = (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED)


@dataclass(frozen=True)
class StepBar:
    name: str
    total: int | None
    succeeded: int
    failed: int
    running: int
    pending: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def line(self) -> str:
        return (
            f"step {self.name} {self.done}/{_total(self.total)} succeeded={self.succeeded} "
            f"failed={self.failed} running={self.running} pending={self.pending}"
        )


@dataclass(frozen=True)
class Frame:
    """What one version of a run shows."""

    name: str
    namespace: str
    phase: str
    stage: str
    total: int | None
    succeeded: int
    failed: int
    cancelled: int
    steps: tuple[StepBar, ...]
    reason: str
    message: str
    failures: tuple[Failure, ...]
    output_path: str | None
    manifest_path: str | None

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def ended(self) -> bool:
        return self.phase in TERMINAL

    @property
    def awaiting_review(self) -> bool:
        return self.phase == RunPhase.AWAITING_REVIEW

    def overall_line(self) -> str:
        return (
            f"run {self.name} {self.done}/{_total(self.total)} phase={self.phase} stage={self.stage} "
            f"succeeded={self.succeeded} failed={self.failed} cancelled={self.cancelled}"
        )

    def lines(self) -> list[str]:
        """The plain frame: one line per step bar, then the overall one."""
        return [s.line() for s in self.steps] + [self.overall_line()]

    def outcome(self) -> str:
        """One sentence: how the run ended (or where it is), with the condition's reason and message."""
        head = f"pipelinerun {self.name}: {self.phase}"
        if self.reason and self.reason != self.phase:
            head += f" ({self.reason})"
        if self.total is not None:
            head += f", {self.succeeded}/{self.total} items succeeded"
            if self.failed:
                head += f", {self.failed} failed"
            if self.cancelled:
                head += f", {self.cancelled} cancelled"
        return head + (f": {self.message}" if self.message else "")


def _total(total: int | None) -> str:
    return "?" if total is None else str(total)


def frame(run: dict[str, Any]) -> Frame:
    """The frame of a PipelineRun object (its status parsed with the model)."""
    meta = run.get("metadata") or {}
    raw = dict(run.get("status") or {})
    raw.pop("pipelineSpec", None)  # the Pipeline's spec as the operator snapshot it: not shown here
    status = PipelineRunStatus.from_obj(raw)
    cond = next((c for c in status.conditions if c.type == "Succeeded"), None)
    total = status.item_count
    steps = tuple(StepBar(s.name, total, s.succeeded, s.failed, s.running, s.pending) for s in status.steps)
    return Frame(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=str(status.phase or RunPhase.PENDING),
        stage=str(status.stage or status.phase or RunPhase.PENDING),
        total=total,
        succeeded=status.items_succeeded,
        failed=status.items_failed,
        cancelled=status.items_cancelled,
        steps=steps,
        reason=(cond.reason or "") if cond else "",
        message=(cond.message or "") if cond else "",
        failures=tuple(status.failures),
        output_path=status.output_path,
        manifest_path=status.manifest_path,
    )


def changed_lines(previous: Frame | None, current: Frame) -> list[str]:
    """The plain lines of `current` that differ from `previous` (all of them at first)."""
    before = set(previous.lines()) if previous is not None else set()
    return [line for line in current.lines() if line not in before]


def _bar(done: int, total: int | None) -> ProgressBar:
    return ProgressBar(total=float(total or 1), completed=float(done if total else 0), width=30)


def counts_table(f: Frame, bars: bool = True) -> Table:
    """Per step (and the whole run): a bar, done/total and the counts."""
    table = Table(title=f"pipelinerun {f.name} ({f.namespace}): {f.phase}", title_justify="left")
    table.add_column("step")
    if bars:
        table.add_column("progress")
    for col in ("done", "succeeded", "failed", "running", "pending"):
        table.add_column(col, justify="right")
    for s in f.steps:
        row = [s.name]
        if bars:
            row.append(_bar(s.done, s.total))  # type: ignore[arg-type]
        row += [
            f"{s.done}/{_total(s.total)}",
            str(s.succeeded),
            str(s.failed),
            str(s.running),
            str(s.pending),
        ]
        table.add_row(*row)
    row = ["(run)"]
    if bars:
        row.append(_bar(f.done, f.total))  # type: ignore[arg-type]
    running = sum(s.running for s in f.steps)
    pending = max((f.total or 0) - f.done - running, 0)
    row += [f"{f.done}/{_total(f.total)}", str(f.succeeded), str(f.failed), str(running), str(pending)]
    table.add_row(*row)
    return table


def failures_table(f: Frame) -> Table | None:
    """The latest failures (at most the status's 20): item, step, reason, message."""
    if not f.failures:
        return None
    table = Table(title="latest failures", title_justify="left")
    for col in ("item", "step", "reason", "message", "time"):
        table.add_column(col, overflow="fold")
    for x in f.failures:
        item = f"{x.index}" + (f" ({x.item})" if x.item else "")
        table.add_row(item, x.step, x.reason, x.message, x.time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return table
