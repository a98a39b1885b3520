"""Following a run live: a watch of the run (not polling) feeds a renderer, rich progress bars on
a terminal, one plain line per changed bar otherwise (so a script or a test can read every
update), until a condition on the run's frame holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import IO, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mmif_operator.cli import render
from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube
from mmif_operator.cli.render import Frame

OVERALL = "(run)"


class Renderer(Protocol):
    def update(self, frame: Frame) -> None: ...
    def close(self) -> None: ...


class PlainRenderer:
    """One line per bar that changed, flushed at once."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.previous: Frame | None = None

    def update(self, frame: Frame) -> None:
        for line in render.changed_lines(self.previous, frame):
            self.out.write(line + "\n")
        self.out.flush()
        self.previous = frame

    def close(self) -> None:
        pass


class BarsRenderer:
    """rich progress bars: one per step and one for the whole run."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(bar_width=40),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def _set(self, key: str, label: str, done: int, total: int | None, detail: str) -> None:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=total, detail=detail)
        self.progress.update(self.tasks[key], completed=done, total=total, detail=detail, description=label)

    def update(self, frame: Frame) -> None:
        for s in frame.steps:
            detail = f"failed {s.failed}  running {s.running}"
            self._set(s.name, s.name, s.done, s.total, detail)
        detail = f"{frame.phase} ({frame.stage})  failed {frame.failed}  cancelled {frame.cancelled}"
        self._set(OVERALL, f"{frame.name}", frame.done, frame.total, detail)

    def close(self) -> None:
        self.progress.stop()


def renderer_for(console: Console, out: IO[str]) -> Renderer:
    return BarsRenderer(console) if console.is_terminal else PlainRenderer(out)


def until_ended(f: Frame) -> bool:
    """What `watch` and `run --watch` wait for: the run ended, or it waits for a person."""
    return f.ended or f.awaiting_review


async def follow(
    kube: Kube, name: str, renderer: Renderer, done: Callable[[Frame], bool], timeout: float | None
) -> Frame:
    """Feed `renderer` every version of the run until `done(frame)`; CliError(TIMEOUT) past
    `timeout` seconds."""
    last: Frame | None = None
    try:
        async with asyncio.timeout(timeout):
            async for run in kube.watch_run(name):
                last = render.frame(run)
                renderer.update(last)
                if done(last):
                    return last
    except TimeoutError:
        where = f" (it is {last.phase}, {last.done}/{last.total or '?'} items done)" if last else ""
        raise CliError(
            f"pipelinerun {name}: still not there after {timeout:g} s{where}", Exit.TIMEOUT
        ) from None
    finally:
        renderer.close()
    raise CliError(f"pipelinerun {name}: the watch ended")  # watch_run never ends on its own


def exit_code(f: Frame) -> Exit:
    """run --watch / watch: 0 only for a run that Succeeded."""
    if f.phase == "Succeeded":
        return Exit.OK
    if f.awaiting_review:
        return Exit.AWAITING_REVIEW
    return Exit.RUN_FAILED


def print_summary(console: Console, f: Frame) -> None:
    """The final frame: counts per step, the latest failures, the outcome in one sentence."""
    console.print(render.counts_table(f, bars=console.is_terminal))
    failures = render.failures_table(f)
    if failures is not None:
        console.print(failures)
    if f.awaiting_review:
        console.print(
            f"{f.outcome()}\n(pass or fail it: kubectl mmif review pass|fail {f.name} --comment ...)"
        )
    else:
        console.print(f.outcome(), highlight=False)
