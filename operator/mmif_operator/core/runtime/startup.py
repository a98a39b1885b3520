"""Operator start and stop: kopf settings, the Kubernetes client."""

from __future__ import annotations

from typing import Any

import kopf

from mmif_operator import metrics
from mmif_operator import settings as S
from mmif_operator.admission import handler as admission
from mmif_operator.core.kube import Kube
from mmif_operator.core.kube.client import make_api_client
from mmif_operator.core.runtime import state as runtime
from mmif_operator.kinds.monitor.api import server as monitors_api
from mmif_operator.notifications import handler as notifications


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    config = S.get_config()
    S.apply_kopf_settings(settings, config)
    runtime.set_kube(Kube(await make_api_client()))
    await admission.start_webhook(settings, runtime.kube(), config)
    metrics.serve(config.metrics_port)
    await monitors_api.start(runtime.kube(), config.monitors_api_port, config.monitors_api_url)
    scope = "cluster-wide" if config.clusterwide else f"namespaces {', '.join(config.namespaces)}"
    logger.info(f"mmif-operator starting ({scope}); runner image {config.operator_image}")


@kopf.on.cleanup()
async def cleanup(logger: kopf.Logger, **_: Any) -> None:
    try:
        kube = runtime.kube()
    except RuntimeError:
        return
    await notifications.close()
    await monitors_api.stop()
    runtime.set_kube(None)
    await kube.close()
