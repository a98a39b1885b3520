"""`monitors` and `monitor NAME [--reports N]`: the namespace's Monitors with their health and
reliability, and one Monitor's latest HealthReports with what failed (read from the API with your
own identity: `get`/`list` on monitors and healthreports). `render_*` are pure."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mmif_operator.cli.errors import Exit
from mmif_operator.cli.kube import Kube


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.0f}%"


def render_monitors(monitors: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(monitors)} monitor(s)")
    for column in ("name", "target", "interval", "health", "reliability", "last report", "next test"):
        table.add_column(column)
    for m in monitors:
        status = m.get("status") or {}
        last = status.get("lastReport") or {}
        table.add_row(
            m["metadata"]["name"],
            status.get("target") or "-",
            (m.get("spec") or {}).get("interval") or "-",
            status.get("health") or "Unknown",
            _pct(status.get("reliability")),
            f"{last.get('id', '-')} {last.get('result', '')}".strip(),
            status.get("nextTestTime") or "-",
        )
    return table


def render_monitor(monitor: dict[str, Any], reports: list[dict[str, Any]]) -> Group:
    status = monitor.get("status") or {}
    head = Text(
        f"monitor {monitor['metadata']['name']}: {status.get('health') or 'Unknown'}, reliability "
        f"{_pct(status.get('reliability'))}, {status.get('reportsKept', 0)} report(s) kept",
        style="bold",
    )
    activities = Table(title="reliability per activity")
    for column in ("step", "app", "passed / tests", "reliability"):
        activities.add_column(column)
    for a in status.get("activities") or ():
        activities.add_row(
            a["step"], a.get("app") or "-", f"{a['passed']}/{a['tests']}", _pct(a["reliability"])
        )
    table = Table(title="latest reports, newest first")
    for column in ("id", "result", "duration s", "summary", "what failed"):
        table.add_column(column)
    for r in reports:
        spec = r.get("spec") or {}
        failed = "; ".join(
            f"{f.get('step')}: {f.get('reason')}: {f.get('message') or ''}".strip()
            for f in spec.get("failedActivities") or ()
        )
        table.add_row(
            spec.get("id", "-"),
            spec.get("result", "-"),
            f"{float(spec.get('durationSeconds', 0)):.1f}",
            spec.get("summary", ""),
            failed or "-",
        )
    return Group(head, activities, table)


def _newest(reports: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    reports = sorted(reports, key=lambda r: (r.get("spec") or {}).get("id", ""), reverse=True)
    return reports[:count]


async def cmd_monitors(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    monitors = sorted(await kube.list_monitors(), key=lambda m: m["metadata"]["name"])
    if args.output == "json":
        ui.out(
            json.dumps(
                [{"name": m["metadata"]["name"], **(m.get("status") or {})} for m in monitors], indent=2
            )
        )
    else:
        ui.console.print(render_monitors(monitors))
    return Exit.OK


async def cmd_monitor(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    monitor = await kube.get_monitor(args.name)
    reports = _newest(await kube.list_reports(args.name), args.reports)
    if args.output == "json":
        ui.out(
            json.dumps(
                {"status": monitor.get("status") or {}, "reports": [r.get("spec") or {} for r in reports]},
                indent=2,
            )
        )
    else:
        ui.console.print(render_monitor(monitor, reports))
    return Exit.OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("monitors", parents=[common], help="the namespace's monitors: health and reliability")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_monitors)
    m = sub.add_parser(
        "monitor", parents=[common], help="one monitor: reliability per activity, latest reports"
    )
    m.add_argument("name")
    m.add_argument("--reports", type=int, default=10, help="how many of the latest reports (default 10)")
    m.add_argument("-o", "--output", choices=["text", "json"], default="text")
    m.set_defaults(func=cmd_monitor)
