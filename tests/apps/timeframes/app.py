"""timeframes: a tiny CLAMS test app that adds `count` (default 3) TimeFrame annotations over the
first VideoDocument or AudioDocument. Identifier http://apps.mmif.dev/timeframes/v1."""

import argparse
import logging

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/timeframes/v1"


class TimeFrames(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="timeframes",
            description="Test app: a few fixed TimeFrames over the first video/audio.",
            app_license="Apache-2.0",
            identifier=IDENTIFIER,
            url="https://example.org/mmif-operator",
        )
        md.identifier = pydantic.AnyHttpUrl(IDENTIFIER)  # the SDK appends a version: pin it
        md.app_version = "v1"
        md.add_input_oneof(DocumentTypes.VideoDocument, DocumentTypes.AudioDocument)
        md.add_output(AnnotationTypes.TimeFrame, timeUnit="milliseconds")
        md.add_parameter(name="count", description="how many TimeFrames to add", type="integer", default=3)
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        media = [
            d
            for d in mmif.documents
            if d.at_type in (DocumentTypes.VideoDocument, DocumentTypes.AudioDocument)
        ]
        if not media:
            raise ValueError("no VideoDocument or AudioDocument in the input")
        doc = media[0]
        view = mmif.new_view()
        self.sign_view(view, parameters)
        view.new_contain(AnnotationTypes.TimeFrame, timeUnit="milliseconds", document=doc.id)
        for n in range(int(parameters["count"])):
            view.new_annotation(
                AnnotationTypes.TimeFrame, start=n * 1000, end=n * 1000 + 500, label=f"segment-{n}"
            )
        return mmif


def get_app() -> ClamsApp:
    return TimeFrames()


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
