"""flaky: a tiny CLAMS test app that, like a Service whose endpoints are not the app yet (or a
proxy's default backend), answers `404 Not Found` to its first `notFoundFirst` POSTs, then
behaves like textgen. The count is kept in a file under /tmp, so it holds across gunicorn's
worker restarts and is per pod. Identifier http://apps.mmif.dev/flaky/v1."""

import argparse
import fcntl
import logging
import os
import tempfile

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from flask import request
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/flaky/v1"
COUNT_FILE = os.path.join(tempfile.gettempdir(), "flaky-posts")
NOT_FOUND_PAGE = "<html><body><h1>404 Not Found</h1></body></html>\n"


class Flaky(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="flaky",
            description="Test app: answers 404 to its first notFoundFirst POSTs, then like textgen.",
            app_license="Apache-2.0",
            identifier=IDENTIFIER,
            url="https://example.org/mmif-operator",
        )
        md.identifier = pydantic.AnyHttpUrl(IDENTIFIER)  # the SDK appends a version: pin it
        md.app_version = "v1"
        md.add_input(DocumentTypes.Document, required=False)
        md.add_output(DocumentTypes.TextDocument)
        md.add_output(AnnotationTypes.Alignment)
        md.add_parameter(
            name="notFoundFirst",
            description="how many POSTs this pod answers 404 before it answers as the app",
            type="integer",
            default=0,
        )
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        view = mmif.new_view()
        self.sign_view(view, parameters)
        for doc in mmif.documents:
            text = view.new_textdocument(f"transcript of {doc.location}")
            view.new_annotation(AnnotationTypes.Alignment, source=doc.id, target=text.id)
        return mmif


def _posts_so_far() -> int:
    """Count this POST; the number of POSTs before it."""
    fd = os.open(COUNT_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        text = f.read().strip()
        before = int(text) if text else 0
        f.seek(0)
        f.truncate()
        f.write(str(before + 1))
        return before


def get_app() -> ClamsApp:
    return Flaky()


def restify(app: ClamsApp, port: int) -> Restifier:
    http_app = Restifier(app, port=port, debug=False)

    @http_app.flask_app.before_request
    def not_the_app_yet():
        if request.method != "POST":
            return None
        first = int(request.args.get("notFoundFirst") or 0)
        if _posts_so_far() < first:
            return NOT_FOUND_PAGE, 404, {"Content-Type": "text/html"}
        return None

    return http_app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="5000", help="port to listen on")
    parser.add_argument("--production", action="store_true", help="serve with gunicorn")
    args = parser.parse_args()
    app = get_app()
    http_app = restify(app, int(args.port))
    if args.production:
        http_app.serve_production()
    else:
        app.logger.setLevel(logging.DEBUG)
        http_app.run()
