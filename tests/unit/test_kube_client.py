"""Our API client reaches the API server directly, as kopf does: no proxy or netrc look-ups."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client

from mmif_operator.core.kube.client import without_environment_lookups


def test_the_api_clients_session_does_not_trust_the_environment():
    async def session_trusts_env() -> tuple[bool, bool]:
        cfg = client.Configuration(host="https://127.0.0.1:6443")
        api = client.ApiClient(cfg)
        before = api.rest_client.pool_manager.trust_env  # kubernetes_asyncio's own choice
        without_environment_lookups(api)
        after = api.rest_client.pool_manager.trust_env
        await api.close()
        return before, after

    assert asyncio.run(session_trusts_env()) == (True, False)
