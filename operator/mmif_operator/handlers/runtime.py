"""Process-wide state of the handlers: the configuration, the Kubernetes client, the wakers.

Only caches and plumbing live here; nothing that a restart would need to recover.
"""

from __future__ import annotations

from ..builders import labels as L
from ..k8s import Kube
from ..settings import Config, get_config
from .wakeups import Wakers

RUN_WAKERS = Wakers()
PIPELINE_WAKERS = Wakers()
ANALYSIS_WAKERS = Wakers()  # tagged run=(namespace, source run name)
NOTIFY_WAKERS = Wakers()  # the runs' delivery loops (handlers/notifications.py)

_kube: Kube | None = None


def kube() -> Kube:
    if _kube is None:
        raise RuntimeError("the Kubernetes client is not set up (the startup handler did not run)")
    return _kube


def set_kube(value: Kube | None) -> None:
    global _kube
    _kube = value


def config() -> Config:
    return get_config()


def run_key(namespace: str, run_name: str) -> tuple[str, str]:
    """The key of a run in the Job index and the wakers: its namespace and `mmif.dev/run` label."""
    return (namespace, L.label_value(run_name))


def pipeline_key(namespace: str, pipeline_name: str) -> tuple[str, str]:
    """The key of a pipeline: its namespace and `mmif.dev/pipeline` label value."""
    return (namespace, L.label_value(pipeline_name))
