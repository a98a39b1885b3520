"""sleeper: a tiny CLAMS test app that sleeps `seconds` (default 1) and then adds a view holding one
marker annotation. Used to test timeouts and cancel. Identifier http://apps.mmif.dev/sleeper/v1."""

import argparse
import logging
import time

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/sleeper/v1"


class Sleeper(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="sleeper",
            description="Test app: sleeps, then adds one marker annotation.",
            app_license="Apache-2.0",
            identifier=IDENTIFIER,
            url="https://example.org/mmif-operator",
        )
        md.identifier = pydantic.AnyHttpUrl(IDENTIFIER)  # the SDK appends a version: pin it
        md.app_version = "v1"
        md.add_input(DocumentTypes.Document, required=False)
        md.add_output(AnnotationTypes.Annotation)
        md.add_parameter(name="seconds", description="how long to sleep", type="number", default=1)
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        if not mmif.documents:
            raise ValueError("no documents in the input")
        seconds = float(parameters["seconds"])
        time.sleep(seconds)
        view = mmif.new_view()
        self.sign_view(view, parameters)
        # the SDK drops views without annotations: the marker keeps this one. mmif-python
        # requires a `document` property on Annotation-typed annotations when reading.
        view.new_annotation(
            AnnotationTypes.Annotation, document=mmif.documents[0].id, marker="slept", seconds=seconds
        )
        return mmif


def get_app() -> ClamsApp:
    return Sleeper()


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
