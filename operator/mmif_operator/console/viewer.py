"""THE MMIF VIEWER'S PLACE (not built yet): an item's MMIF, its views (app, version, parameters),
annotation counts per type and a timeline of TimeFrames over the media's duration.

It is to read a run's outputs through `mmif_operator.results` (the run's manifest and each item's
MMIF on the workspace volume), which the `kubectl mmif` plugin's work adds; the run page's item
table links each row here (`/api/namespaces/{ns}/runs/{run}/items/{index}/mmif`) and has a
`<section id="mmif-viewer">` to render it in. Until then the route answers 501 and says so.

Whatever reads the outputs must keep the console's rule: it acts with the person's token (e.g. a
pod or proxy the person may reach), never with the console's ServiceAccount, which may read
nothing but PipelineRuns.
"""

from __future__ import annotations

from aiohttp import web

NOT_YET = (
    "The MMIF viewer is not part of this console yet: it will show the item's MMIF, its views and a "
    "timeline once run outputs can be read (mmif_operator.results). Today: `kubectl mmif results` "
    "or the item's MMIF under the run's outputPath on the workspace volume."
)


async def item_mmif(request: web.Request) -> web.Response:
    return web.json_response({"error": NOT_YET}, status=501)
