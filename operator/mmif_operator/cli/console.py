"""`console [--port N] [--no-open]`: the web console in your browser, as you.

It runs `kubectl port-forward -n mmif-system pod/<a Ready console pod> PORT:http` (a subprocess,
stopped on exit, Ctrl-C included), then opens `http://127.0.0.1:PORT/login?next=/runs?ns=NS#token=TOKEN`:
the login page takes the token from the address' fragment (never sent to a server, removed from
the address at once) and signs you in. The token is your kubeconfig user's bearer token (a
`token`, a `tokenFile`, or what an exec or OIDC plugin gives); a user who authenticates with a
client certificate has none to hand over, and a token is not this command's to mint (`kubectl
create token` makes ServiceAccount tokens, not yours): the login page is opened without one, to
paste a token your cluster gives you. `--as` cannot be carried into the console (it impersonates
no one): refused. The pure parts (`bearer_token`, `console_url`, `port_forward_command`) are
unit-tested."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import webbrowser
from typing import Any
from urllib.parse import quote

from mmif_operator.cli.errors import CliError, Exit
from mmif_operator.cli.kube import Kube

CONSOLE_NAMESPACE = "mmif-system"
CONSOLE_SELECTOR = "app.kubernetes.io/name=mmif-console,app.kubernetes.io/instance=mmif-console"
CONSOLE_PORT = "http"  # the console container's named port (8080)
START_SECONDS = 30  # how long `kubectl port-forward` may take to say "Forwarding from"
STOP_SECONDS = 5  # after SIGTERM, before SIGKILL


def bearer_token(api_key: dict[str, str] | None) -> str | None:
    """The bearer token a loaded kubeconfig authenticates with (kubernetes_asyncio keeps it as
    `api_key["authorization"] = "Bearer ..."`), or None (a client certificate, basic auth)."""
    value = (api_key or {}).get("authorization") or (api_key or {}).get("BearerToken") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def console_url(port: int, namespace: str, token: str | None) -> str:
    """The login page, sent on to the namespace's runs; the token (if any) in the fragment."""
    nxt = quote(f"/runs?ns={namespace}", safe="/")
    url = f"http://127.0.0.1:{port}/login?next={nxt}"
    return url + (f"#token={quote(token, safe='')}" if token else "")


def serving_pod(pods: list[Any]) -> str | None:
    """The console pod to forward to: Ready and not being deleted, the newest first. Not
    `svc/mmif-console`: kubectl then picks the pod Ready for longest, which during a restart is
    the old one, already terminating, and the forward breaks as it exits."""

    def ready(pod: Any) -> bool:
        conds = (pod.status.conditions if pod.status else None) or []
        return any(c.type == "Ready" and c.status == "True" for c in conds)

    live = [p for p in pods if p.metadata.deletion_timestamp is None and ready(p)]
    live.sort(key=lambda p: p.metadata.creation_timestamp, reverse=True)
    return live[0].metadata.name if live else None


def port_forward_command(port: int, kubeconfig: str | None, context: str | None, pod: str) -> list[str]:
    cmd = ["kubectl"]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    if context:
        cmd += ["--context", context]
    return cmd + [
        "-n",
        CONSOLE_NAMESPACE,
        "port-forward",
        "--address",
        "127.0.0.1",
        f"pod/{pod}",
        f"{port}:{CONSOLE_PORT}",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read and drop kubectl's output (a line per connection), so its pipe never fills."""
    while await stream.readline():
        pass


async def cmd_console(kube: Kube, args: argparse.Namespace, ui: Any) -> int:
    if args.as_user or args.as_group:
        raise CliError(
            "--as/--as-group cannot be carried into the console (it acts with a bearer token only): "
            "log in on its page with the token of the identity you mean",
            Exit.USAGE,
        )
    token = bearer_token(kube.api.configuration.api_key)
    pod = serving_pod(await kube.list_pods(CONSOLE_SELECTOR, namespace=CONSOLE_NAMESPACE))
    if pod is None:
        raise CliError(f"no console pod is Ready in {CONSOLE_NAMESPACE} (is mmif-console deployed?)")
    port = args.port or free_port()
    url = console_url(port, kube.namespace, token)
    cmd = port_forward_command(port, args.kubeconfig, args.context, pod)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except FileNotFoundError:
        raise CliError("kubectl is not on the PATH (this command runs `kubectl port-forward`)") from None
    assert proc.stdout is not None
    try:
        seen: list[str] = []
        try:
            async with asyncio.timeout(START_SECONDS):
                while True:
                    line = (await proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        await proc.wait()
                        raise CliError(
                            f"`{' '.join(cmd)}` exited ({proc.returncode}): {''.join(seen[-5:]).strip()}"
                        )
                    seen.append(line)
                    if line.startswith("Forwarding from"):
                        break
        except TimeoutError:
            raise CliError(f"`{' '.join(cmd)}` did not start forwarding within {START_SECONDS} s") from None
        drain = asyncio.create_task(_drain(proc.stdout))
        if token is None:
            ui.err(
                "Your kubeconfig user has no bearer token to hand over (a client certificate?): paste "
                "a token on the login page (docs/howto.md, 'The web console')."
            )
        if args.no_open:
            ui.out(url)
        else:
            ui.out(f"Opening the console at http://127.0.0.1:{port} (Ctrl-C stops the port-forward)")
            if not webbrowser.open(url):
                ui.out(url)
        await proc.wait()
        drain.cancel()
        raise CliError(f"`kubectl port-forward` ended ({proc.returncode})")
    finally:
        await _stop(proc)


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "console", parents=[common], help="open the web console as you (kubectl port-forward + browser)"
    )
    p.add_argument("--port", type=int, default=0, help="the local port (default: a free one)")
    p.add_argument("--no-open", action="store_true", help="print the address (with your token) instead")
    p.set_defaults(func=cmd_console)
