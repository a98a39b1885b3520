"""The kubernetes_asyncio client: in-cluster (service account) or from $KUBECONFIG.

kopf logs in on its own (it tries kubernetes_asyncio's loaders too); this client is ours, for the
handlers' reads and writes, with its own Configuration object (the library's default is left
alone).
"""

from __future__ import annotations

import logging

from kubernetes_asyncio import client, config

log = logging.getLogger(__name__)
USER_AGENT = "mmif-operator"


async def load_configuration() -> client.Configuration:
    """In-cluster config when running in a pod, else $KUBECONFIG / ~/.kube/config."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
        log.debug("kubernetes client: in-cluster configuration")
    except config.ConfigException:
        await config.load_kube_config(client_configuration=cfg)
        log.debug("kubernetes client: kubeconfig %s", cfg.host)
    return cfg


async def make_api_client(connection_pool: int = 64) -> client.ApiClient:
    cfg = await load_configuration()
    cfg.connection_pool_maxsize = connection_pool
    api = client.ApiClient(cfg)
    api.user_agent = USER_AGENT
    return api
