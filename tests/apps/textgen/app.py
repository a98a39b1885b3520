"""textgen: a tiny CLAMS test app that adds a derived TextDocument ("transcript of <location>")
for every source document, aligned to it. Identifier http://apps.mmif.dev/textgen/v1."""

import argparse
import logging
import os
import time

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/textgen/v1"


class TextGen(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="textgen",
            description="Test app: a fake transcript per document.",
            app_license="Apache-2.0",
            identifier=IDENTIFIER,
            url="https://example.org/mmif-operator",
        )
        # the SDK appends a version to the identifier (git describe or CLAMS_APP_VERSION): pin it
        md.identifier = pydantic.AnyHttpUrl(IDENTIFIER)
        md.app_version = "v1"
        md.add_input_oneof(
            DocumentTypes.VideoDocument,
            DocumentTypes.AudioDocument,
            DocumentTypes.TextDocument,
            DocumentTypes.ImageDocument,
        )
        md.add_output(DocumentTypes.TextDocument)
        md.add_output(AnnotationTypes.Alignment)
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        view = mmif.new_view()
        self.sign_view(view, parameters)
        for doc in mmif.documents:
            text = view.new_textdocument(f"transcript of {doc.location}")
            view.new_annotation(AnnotationTypes.Alignment, source=doc.id, target=text.id)
        return mmif


def get_app() -> ClamsApp:
    return TextGen()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="5000", help="port to listen on")
    parser.add_argument("--production", action="store_true", help="serve with gunicorn")
    args = parser.parse_args()
    # A real CLAMS app loads its model before it listens (seconds to minutes): with
    # CLAMS_STARTUP_DELAY_SECONDS the app waits that long first, for the start-up benchmarks.
    time.sleep(float(os.environ.get("CLAMS_STARTUP_DELAY_SECONDS") or 0))
    app = get_app()
    http_app = Restifier(app, port=int(args.port), debug=False)
    if args.production:
        http_app.serve_production()
    else:
        app.logger.setLevel(logging.DEBUG)
        http_app.run()
