"""The operator's configuration: environment variables, kopf settings, logging.

Everything kopf persists on objects lives under `mmif.dev` from the first release on (changing a
prefix or the finalizer later makes kopf re-handle every object):

* finalizer `mmif.dev/finalizer`: kopf puts it on a PipelineRun while its daemon runs (not
  terminal, or waiting for `ttlSecondsAfterFinished`) and on every Pipeline (its daemon keeps the
  app Deployments), so a daemon stops before the object goes;
* progress annotations `mmif.dev/<handler>` and the diff-base annotation
  `mmif.dev/last-handled-configuration`: only written by change handlers (`on.create`,
  `on.update`, ...). The operator has none, so in practice kopf writes only the finalizer.

Child objects (Jobs, Deployments) are only indexed or watched (`@kopf.index`, `@kopf.on.event`),
which writes nothing on them.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

import kopf

from mmif_operator.core import labels as L

PREFIX = "mmif.dev"
FINALIZER = f"{PREFIX}/finalizer"
DIFFBASE_KEY = "last-handled-configuration"  # -> mmif.dev/last-handled-configuration
COMPONENT = "mmif-operator"

DEFAULT_IMAGE = "mmif.local/mmif-operator:dev"
DEFAULT_METRICS_PORT = 8080
DEFAULT_LIVENESS = "http://0.0.0.0:8081/healthz"

# Environment variables (the Deployment sets them; all optional).
ENV_IMAGE = "MMIF_OPERATOR_IMAGE"  # image of runner pods (prepare, step, manifest)
ENV_WATCH_NAMESPACE = "MMIF_WATCH_NAMESPACE"  # "" = cluster-wide; "a" or "a,b" = only these
ENV_LOG_FORMAT = "MMIF_LOG_FORMAT"  # "json" | "plain" (default) | "full"
ENV_LOG_LEVEL = "MMIF_LOG_LEVEL"  # DEBUG | INFO (default) | WARNING
ENV_METRICS_PORT = "MMIF_METRICS_PORT"  # default 8080; 0 disables
ENV_LIVENESS = "MMIF_LIVENESS_ENDPOINT"  # default http://0.0.0.0:8081/healthz; "" disables
ENV_WORKER_LIMIT = "MMIF_WORKER_LIMIT"  # kopf workers per resource kind; default 0 = unbounded
ENV_RESYNC = "MMIF_RESYNC_SECONDS"  # re-reconcile every object at least this often
ENV_POD_NAME = "POD_NAME"  # reportingInstance of Events (downward API)
ENV_POD_NAMESPACE = "POD_NAMESPACE"  # the operator's namespace (downward API)
ENV_WEBHOOK_PORT = "MMIF_WEBHOOK_PORT"  # the admission webhook's HTTPS port; 0 disables
ENV_WEBHOOK_SERVICE = "MMIF_WEBHOOK_SERVICE"  # the Service in front of it (certificate names)
ENV_WEBHOOK_CONFIGURATION = "MMIF_WEBHOOK_CONFIGURATION"  # the MutatingWebhookConfiguration
ENV_WEBHOOK_SECRET = "MMIF_WEBHOOK_SECRET"  # the Secret keeping its CA and certificate
ENV_MONITORS_API_PORT = "MMIF_MONITORS_API_PORT"  # the monitors HTTP API; default 8090; 0 disables
ENV_MONITORS_API_URL = "MMIF_MONITORS_API_URL"  # its public base URL in links (default: the request's)

DEFAULT_WEBHOOK_PORT = 9443
DEFAULT_MONITORS_API_PORT = 8090
DEFAULT_WEBHOOK_SERVICE = "mmif-operator-webhook"
DEFAULT_WEBHOOK_CONFIGURATION = "mmif-operator"
DEFAULT_WEBHOOK_SECRET = "mmif-operator-webhook-tls"
DEFAULT_NAMESPACE = "mmif-system"
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class Config:
    """What the handlers need to know about the environment (read once at start)."""

    operator_image: str = DEFAULT_IMAGE
    namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    log_format: str = "plain"
    log_level: str = "INFO"
    metrics_port: int = DEFAULT_METRICS_PORT
    liveness: str = DEFAULT_LIVENESS
    worker_limit: int = 0  # 0: unbounded (see apply_kopf_settings)
    resync_seconds: float = 300.0
    instance: str = field(default_factory=socket.gethostname)
    namespace: str = DEFAULT_NAMESPACE  # where the operator runs
    webhook_port: int = DEFAULT_WEBHOOK_PORT
    webhook_service: str = DEFAULT_WEBHOOK_SERVICE
    webhook_configuration: str = DEFAULT_WEBHOOK_CONFIGURATION
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    monitors_api_port: int = DEFAULT_MONITORS_API_PORT
    monitors_api_url: str = ""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def parse_namespaces(text: str | None) -> tuple[str, ...]:
    """`"a, b"` -> ("a", "b"); empty -> () (cluster-wide)."""
    return tuple(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))


def config_from_env(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    log_format = (env.get(ENV_LOG_FORMAT) or "plain").strip().lower()
    if log_format not in ("plain", "full", "json"):
        raise ValueError(f"{ENV_LOG_FORMAT}={log_format!r}: use json, plain or full")
    level = (env.get(ENV_LOG_LEVEL) or "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{ENV_LOG_LEVEL}={level!r}: use DEBUG, INFO, WARNING or ERROR")
    resync = float(env.get(ENV_RESYNC) or 300)
    if resync <= 0:
        raise ValueError(f"{ENV_RESYNC} must be > 0")
    return Config(
        operator_image=(env.get(ENV_IMAGE) or "").strip() or DEFAULT_IMAGE,
        namespaces=parse_namespaces(env.get(ENV_WATCH_NAMESPACE)),
        log_format=log_format,
        log_level=level,
        metrics_port=_int(env, ENV_METRICS_PORT, DEFAULT_METRICS_PORT),
        liveness=env.get(ENV_LIVENESS, DEFAULT_LIVENESS).strip(),
        worker_limit=max(0, _int(env, ENV_WORKER_LIMIT, 0)),
        resync_seconds=resync,
        instance=(env.get(ENV_POD_NAME) or "").strip() or socket.gethostname(),
        namespace=(env.get(ENV_POD_NAMESPACE) or "").strip() or _own_namespace(),
        webhook_port=_int(env, ENV_WEBHOOK_PORT, DEFAULT_WEBHOOK_PORT),
        webhook_service=(env.get(ENV_WEBHOOK_SERVICE) or "").strip() or DEFAULT_WEBHOOK_SERVICE,
        webhook_configuration=(env.get(ENV_WEBHOOK_CONFIGURATION) or "").strip()
        or DEFAULT_WEBHOOK_CONFIGURATION,
        webhook_secret=(env.get(ENV_WEBHOOK_SECRET) or "").strip() or DEFAULT_WEBHOOK_SECRET,
        monitors_api_port=_int(env, ENV_MONITORS_API_PORT, DEFAULT_MONITORS_API_PORT),
        monitors_api_url=(env.get(ENV_MONITORS_API_URL) or "").strip(),
    )


def _own_namespace() -> str:
    try:
        with open(SA_NAMESPACE_FILE, encoding="utf-8") as f:
            return f.read().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


_config: Config | None = None


def get_config() -> Config:
    """The process-wide configuration (from the environment on first use)."""
    global _config
    if _config is None:
        _config = config_from_env()
    return _config


def set_config(config: Config) -> None:
    global _config
    _config = config


MANAGED_SELECTOR = f"{L.MANAGED_BY}={L.MANAGER}"


def apply_kopf_settings(settings: kopf.OperatorSettings, config: Config) -> None:
    """Every kopf setting the operator relies on (called from the startup handler)."""
    # Persistence: our own names, no `status.kopf`, no legacy (v1) keys.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX, v1=False)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key=DIFFBASE_KEY, v1=False
    )

    # Kubernetes Events: only the ones the handlers post explicitly (kopf.event), not log lines.
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = config.instance[:128]
    settings.posting.event_name_prefix = "mmif-"
    settings.posting.default_backoffs = (1, 2, 5)  # Events are auxiliary: give up after ~8 s

    # Workers: one per object with queued watch events, unbounded unless configured. A bound
    # deadlocks kopf 1.45 at start when a kind with an index (Jobs) has more objects than the
    # bound: the first workers index their object, then wait for the whole index while holding
    # their slots, so the rest are never indexed (nolar/kopf#1243). 1,000 Jobs in flight and a
    # bound of 100 froze a restarted operator for good.
    settings.queueing.worker_limit = config.worker_limit or None

    # Watching: stream only what the operator manages (server-side label selectors); restart a
    # silent stream before the API server's own timeout; list big collections in pages.
    for selector in (
        ("batch", "v1", "jobs"),
        ("apps", "v1", "deployments"),
        ("v1", "services"),
        ("networking.k8s.io", "v1", "networkpolicies"),
    ):
        settings.watching.label_selectors[selector] = MANAGED_SELECTOR
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.watching.chunk_size = 500

    # Other API requests (kopf's own: finalizers, events).
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 15

    # Daemons: stop promptly when a run is deleted or ends.
    settings.background.instant_exit_timeout = 0.5

    # One replica (Deployment strategy Recreate): no peering.
    settings.peering.standalone = True
    settings.peering.clusterwide = config.clusterwide


class RoutineHandlerFilter(logging.Filter):
    """Drops kopf's INFO line "Handler 'x' succeeded." for the read-only watch handlers: one per
    watch event of every Job and run, pure noise at 10,000 items. Failures still show."""

    def __init__(self, handler_ids: tuple[str, ...]):
        super().__init__()
        self.lines = {f"Handler {h!r} succeeded." for h in handler_ids}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        return record.getMessage() not in self.lines


ROUTINE_HANDLERS = (
    "job_event",
    "run_jobs",
    "run_event",
    "pipeline_event",
    "app_deployment_event",
    "app_service_event",
    "app_network_policy_event",
    "analysis_jobs",
    "analysis_job_event",
    "source_run_event",
)


def configure_logging(config: Config, *, debug: bool = False, verbose: bool = False) -> None:
    """kopf's log formatters: `json` gives one JSON object a line, with the object's namespace
    and name under `object` for records about a resource."""
    fmt = {"json": kopf.LogFormat.JSON, "full": kopf.LogFormat.FULL}.get(
        config.log_format, kopf.LogFormat.PLAIN
    )
    kopf.configure(
        debug=debug,
        verbose=verbose or config.log_level == "DEBUG",
        quiet=config.log_level in ("WARNING", "ERROR"),
        log_format=fmt,
        log_refkey="object" if fmt is kopf.LogFormat.JSON else None,
    )
    if not debug:
        routine = RoutineHandlerFilter(ROUTINE_HANDLERS)
        for handler in logging.getLogger().handlers:
            handler.addFilter(routine)
    for noisy in ("aiohttp.access", "kubernetes_asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
