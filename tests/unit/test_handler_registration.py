"""Importing `mmif_operator.handlers` (what `mmif-operator` does) registers every handler with kopf:
the startup that configures the webhook server, each kind's daemon, the admission webhooks."""

from __future__ import annotations

from kopf._core.intents import registries

from mmif_operator import handlers  # noqa: F401
from mmif_operator.kinds.pipelinerun.handler import MONITORS_INDEX
from mmif_operator.kinds.project.planning import CLOSURE_INDEX, PROJECTS_INDEX, RUN_RECORDS_INDEX


def _ids(kind_registry) -> set[str]:
    return {h.id for h in kind_registry.get_all_handlers()}


def test_every_handler_is_registered():
    registry = registries.get_default_registry()
    assert {"startup", "cleanup"} <= _ids(registry._activities)
    assert _ids(registry._spawning) == {
        "pipeline-loop",
        "run-loop",
        "analysis-loop",
        "notify",
        "project-resync",
        "project-disposal",
        "project-closing",
        "run-wip",
        "monitor-loop",
        "notify-monitor",
        "notify-project",
    }
    assert {"project-changed"} <= _ids(registry._changing)
    # The run loop, the closure webhook and the project's handlers read them by name.
    assert _ids(registry._indexing) >= {
        PROJECTS_INDEX,
        MONITORS_INDEX,
        CLOSURE_INDEX,
        RUN_RECORDS_INDEX,
    }
    assert _ids(registry._webhooks) == {
        "requester-pipelineruns",
        "requester-analysisjobs",
        "review-pipelineruns",
        "urls-pipelines",
        "urls-analysisjobs",
        "project-pipelineruns",
        "project-analysisjobs",
        "urls-monitors",
        "urls-projects",
        "project-closure",
    }
