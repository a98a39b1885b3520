"""Async helpers around kubernetes_asyncio (client setup, create/delete/patch, events)."""

from mmif_operator.core.kube.ops import Kube, KubeError

__all__ = ["Kube", "KubeError"]
