"""HTTP to a CLAMS app: wait until it accepts connections, ask its identity (`GET /`), POST an MMIF.

Infrastructure failures raise `InfraError` (exit 2, the Job retries); an answer that cannot come
from a CLAMS app raises `NotAnAppError` (exit 3). No retries here: the Job retries.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .exitcodes import Reason

#: HTTP statuses that mean "the app (or a proxy before it) is not able to answer now"
RETRIABLE_STATUSES = (429, 502, 503, 504)


class InfraError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotAnAppError(Exception):
    """The endpoint answers, but not as a CLAMS app (e.g. GET / without app metadata)."""


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes


def _host_port(url: str) -> tuple[str, int]:
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


def _await_port(host: str, port: int, wait_seconds: float, poll: float) -> str | None:
    """Poll until `host:port` accepts a TCP connection: None then, else after `wait_seconds` the
    last error seen."""
    deadline = time.monotonic() + max(0.0, wait_seconds)
    last = ""
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.5, min(5.0, remaining))):
                return None
        except OSError as e:
            last = e.strerror or str(e)
        if remaining <= 0:
            return last or "no connection"
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def wait_for_app(url: str, wait_seconds: float, poll: float = 0.5) -> None:
    """Return once the app accepts TCP connections (a TCP probe: a GET would cost a worker restart
    with gunicorn's max_requests=1); raise InfraError after `wait_seconds`."""
    host, port = _host_port(url)
    last = _await_port(host, port, wait_seconds, poll)
    if last is not None:
        raise InfraError(Reason.APP_UNREACHABLE,
                         f"the app at {url} did not accept connections within {wait_seconds:g}s ({last})")


class NotListeningError(Exception):
    """The pod's own app (its sidecar) did not listen within its startup timeout (exit 7)."""


def wait_for_sidecar(url: str, startup_seconds: float, poll: float = 0.5) -> None:
    """`wait_for_app` for the app that starts beside the runner in the same pod: it has
    `startup_seconds` to listen (load its model, bind its port). After that a retry of the pod
    would change nothing (a wrong `port`, an app that fails at start): NotListeningError."""
    host, port = _host_port(url)
    last = _await_port(host, port, startup_seconds, poll)
    if last is not None:
        raise NotListeningError(f"nothing listened on port {port} within {startup_seconds:g} s ({last}): "
                                "check the step's port and the app container's log")


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _open(req: urllib.request.Request, timeout: float):
    # the sidecar app is on loopback: never send that through an HTTP(S)_PROXY from the env
    if urllib.parse.urlsplit(req.full_url).hostname in _LOOPBACK:
        return _DIRECT.open(req, timeout=timeout)
    return urllib.request.urlopen(req, timeout=timeout)


def _request(req: urllib.request.Request, timeout: float) -> Response:
    what = f"{req.get_method()} {req.full_url}"
    try:
        with _open(req, timeout) as r:
            return Response(r.status, r.headers.get("Content-Type", ""), r.read())
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            e.close()
        if e.code in RETRIABLE_STATUSES:
            raise InfraError(Reason.APP_UNAVAILABLE, f"{what}: HTTP {e.code} {e.reason}") from None
        return Response(e.code, e.headers.get("Content-Type", "") if e.headers else "", body)
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            raise InfraError(Reason.APP_TIMEOUT, f"{what}: no answer within {timeout:g}s") from None
        detail = getattr(e.reason, "strerror", None) or str(e.reason)
        raise InfraError(Reason.APP_UNREACHABLE, f"{what}: {detail}") from None
    except TimeoutError:
        raise InfraError(Reason.APP_TIMEOUT, f"{what}: no answer within {timeout:g}s") from None
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        # reset, closed without an answer (a crashed or OOM-killed worker), ...
        detail = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise InfraError(Reason.APP_UNREACHABLE, f"{what}: {detail}") from None


def identity(url: str, timeout: float) -> str:
    """The app's identifier, from the metadata JSON that `GET /` returns."""
    r = _request(urllib.request.Request(url, method="GET", headers={"Accept": "application/json"}),
                 timeout)
    if r.status != 200:
        raise NotAnAppError(f"GET {url} answered HTTP {r.status}, not CLAMS app metadata")
    try:
        meta = json.loads(r.body)
    except ValueError:
        raise NotAnAppError(f"GET {url} did not answer JSON app metadata") from None
    ident = meta.get("identifier") if isinstance(meta, dict) else None
    if not isinstance(ident, str) or not ident:
        raise NotAnAppError(f"GET {url} answered JSON without an 'identifier': not a CLAMS app")
    return ident


def annotate_url(url: str, params: dict[str, str | list[str]]) -> str:
    if not params:
        return url
    u = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(params, doseq=True)
    return urllib.parse.urlunsplit(u._replace(query=f"{u.query}&{query}" if u.query else query))


def annotate(url: str, mmif: bytes, params: dict[str, str | list[str]], timeout: float) -> Response:
    """POST the complete MMIF; parameters go in the query string. Returns any answer the app gave
    except the retriable ones (which raise InfraError)."""
    req = urllib.request.Request(annotate_url(url, params), data=mmif, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    return _request(req, timeout)
