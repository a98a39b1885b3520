"""Render every state-machine template as Markdown (`make docs`).

python -m mmif_operator.statemachine.docs > docs/state-machines.md
"""

from __future__ import annotations

from .table import TEMPLATES, Template

START = "[*]"


def _table(template: Template) -> list[str]:
    lines = [
        "| from | event | to | `Succeeded` | reason | ends the run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in template.transitions:
        source = t.source or "(created)"
        terminal = "yes" if t.terminal else ""
        lines.append(f"| {source} | `{t.event}` | {t.target} | {t.status} | `{t.reason}` | {terminal} |")
    return lines


def _mermaid(template: Template) -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"]
    for t in template.transitions:
        lines.append(f"    {t.source or START} --> {t.target}: {t.event}")
    for state in template.states:
        if state in template.terminal_states:
            lines.append(f"    {state} --> {START}")
    return [*lines, "```"]


def render() -> str:
    """The whole `docs/state-machines.md`."""
    lines = [
        "# State machines",
        "",
        "<!-- Generated from operator/mmif_operator/statemachine/table.py: do not edit. -->",
        "<!-- Regenerate with `make docs` (python -m mmif_operator.statemachine.docs). -->",
        "",
        "Each PipelineRun follows a template: its `status.phase` moves only along these rows, and "
        "each row sets the run's `Succeeded` condition to the status and reason shown.",
    ]
    for template in TEMPLATES.values():
        ends = ", ".join(s for s in template.states if s in template.terminal_states)
        lines += [
            "",
            f"## {template.name}",
            "",
            template.description,
            "",
            f"States: {', '.join(template.states)}. The run ends in {ends}.",
            "",
            *_table(template),
            "",
        ]
        lines += _mermaid(template)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
