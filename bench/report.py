"""The benchmark's printed table and the targets of issue 5, from plain figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .profile import Profile


@dataclass(frozen=True)
class Row:
    items: int
    mode: str  # "baseline" | "operator"
    wall: float  # seconds: first create -> last step seen finished (baseline),
    # run created -> run seen Succeeded (operator)
    steps_wall: float | None  # first step Job seen created -> last step Job seen finished
    item_steps: int
    delays: tuple[float | None, float | None, float | None]  # step-transition p50, p95, p99 (s)
    reads: float | None = None  # API requests of the operator (or the baseline client)
    writes: float | None = None
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    object_bytes: int | None = None
    outcome: str = ""
    profile: Profile | None = None  # every client's API requests during the scenario (profile.py)
    ratio: float | None = None  # wall / baseline wall, same N
    steps_ratio: float | None = None

    @property
    def items_per_second(self) -> float:
        return self.items / self.wall if self.wall > 0 else 0.0

    def per_item_step(self, value: float | None) -> float | None:
        return None if value is None or not self.item_steps else value / self.item_steps


def with_ratios(rows: Iterable[Row]) -> list[Row]:
    """Fill `ratio` and `steps_ratio` of each operator row from the baseline row of the same N."""
    rows = list(rows)
    base = {r.items: r for r in rows if r.mode == "baseline"}
    out = []
    for r in rows:
        b = base.get(r.items)
        if r.mode == "operator" and b is not None:
            steps_ratio = (r.steps_wall / b.steps_wall) if r.steps_wall and b.steps_wall else None
            r = Row(
                **{**r.__dict__, "ratio": r.wall / b.wall if b.wall else None, "steps_ratio": steps_ratio}
            )
        out.append(r)
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    "items",
    "mode",
    "wall s",
    "ratio",
    "steps wall s",
    "steps ratio",
    "items/s",
    "transition p50/p95/p99 s",
    "reads/item-step",
    "writes/item-step",
    "CPU s",
    "peak RSS MiB",
    "run object B",
    "outcome",
)


def table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as is in a terminal)."""
    lines = [COLUMNS]
    for r in rows:
        lines.append(
            (
                str(r.items),
                r.mode,
                _f(r.wall, 1),
                _f(r.ratio),
                _f(r.steps_wall, 1),
                _f(r.steps_ratio),
                _f(r.items_per_second, 1),
                "/".join(_f(d, 3) for d in r.delays),
                _f(r.per_item_step(r.reads)),
                _f(r.per_item_step(r.writes)),
                _f(r.cpu_seconds, 1),
                _f(r.peak_rss_mib, 0),
                "–" if r.object_bytes is None else str(r.object_bytes),
                r.outcome,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join(
        [
            fmt(lines[0]),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(fmt(line) for line in lines[1:]),
        ]
    )


@dataclass(frozen=True)
class KillFigures:
    in_flight: int
    runs: int
    new_process_after: float
    progress_all: float | None
    duplicated: int
    lost: int
    outcome: str


def kill_summary(k: KillFigures) -> str:
    return (
        f"SIGKILL with {k.in_flight} items in flight ({k.runs} runs): new operator process after "
        f"{k.new_process_after:.1f} s; every run progressing again after {_f(k.progress_all, 1)} s; "
        f"duplicated item-steps {k.duplicated}; lost items {k.lost}; runs {k.outcome}"
    )


def targets(rows: Sequence[Row], kill: KillFigures | None) -> list[str]:
    """Each target of issue 5 with the measured figure: `met`, `MISSED` or `not measured`."""
    ops = {r.items: r for r in rows if r.mode == "operator"}
    out: list[str] = []

    def line(name: str, value: str, ok: bool | None) -> None:
        verdict = "not measured" if ok is None else ("met" if ok else "MISSED")
        out.append(f"{verdict:>12}  {name}: {value}")

    r1k, r10k = ops.get(1000), ops.get(10000)
    line(
        "wall time <= 1.25x baseline at 1,000 items",
        _f(r1k.ratio if r1k else None),
        None if not r1k or r1k.ratio is None else r1k.ratio <= 1.25,
    )
    grows = None
    if r1k and r10k and r1k.ratio and r10k.ratio:
        grows = r10k.ratio > r1k.ratio * 1.05  # 5% noise allowed
    line(
        "ratio not growing from 1,000 to 10,000 items",
        f"{_f(r1k.ratio if r1k else None)} -> {_f(r10k.ratio if r10k else None)}",
        None if grows is None else not grows,
    )
    line(
        "step-transition p99 <= 1 s at 1,000 items",
        f"{_f(r1k.delays[2] if r1k else None, 3)} s",
        None if not r1k or r1k.delays[2] is None else r1k.delays[2] <= 1.0,
    )
    worst = max((r.per_item_step(r.writes) for r in ops.values() if r.writes is not None), default=None)
    line("<= 3 API writes per item-step (worst N)", _f(worst), None if worst is None else worst <= 3)
    line(
        "peak RSS <= 200 MB at 10,000 items",
        f"{_f(r10k.peak_rss_mib if r10k else None, 0)} MiB",
        None if not r10k or r10k.peak_rss_mib is None else r10k.peak_rss_mib * 1.048576 <= 200,
    )
    line(
        "run object <= 64 KiB at 10,000 items",
        f"{r10k.object_bytes if r10k else '–'} B",
        None if not r10k or r10k.object_bytes is None else r10k.object_bytes <= 64 * 1024,
    )
    if kill is None:
        line("after SIGKILL: progressing within 30 s, 0 duplicated, 0 lost", "–", None)
    else:
        ok = (
            kill.progress_all is not None
            and kill.progress_all <= 30
            and not kill.duplicated
            and not kill.lost
        )
        line(
            "after SIGKILL: progressing within 30 s, 0 duplicated, 0 lost",
            f"{_f(kill.progress_all, 1)} s, {kill.duplicated} duplicated, {kill.lost} lost",
            ok,
        )
    return out
