import os
import shutil
import subprocess
import uuid

import pytest

from tests import kube


def _cluster_reachable() -> bool:
    if not shutil.which("kubectl") or not os.environ.get("KUBECONFIG"):
        return False
    return (
        subprocess.run(["kubectl", "get", "--raw", "/readyz"], capture_output=True, timeout=20).returncode
        == 0
    )


@pytest.fixture(scope="session")
def cluster():
    """The real cluster behind $KUBECONFIG. Tests that need it fail (never skip) when it is absent."""
    if not _cluster_reachable():
        pytest.fail("no reachable cluster: run `make cluster` or set KUBECONFIG (see README)")
    return os.environ["KUBECONFIG"]


@pytest.fixture
def namespace(cluster, request):
    """A fresh namespace per test, deleted afterwards (its objects with it)."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    kube.kubectl("create", "namespace", name)
    yield name
    if os.environ.get("MMIF_KEEP_NAMESPACES") != "1":
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
