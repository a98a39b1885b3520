"""Waiting for runs and explaining them: wait for a run to finish (without waiting out the
timeout when it failed), its Succeeded condition, and the diagnostics to print when a run did
not do what a test expected. Import them (`from tests import runs`); the e2e `runs` fixture is
this module."""

from __future__ import annotations

from tests import kube

OPERATOR_NS = "mmif-system"
OPERATOR_DEPLOYMENT = "mmif-operator"


def operator_logs(tail: int = 60) -> str:
    proc = kube.kubectl(
        "logs", f"deployment/{OPERATOR_DEPLOYMENT}", "-n", OPERATOR_NS, f"--tail={tail}", check=False
    )
    return proc.stdout + proc.stderr


def succeeded_condition(run: dict) -> dict:
    conditions = (run.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Succeeded"), {})


def wait_for_run_to_finish(namespace: str, name: str, timeout: float = 300) -> dict:
    """Poll until the run's Succeeded condition is True or False (a failed run is not waited on to
    the end of `timeout`); return the run. Raises AssertionError with diagnostics on timeout."""

    def finished():
        run = kube.get("pipelinerun", name, namespace)
        return run if succeeded_condition(run).get("status") in ("True", "False") else None

    try:
        return kube.eventually(finished, timeout=timeout, interval=2, what=f"pipelinerun/{name} to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run_diagnostics(namespace, name)}") from None


def run_diagnostics(namespace: str, name: str) -> str:
    """The run's status, the namespace's Jobs, Pods and Events, and the operator's latest logs."""
    parts = []
    for title, args in [
        ("run status", ["get", "pipelinerun", name, "-n", namespace, "-o", "jsonpath={.status}"]),
        ("pipelines", ["get", "pipelines", "-n", namespace, "-o", "wide"]),
        ("jobs, pods, deployments", ["get", "jobs,pods,deployments,services", "-n", namespace, "-o", "wide"]),
        ("events", ["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]),
        ("operator pods", ["get", "pods", "-n", OPERATOR_NS, "-o", "wide"]),
    ]:
        proc = kube.kubectl(*args, check=False)
        parts.append(f"--- {title}:\n{(proc.stdout + proc.stderr).strip()[-4000:]}")
    parts.append(f"--- operator logs:\n{operator_logs()[-6000:]}")
    return "\n".join(parts)


# the names the `runs` fixture has always offered
wait_to_finish = wait_for_run_to_finish
condition = succeeded_condition
diagnostics = run_diagnostics
