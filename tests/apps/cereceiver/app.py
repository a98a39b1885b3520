"""A CloudEvents HTTP receiver for the notification tests (not a CLAMS app).

* `POST <any path>`: parsed with the cloudevents SDK (`from_http`, structured or binary mode);
  an invalid request is answered 400 and counted in `refused`; a valid one is recorded (its
  attributes, data, the raw body and the Authorization and X-Mmif-Signature headers) and answered
  with the configured status (200 unless told otherwise; 503 simulates a receiver that is down,
  and is counted in `unavailable` without recording the event).
* `GET /events`: `{"events": [...], "refused": n, "unavailable": n}`.
* `PUT /status/<code>`: answer POSTs with `<code>` from now on (`/status/200` to recover).

    python app.py --port 5000        (--production is accepted and ignored)
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

LOCK = threading.Lock()
STATE: dict = {"events": [], "refused": 0, "unavailable": 0, "status": 200}


class Handler(BaseHTTPRequestHandler):
    def _answer(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("", "/events"):
            with LOCK:
                self._answer(200, {k: STATE[k] for k in ("events", "refused", "unavailable", "status")})
        else:
            self._answer(404, {"error": "GET /events"})

    def do_PUT(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            with LOCK:
                STATE["status"] = int(parts[1])
            self._answer(200, {"status": int(parts[1])})
        else:
            self._answer(404, {"error": "PUT /status/<code>"})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:
            status = STATE["status"]
        if status == 503:
            with LOCK:
                STATE["unavailable"] += 1
            self._answer(503, {"error": "told to be down"})
            return
        try:
            event = from_http(HTTPMessage(headers=dict(self.headers.items()), body=body), JSONFormat())
        except Exception as e:  # noqa: BLE001 - any parse error is the sender's
            with LOCK:
                STATE["refused"] += 1
            self._answer(400, {"error": f"not a CloudEvent: {type(e).__name__}: {e}"})
            return
        attrs = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.get_attributes().items()
        }
        data = event.get_data()
        if isinstance(data, bytes):
            data = data.decode(errors="replace")
        record = {
            "attributes": attrs,
            "data": data,
            "mode": "binary" if any(k.lower().startswith("ce-") for k in self.headers) else "structured",
            "path": self.path,
            "body": body.decode(errors="replace"),
            "authorization": self.headers.get("Authorization"),
            "signature": self.headers.get("X-Mmif-Signature"),
        }
        with LOCK:
            STATE["events"].append(record)
        self._answer(status, {"received": attrs.get("id")})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--production", action="store_true")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    print(f"cereceiver listening on :{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
