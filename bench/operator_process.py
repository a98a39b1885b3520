"""The deployed operator as the benchmark sees it: its pod, its process on this machine (the
local cluster's containers are host processes), CPU and peak memory from /proc, restart, scale
and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from .measure import cpu_seconds, status_kib

NAMESPACE = "mmif-system"
DEPLOYMENT = "mmif-operator"
SELECTOR = "app.kubernetes.io/name=mmif-operator"
PROCESS_MARK = b"mmif_operator.main"
TICKS = os.sysconf("SC_CLK_TCK")


def kubectl(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def running_pod_uids() -> list[str]:
    pods = json.loads(kubectl("get", "pods", "-n", NAMESPACE, "-l", SELECTOR, "-o", "json"))["items"]
    return [
        p["metadata"]["uid"]
        for p in pods
        if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def find_pid(pod_uid: str) -> int | None:
    """The operator's process: in the pod's cgroup, running mmif_operator.main."""
    marks = (f"pod{pod_uid}", f"pod{pod_uid.replace('-', '_')}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if PROCESS_MARK not in f.read():
                    continue
            with open(f"/proc/{entry}/cgroup", encoding="utf-8") as f:
                cgroup = f.read()
        except OSError:
            continue
        if any(m in cgroup for m in marks):
            return int(entry)
    return None


def operator_pid(timeout: float = 120) -> tuple[int, str]:
    """(pid, pod uid) of the running operator."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for uid in running_pod_uids():
            pid = find_pid(uid)
            if pid is not None:
                return pid, uid
        time.sleep(0.2)
    raise RuntimeError("the operator's process was not found on this machine (is the cluster local?)")


@dataclass(frozen=True)
class ProcSample:
    pid: int
    cpu_seconds: float
    peak_rss_kib: int
    rss_kib: int


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        stat = f.read()
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        status = f.read()
    return ProcSample(
        pid, cpu_seconds(stat, TICKS), status_kib(status, "VmHWM") or 0, status_kib(status, "VmRSS") or 0
    )


def wait_ready(timeout: int = 180) -> None:
    kubectl(
        "rollout",
        "status",
        f"deployment/{DEPLOYMENT}",
        "-n",
        NAMESPACE,
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )
    kubectl(
        "wait",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        SELECTOR,
        "--for=condition=Ready",
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )


def scale(replicas: int) -> None:
    """Scale the operator's Deployment and wait: for its pods to go (0) or be Ready."""
    kubectl("scale", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, f"--replicas={replicas}")
    if replicas == 0:
        deadline = time.monotonic() + 120
        while kubectl("get", "pods", "-n", NAMESPACE, "-l", SELECTOR, "-o", "name").strip():
            if time.monotonic() > deadline:
                raise RuntimeError("the operator's pods did not go")
            time.sleep(0.5)
    else:
        wait_ready()


def fresh_operator() -> tuple[int, str]:
    """Start a new operator process (a fresh VmHWM and CPU count): scale to 0, then 1. Its pid."""
    scale(0)
    scale(1)
    return operator_pid()


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def wait_new_pid(old_pid: int, pod_uid: str, timeout: float = 120) -> tuple[int, float]:
    """The operator's process after `old_pid` died (the kubelet restarts the container in the same
    pod), and time.monotonic() when it was first seen (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = find_pid(pod_uid)
        if pid is not None and pid != old_pid:
            return pid, time.monotonic()
        time.sleep(0.05)
    raise RuntimeError("the operator did not come back after SIGKILL")
