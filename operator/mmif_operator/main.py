"""`mmif-operator`: run the kopf operator with the handlers of `mmif_operator.handlers`.

    mmif-operator                       cluster-wide (or $MMIF_WATCH_NAMESPACE)
    mmif-operator -n team-a -n team-b   only these namespaces
    mmif-operator --all-namespaces      cluster-wide, whatever $MMIF_WATCH_NAMESPACE says

Ports: metrics on :8080/metrics ($MMIF_METRICS_PORT), kopf's liveness probe on
:8081/healthz ($MMIF_LIVENESS_ENDPOINT). See settings.py for every environment variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from mmif_operator import settings as S


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mmif-operator", description=__doc__.splitlines()[0])
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="watch only this namespace (repeatable; default: $MMIF_WATCH_NAMESPACE, else cluster-wide)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument(
        "--liveness", default=None, help=f"kopf liveness endpoint (default {S.DEFAULT_LIVENESS}; '' disables)"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help=f"Prometheus metrics port (default {S.DEFAULT_METRICS_PORT}; 0 disables)",
    )
    p.add_argument("--log-format", choices=("plain", "full", "json"), default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> S.Config:
    config = S.config_from_env(env)
    changes: dict[str, Any] = {}
    if args.all_namespaces:
        changes["namespaces"] = ()
    elif args.namespace:
        changes["namespaces"] = S.parse_namespaces(",".join(args.namespace))
    if args.liveness is not None:
        changes["liveness"] = args.liveness
    if args.metrics_port is not None:
        changes["metrics_port"] = args.metrics_port
    if args.log_format is not None:
        changes["log_format"] = args.log_format
    return dataclasses.replace(config, **changes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = build_config(args)
    except ValueError as e:
        print(f"mmif-operator: {e}", file=sys.stderr)
        return 2
    S.set_config(config)
    S.configure_logging(config, debug=args.debug, verbose=args.verbose)

    import kopf

    from mmif_operator import handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        standalone=True,
        clusterwide=config.clusterwide,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
