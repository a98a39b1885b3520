"""Importing `mmif_operator.handlers` (what `mmif-operator` does) registers every handler with kopf:
the startup that configures the webhook server, each kind's daemon, the admission webhooks."""

from __future__ import annotations

from kopf._core.intents import registries

from mmif_operator import handlers  # noqa: F401


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
        "monitor-loop",
        "notify-monitor",
    }
    assert _ids(registry._webhooks) == {
        "requester-pipelineruns",
        "requester-analysisjobs",
        "review-pipelineruns",
        "urls-pipelines",
        "urls-analysisjobs",
        "urls-monitors",
    }
