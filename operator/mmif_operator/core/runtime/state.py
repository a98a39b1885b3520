"""Process-wide state of the handlers: the configuration, the Kubernetes client, the wakers.

Only caches and plumbing live here; nothing that a restart would need to recover.
"""

from __future__ import annotations

from mmif_operator.core import labels as L
from mmif_operator.core.kube import Kube
from mmif_operator.core.runtime.backlog import Backlogs
from mmif_operator.core.runtime.wakeups import Wakers
from mmif_operator.settings import Config, get_config

RUN_WAKERS = Wakers()
PIPELINE_WAKERS = Wakers()
ANALYSIS_WAKERS = Wakers()  # tagged run=(namespace, source run name)
NOTIFY_WAKERS = Wakers()  # the runs' delivery loops (notifications/handler.py)
BACKLOGS = Backlogs()  # what the runs need of autoscaled steps (kinds/pipeline/scaling.py)
# The run uids whose app pools (kinds/pipelinerun/pools.py) this process made (-> when it last
# checked them, monotonic), or removed once after the run left them.
POOLS_MADE: dict[str, float] = {}
POOLS_REMOVED: set[str] = set()
# Per run uid: step -> when its Deployment's or pool's pods were last listed for the app's image
# (kinds/pipelinerun/images.py, `due`).
IMAGE_LISTS: dict[str, dict[str, float]] = {}


def forget_run(uid: str) -> None:
    """Drop what this process kept about run `uid`, when its loop ends (a later loop, after a
    restart or a change of spec, starts again from the status: a pool is read before it is
    made or removed)."""
    POOLS_MADE.pop(uid, None)
    POOLS_REMOVED.discard(uid)
    IMAGE_LISTS.pop(uid, None)


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
