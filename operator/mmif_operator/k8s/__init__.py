"""Async helpers around kubernetes_asyncio (client setup, create/delete/patch, events)."""

from .ops import Kube, KubeError

__all__ = ["Kube", "KubeError"]
