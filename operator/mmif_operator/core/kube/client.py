"""The kubernetes_asyncio client: in-cluster (service account) or from $KUBECONFIG.

kopf logs in on its own (it tries kubernetes_asyncio's loaders too); this client is ours, for the
handlers' reads and writes, with its own Configuration object (the library's default is left
alone).

Like kopf's own sessions (`settings.networking.trust_env`, False by default), ours ignores the
proxy variables and ~/.netrc: kubernetes_asyncio builds its aiohttp session with
`trust_env=True`, and aiohttp then looks both up in a worker thread on every request (two
executor round trips per create, delete or patch: about an eighth of the operator's CPU in the
1,000-item benchmark, under py-spy). The API server is reached directly, as kopf reaches it.
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
    without_environment_lookups(api)
    return api


def without_environment_lookups(api: client.ApiClient) -> None:
    """The session of `api` stops trusting the environment (see the module docstring). aiohttp
    takes `trust_env` only at construction, and kubernetes_asyncio gives no way to pass it."""
    session = api.rest_client.pool_manager
    session._trust_env = False
