"""HTTP to a CLAMS app: wait until it accepts connections, ask its identity (`GET /`), POST an MMIF.

Infrastructure failures raise `InfraError` (exit 2, the Job retries): no connection, a timeout,
and the answers that mean "not the app (yet)" (`infra_status`); an answer that cannot come from
a CLAMS app raises `NotAnAppError` (exit 3); an answer longer than the runner may read raises
`TooLargeError` (exit 3, `OutputTooLarge`). No retries here: the Job retries.

Answers are read with a cap (`MAX_ANSWER_BYTES`), never whole: the runner parses what it reads
with mmif-python, whose objects take about 41 bytes of memory per byte of an annotation-dense
MMIF, and the cap is chosen with the runner's memory limit (kinds/pipelinerun/children.py, RUNNER_RESOURCES)
so that any answer under it is parsed within the limit (docs/design.md, "Runner exit codes").
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

from mmif_operator.runner.exitcodes import Reason

#: HTTP statuses that mean "the app (or a proxy before it) is not able to answer now"
RETRIABLE_STATUSES = (429, 502, 503, 504)
#: HTTP statuses that mean "this is not the app (yet)": no such path or method where a CLAMS app
#: answers `GET /` and `POST /`, e.g. a Service whose endpoints are not the app's pods yet right
#: after its Deployment changed, or a proxy's default backend. Retried like an unreachable app.
NOT_THE_APP_STATUSES = (404, 405, 421)
#: the most bytes of an app's answer to POST the runner reads (an MMIF); see the module docstring
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: the most bytes of the app metadata (`GET /`) the runner reads
MAX_METADATA_BYTES = 1024 * 1024
READ_CHUNK = 1024 * 1024


class InfraError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotAnAppError(Exception):
    """The endpoint answers, but not as a CLAMS app (e.g. GET / without app metadata)."""


class TooLargeError(Exception):
    """The answer is longer than the runner reads (exit 3, OutputTooLarge): never retried, the
    same input gives the same answer."""


def infra_status(status: int) -> bool:
    """Whether an HTTP status is the infrastructure's (retried), not the app's answer."""
    return status in RETRIABLE_STATUSES or status in NOT_THE_APP_STATUSES


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def read_capped(resp, limit: int, what: str) -> bytes:
    """The body of `resp`, read in chunks; TooLargeError (nothing more read) once it is longer
    than `limit` bytes, or at once when its Content-Length says so."""
    length = (resp.headers.get("Content-Length") or "").strip() if resp.headers else ""
    if length.isdigit() and int(length) > limit:
        raise TooLargeError(
            f"{what}: the answer is {int(length)} bytes long (Content-Length), more than "
            f"the {mib(limit)} the runner reads"
        )
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = resp.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise TooLargeError(
                f"{what}: the answer is longer than the {mib(limit)} the runner reads "
                f"(it stopped reading there)"
            )
        chunks.append(chunk)


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
        raise InfraError(
            Reason.APP_UNREACHABLE,
            f"the app at {url} did not accept connections within {wait_seconds:g}s ({last})",
        )


class NotListeningError(Exception):
    """The pod's own app (its sidecar) did not listen within its startup timeout (exit 7)."""


def wait_for_sidecar(url: str, startup_seconds: float, poll: float = 0.5) -> None:
    """`wait_for_app` for the app that starts beside the runner in the same pod: it has
    `startup_seconds` to listen (load its model, bind its port). After that a retry of the pod
    would change nothing (a wrong `port`, an app that fails at start): NotListeningError."""
    host, port = _host_port(url)
    last = _await_port(host, port, startup_seconds, poll)
    if last is not None:
        raise NotListeningError(
            f"nothing listened on port {port} within {startup_seconds:g} s ({last}): "
            "check the step's port and the app container's log"
        )


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _open(req: urllib.request.Request, timeout: float):
    # the sidecar app is on loopback: never send that through an HTTP(S)_PROXY from the env
    if urllib.parse.urlsplit(req.full_url).hostname in _LOOPBACK:
        return _DIRECT.open(req, timeout=timeout)
    return urllib.request.urlopen(req, timeout=timeout)


def _request(req: urllib.request.Request, timeout: float, limit: int = MAX_ANSWER_BYTES) -> Response:
    what = f"{req.get_method()} {req.full_url}"
    try:
        with _open(req, timeout) as r:
            return Response(r.status, r.headers.get("Content-Type", ""), read_capped(r, limit, what))
    except urllib.error.HTTPError as e:
        try:
            if infra_status(e.code):
                hint = " (not the app, or not yet: retried)" if e.code in NOT_THE_APP_STATUSES else ""
                raise InfraError(Reason.APP_UNAVAILABLE, f"{what}: HTTP {e.code} {e.reason}{hint}") from None
            try:
                body = read_capped(e, limit, what)
            except (OSError, http.client.HTTPException):
                body = b""
        finally:
            e.close()
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
    r = _request(
        urllib.request.Request(url, method="GET", headers={"Accept": "application/json"}),
        timeout,
        MAX_METADATA_BYTES,
    )
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
    req = urllib.request.Request(
        annotate_url(url, params),
        data=mmif,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    return _request(req, timeout)
