"""failer: a tiny CLAMS test app that fails on demand. When a document location contains the
`failOn` parameter (a non-empty substring) it raises, so the SDK answers HTTP 500 with an error
view; otherwise it behaves like textgen. Identifier http://apps.mmif.dev/failer/v1."""

import argparse
import logging
import sys

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/failer/v1"


class Failer(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="failer",
            description="Test app: fails when a document location contains failOn.",
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
            name="failOn",
            description="fail when a document location contains this",
            type="string",
            default="",
        )
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        fail_on = parameters.get("failOn") or ""
        for doc in mmif.documents:
            if fail_on and fail_on in (doc.location or ""):
                # On the app's own log only (the error view says "matched"): what `kubectl mmif
                # logs` must show from the log the operator kept (tests/e2e/test_cli.py).
                print(
                    f"failer: refusing document {doc.id}: it contains {fail_on!r}",
                    file=sys.stderr,
                    flush=True,
                )
                raise RuntimeError(f"failOn {fail_on!r} matched document {doc.id} ({doc.location})")
        view = mmif.new_view()
        self.sign_view(view, parameters)
        for doc in mmif.documents:
            text = view.new_textdocument(f"transcript of {doc.location}")
            view.new_annotation(AnnotationTypes.Alignment, source=doc.id, target=text.id)
        return mmif


def get_app() -> ClamsApp:
    return Failer()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="5000", help="port to listen on")
    parser.add_argument("--production", action="store_true", help="serve with gunicorn")
    args = parser.parse_args()
    app = get_app()
    http_app = Restifier(app, port=int(args.port), debug=False)
    if args.production:
        http_app.serve_production()
    else:
        app.logger.setLevel(logging.DEBUG)
        http_app.run()
