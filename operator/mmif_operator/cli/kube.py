"""The plugin's Kubernetes access: the user's own kubeconfig (KUBECONFIG, `--kubeconfig`,
`--context`), the context's namespace unless `-n` names one, impersonation (`--as`,
`--as-group`) like kubectl's, and the few calls the commands make (kubernetes_asyncio)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from mmif_operator.cli.errors import CliError
from mmif_operator.core.model import GROUP, VERSION
from mmif_operator.kinds.pipeline.model import PLURAL as PIPELINES
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUNS

MERGE_PATCH = "application/merge-patch+json"
_MERGE: dict[str, Any] = {"_content_type": MERGE_PATCH}  # a dict body would go as a JSON Patch
WATCH_SECONDS = 240  # one watch request; it is renewed from the last resourceVersion


@dataclass(frozen=True)
class Target:
    """Where and as whom: the global options."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    as_user: str | None = None
    as_group: str | None = None


def context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the context in use (kubectl's default), else `default`."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace") or "default"


def api_message(e: ApiException) -> str:
    """The API server's own words (`message` of its Status), else the HTTP reason."""
    try:
        body = json.loads(e.body or "")
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except (TypeError, ValueError):
        pass
    return f"{e.status} {e.reason}"


class Kube:
    """An API client for one namespace; use as `async with Kube.connect(target) as kube`."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    @classmethod
    async def connect(cls, target: Target) -> Kube:
        cfg = client.Configuration()
        kubeconfig = target.kubeconfig or None
        try:
            await config.load_kube_config(
                config_file=kubeconfig, context=target.context, client_configuration=cfg, persist_config=False
            )
        except (config.ConfigException, OSError) as e:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise CliError(f"cannot load the kubeconfig {where}: {e}") from None
        api = client.ApiClient(configuration=cfg)
        if target.as_user:
            api.set_default_header("Impersonate-User", target.as_user)
        if target.as_group:
            api.set_default_header("Impersonate-Group", target.as_group)
        return cls(api, target.namespace or context_namespace(kubeconfig, target.context))

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.close()

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except ApiException as e:
            raise CliError(f"{what}: {api_message(e)}") from None

    # -- runs and pipelines ----------------------------------------------------------------------
    async def get_run(self, name: str) -> dict[str, Any]:
        return await self._call(
            f"pipelinerun {name}",
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, RUNS, name),
        )

    async def get_pipeline(self, name: str) -> dict[str, Any]:
        return await self._call(
            f"pipeline {name}",
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PIPELINES, name),
        )

    # -- monitors --------------------------------------------------------------------------------
    async def list_monitors(self) -> list[dict[str, Any]]:
        got = await self._call(
            "monitors", self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "monitors")
        )
        return list(got.get("items") or [])

    async def get_monitor(self, name: str) -> dict[str, Any]:
        return await self._call(
            f"monitor {name}",
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "monitors", name),
        )

    async def list_reports(self, monitor: str) -> list[dict[str, Any]]:
        got = await self._call(
            f"healthreports of monitor {monitor}",
            self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "healthreports", label_selector=f"mmif.dev/monitor={monitor}"
            ),
        )
        return list(got.get("items") or [])

    async def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "creating the PipelineRun",
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, RUNS, body),
        )

    async def patch_run(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            f"pipelinerun {name}",
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, RUNS, name, patch, **_MERGE
            ),
        )

    async def watch_run(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """The run now, then every version of it (a watch renewed from its resourceVersion; read
        again after a 410 Gone). Ends with CliError when the run is deleted."""
        run = await self.get_run(name)
        yield run
        version = run["metadata"]["resourceVersion"]
        while True:
            w = watch.Watch()
            try:
                async with w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    RUNS,
                    field_selector=f"metadata.name={name}",
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                ) as stream:
                    async for event in stream:
                        obj = event["object"]
                        if event["type"] == "DELETED":
                            raise CliError(f"pipelinerun {name} was deleted")
                        if event["type"] == "ERROR":
                            raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            yield obj
            except ApiException as e:
                if e.status != 410:
                    raise CliError(f"watching pipelinerun {name}: {api_message(e)}") from None
                run = await self.get_run(name)  # the version is too old: start from now
                version = run["metadata"]["resourceVersion"]
                yield run

    # -- pods ------------------------------------------------------------------------------------
    async def list_pods(self, selector: str, namespace: str | None = None) -> list[Any]:
        got = await self._call(
            "listing pods",
            self.core.list_namespaced_pod(namespace or self.namespace, label_selector=selector),
        )
        return list(got.items)

    async def get_config_map(self, name: str) -> dict[str, Any] | None:
        """The ConfigMap as a dict (None when there is none)."""
        try:
            got = await self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise CliError(f"configmap {name}: {api_message(e)}") from None
        return {"metadata": {"name": got.metadata.name}, "data": dict(got.data or {})}

    async def create_pod(self, body: dict[str, Any]) -> Any:
        return await self._call(
            "creating the reader pod",
            self.core.create_namespaced_pod(self.namespace, body),  # type: ignore[arg-type]
        )

    async def delete_pod(self, name: str) -> None:
        try:
            await self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except ApiException as e:
            if e.status != 404:
                raise CliError(f"deleting pod {name}: {api_message(e)}") from None

    async def pod_log(self, name: str, container: str | None = None, limit_bytes: int | None = None) -> str:
        kwargs: dict[str, Any] = {"container": container, "limit_bytes": limit_bytes}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return await self._call(
            f"the log of pod {name}" + (f", container {container}" if container else ""),
            self.core.read_namespaced_pod_log(name, self.namespace, **kwargs),
        )

    async def watch_pod(self, name: str, timeout: int) -> AsyncIterator[Any]:
        """Every version of pod `name` for `timeout` seconds (one watch)."""
        w = watch.Watch()
        try:
            async with w.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=timeout,
            ) as stream:
                async for event in stream:
                    yield event["object"]
        except ApiException as e:
            raise CliError(f"watching pod {name}: {api_message(e)}") from None
