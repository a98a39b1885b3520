"""kubectl for tests: the tests drive the cluster the way a user does, through kubectl.

Every call uses $KUBECONFIG (the Makefile points it at the local cluster unless the user set it).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any


class KubectlError(RuntimeError):
    def __init__(self, args: list[str], proc: subprocess.CompletedProcess):
        self.stderr = proc.stderr
        super().__init__(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def kubectl(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise KubectlError(list(args), proc)
    return proc


def apply(
    obj: dict | list[dict] | str, namespace: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    # JSON, not YAML: PyYAML writes strings such as "y" unquoted, which kubectl reads as booleans.
    text = (
        obj
        if isinstance(obj, str)
        else json.dumps({"apiVersion": "v1", "kind": "List", "items": obj} if isinstance(obj, list) else obj)
    )
    ns = ["-n", namespace] if namespace else []
    return kubectl("apply", *ns, "-f", "-", input=text, check=check)


def create(obj: dict, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    ns = ["-n", namespace] if namespace else []
    return kubectl("create", *ns, "-f", "-", input=json.dumps(obj), check=check)


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    ns = ["-n", namespace] if namespace else []
    return json.loads(kubectl("get", kind, name, *ns, "-o", "json").stdout)


def get_list(kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["get", kind, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    if selector:
        args += ["-l", selector]
    return json.loads(kubectl(*args).stdout)["items"]


def wait(resource: str, condition: str, namespace: str, timeout: int = 120) -> None:
    """`kubectl wait --for=<condition>`: the same command a user runs."""
    kubectl(
        "wait", resource, f"--for={condition}", "-n", namespace, f"--timeout={timeout}s", timeout=timeout + 30
    )


def eventually(
    probe: Callable[[], Any], timeout: float = 120, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Poll `probe` until it returns a truthy value; fail with the last value or error seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (KubectlError, KeyError, IndexError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
