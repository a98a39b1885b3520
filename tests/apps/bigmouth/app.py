"""bigmouth: a test app that answers like a CLAMS app that went wrong, with a huge body. `GET /`
gives CLAMS app metadata (identifier http://apps.mmif.dev/bigmouth/v1); `POST /` answers 200
with `bytes` bytes of JSON-looking filler (default 3 GiB), made while it is sent, so the app
itself holds 1 MiB at a time; with `declareLength=true` the answer carries a Content-Length.

Not a ClamsApp: the CLAMS SDK builds the whole answer in memory before sending it, which is the
point this app must not need. Flask (from the apps' venv) and werkzeug's threaded server."""

import argparse

from flask import Flask, Response, request
from werkzeug.serving import run_simple

IDENTIFIER = "http://apps.mmif.dev/bigmouth/v1"
DEFAULT_BYTES = 3 * 1024**3
CHUNK = 1024 * 1024


def get_flask() -> Flask:
    flask = Flask("bigmouth")

    @flask.get("/")
    def metadata():
        return {
            "name": "bigmouth",
            "identifier": IDENTIFIER,
            "app_version": "v1",
            "mmif_version": "1.0.5",
            "description": "Test app: answers POST with a huge body.",
            "input": [],
            "output": [],
            "parameters": [
                {"name": "bytes", "type": "integer", "default": DEFAULT_BYTES},
                {"name": "declareLength", "type": "boolean", "default": False},
            ],
        }

    @flask.post("/")
    def annotate():
        request.get_data()  # read the MMIF, as an app would
        total = int(request.args.get("bytes", DEFAULT_BYTES))
        head = b'{"filler": "'
        tail = b'"}'

        def body():
            yield head
            left = total - len(head) - len(tail)
            chunk = b"x" * CHUNK
            while left > 0:
                yield chunk[:left]
                left -= CHUNK
            yield tail

        headers = {}
        if request.args.get("declareLength", "false").lower() == "true":
            headers["Content-Length"] = str(total)
        return Response(body(), status=200, content_type="application/json", headers=headers)

    return flask


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="5000", help="port to listen on")
    parser.add_argument("--production", action="store_true", help="accepted as the other apps do")
    args = parser.parse_args()
    run_simple("0.0.0.0", int(args.port), get_flask(), threaded=True)
