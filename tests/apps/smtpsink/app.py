"""A real SMTP server (aiosmtpd) that records every message, for the notification tests (not a
CLAMS app).

* SMTP on port 2525 (`SMTP_PORT`), plain text; with `SMTP_USERNAME` and `SMTP_PASSWORD` set it
  requires AUTH (PLAIN or LOGIN) with those, over the plain connection (a test server).
* `GET /messages` on `--port` (HTTP): `{"messages": [{from, to, subject, messageId, body,
  headers, authenticated}], "refusedLogins": n}`.

    python app.py --port 5000        (--production is accepted and ignored)
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOCK = threading.Lock()
STATE: dict = {"messages": [], "refusedLogins": 0}


class Recorder:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(msg.get("Subject", "")).strip(),  # a folded header keeps a leading space
            "messageId": str(msg.get("Message-ID", "")),
            "body": body.get_content() if body is not None else "",
            "headers": {k: str(v) for k, v in msg.items()},
            "authenticated": getattr(session, "authenticated", False),
        }
        with LOCK:
            STATE["messages"].append(record)
        return "250 OK"


def authenticator(username: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == username and auth_data.password.decode() == password
        ):
            return AuthResult(success=True)
        with LOCK:
            STATE["refusedLogins"] += 1
        return AuthResult(success=False, handled=False)

    return check


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        with LOCK:
            data = json.dumps(STATE).encode()
        self.send_response(200 if self.path.rstrip("/") in ("", "/messages") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--production", action="store_true")
    args = parser.parse_args()
    username, password = os.environ.get("SMTP_USERNAME"), os.environ.get("SMTP_PASSWORD")
    kwargs = {}
    if username and password:
        kwargs = {
            "authenticator": authenticator(username, password),
            "auth_required": True,
            "auth_require_tls": False,
        }
    smtp_port = int(os.environ.get("SMTP_PORT") or 2525)
    controller = Controller(Recorder(), hostname="0.0.0.0", port=smtp_port, **kwargs)
    controller.start()
    print(
        f"smtpsink: SMTP on :{smtp_port} (auth {'required' if kwargs else 'off'}), HTTP on :{args.port}",
        flush=True,
    )
    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
