"""Pod security defaults of every pod the operator creates.

A step pod passes the `restricted` Pod Security Standard when the app runs as non-root
(`runAsNonRoot: true` and, if set, a non-zero `runAsUser` on the step): seccomp RuntimeDefault,
no privilege escalation, every capability dropped, non-root runner, no service account token.
"""

from __future__ import annotations

from typing import Any

RUNNER_UID = 65532  # "nonroot" of distroless images; the operator image's runner user
RUNNER_GID = 65532


def pod_security_context() -> dict[str, Any]:
    return {"seccompProfile": {"type": "RuntimeDefault"}}


def _base_container_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def runner_security_context() -> dict[str, Any]:
    """mmif-runner: non-root, read-only root filesystem (it writes only the workspace and /tmp)."""
    ctx = _base_container_context()
    ctx.update(
        {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_GID,
            "readOnlyRootFilesystem": True,
        }
    )
    return ctx


def app_security_context(
    run_as_user: int | None = None, run_as_non_root: bool | None = None
) -> dict[str, Any]:
    """The CLAMS app: its image's user unless the step sets `runAsUser` / `runAsNonRoot`."""
    ctx = _base_container_context()
    if run_as_user is not None:
        ctx["runAsUser"] = int(run_as_user)
    if run_as_non_root is not None:
        ctx["runAsNonRoot"] = bool(run_as_non_root)
    elif run_as_user is not None and int(run_as_user) != 0:
        # A non-zero uid is non-root: say so, so the pod qualifies for `restricted`.
        ctx["runAsNonRoot"] = True
    return ctx


def secure_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the pod-level defaults to a pod spec (in place; returned for chaining)."""
    spec["automountServiceAccountToken"] = False
    spec["securityContext"] = {**pod_security_context(), **spec.get("securityContext", {})}
    spec.setdefault("enableServiceLinks", False)
    return spec
