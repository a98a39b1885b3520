"""Render every state-machine template as Markdown (`make docs`).

python -m mmif_operator.kinds.pipelinerun.phases_doc > docs/state-machines.md
"""

from __future__ import annotations

from mmif_operator.kinds.pipelinerun.phases import TEMPLATES, Template, Transition

START = "[*]"


def _value(x: object) -> str:
    return str(getattr(x, "value", x))


def _states(template: Template) -> list[str]:
    lines = [
        "| state (`status.stage`) | `status.phase` | planned by | what happens |",
        "| --- | --- | --- | --- |",
    ]
    for s in template.states:
        lines.append(f"| {_value(s.name)} | {_value(s.phase)} | `{s.plans}` | {s.description} |")
    return lines


def notation(t: Transition) -> str:
    """One row as `[From] - <event> {Action} ... -> [To]`."""
    actions = "".join(f" {a}" for a in t.actions)
    return f"[{_value(t.source) if t.source else 'Start'}] - <{t.event}>{actions} -> [{_value(t.target)}]"


def _notation(template: Template) -> list[str]:
    return ["```", *(notation(t) for t in template.transitions), "```"]


def _table(template: Template) -> list[str]:
    lines = [
        "| from | event | to | `Succeeded` | reason | actions | ends the run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in template.transitions:
        source = _value(t.source) if t.source else "(created)"
        terminal = "yes" if t.terminal else ""
        actions = " ".join(f"`{a}`" for a in t.actions)
        lines.append(
            f"| {source} | `{t.event}` | {_value(t.target)} | {t.status} | `{t.reason}` | {actions} | {terminal} |"
        )
    return lines


def _mermaid(template: Template) -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"]
    for t in template.transitions:
        lines.append(f"    {_value(t.source) if t.source else START} --> {_value(t.target)}: {t.event}")
    for state in template.state_names:
        if state in template.terminal_states:
            lines.append(f"    {_value(state)} --> {START}")
    return [*lines, "```"]


def render() -> str:
    """The whole `docs/state-machines.md`."""
    lines = [
        "# State machines",
        "",
        "<!-- Generated from operator/mmif_operator/kinds/pipelinerun/phases.py: do not edit. -->",
        "<!-- Regenerate with `make docs` (python -m mmif_operator.kinds.pipelinerun.phases_doc). -->",
        "",
        "Each PipelineRun follows a template: `run-with-review` when its Pipeline (as the run's "
        "snapshot `status.pipelineSpec` holds it) has `review.required: true`, else "
        "`run-workflow`. The run's state is `status.stage`; each state shows a `status.phase` and "
        "is planned by one stage function of the planner (kinds/pipelinerun/planning.py, `STAGES`). The run "
        "moves only along these rows; each row sets the run's `Succeeded` condition to the status "
        "and reason shown and does its actions: `{Announce}` posts a Kubernetes Event on the run "
        "(type Normal unless said, reason the row's unless said), `{SendNotification <event>}` "
        "asks for a notification to the Pipeline's targets that want that event.",
    ]
    for template in TEMPLATES.values():
        ends = ", ".join(_value(s) for s in template.state_names if s in template.terminal_states)
        lines += [
            "",
            f"## {template.name}",
            "",
            template.description,
            "",
            f"States: {', '.join(_value(s) for s in template.state_names)}. The run ends in {ends}.",
            "",
            *_states(template),
            "",
            *_notation(template),
            "",
            *_table(template),
            "",
        ]
        lines += _mermaid(template)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
