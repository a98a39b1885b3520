"""A person's Kubernetes client: the API server's address and CA from the console's own
configuration, and the person's bearer token as the only credential.

Nothing of the console's ServiceAccount (its token, a kubeconfig's client certificate) goes into
a person's client: a call made with it is authenticated and authorised as that person alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from kubernetes_asyncio import client

from mmif_operator.console import auth
from mmif_operator.core.kube.client import load_configuration
from mmif_operator.core.kube.ops import Kube

USER_AGENT = "mmif-console"
REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True)
class Cluster:
    """Where the API server is and how to trust it; no credentials."""

    host: str
    ssl_ca_cert: str | None
    verify_ssl: bool

    @classmethod
    async def load(cls) -> Cluster:
        cfg = await load_configuration()  # in-cluster, else $KUBECONFIG
        if not cfg.host:
            raise RuntimeError("no Kubernetes API server address (in-cluster or $KUBECONFIG)")
        return cls(host=cfg.host, ssl_ca_cert=cfg.ssl_ca_cert, verify_ssl=cfg.verify_ssl)

    def configuration(self, token: str) -> client.Configuration:
        cfg = client.Configuration(host=self.host)
        cfg.ssl_ca_cert = self.ssl_ca_cert
        cfg.verify_ssl = self.verify_ssl
        cfg.api_key = {"BearerToken": token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        return cfg


def token_of(request: web.Request) -> str | None:
    return auth.token_from(request.headers, request.cookies)


@asynccontextmanager
async def as_person(cluster: Cluster, token: str) -> AsyncIterator[Kube]:
    """A client that calls the API server as the holder of `token`, closed afterwards."""
    api = client.ApiClient(cluster.configuration(token))
    api.user_agent = USER_AGENT
    kube = Kube(api, timeout=REQUEST_TIMEOUT)
    try:
        yield kube
    finally:
        await kube.close()
