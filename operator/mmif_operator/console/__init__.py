"""The web console (`mmif-console`): runs with live progress bars, a run's item table and its review
buttons, Pipelines with their steps' readiness.

Every Kubernetes call made for a person is made with that person's own bearer token (identity.py,
kube.py): the console shows and does only what their kubectl could. The one exception is the live
feed: the server keeps one watch of PipelineRuns with its own ServiceAccount (hub.py) and fans its
events out over server-sent events (sse.py, routes.py), to a person only for a namespace whose runs
that person's token may list (auth.py), checked when the stream opens and again periodically.

Modules: config (environment), bars (status -> what the pages draw; pure), sse (event framing;
pure), auth (access decisions; pure), identity (the token of a request), kube (per-token clients),
hub (the shared watch and fan-out), routes (the HTTP API and pages), viewer (the MMIF viewer's
place, not yet built), server (the aiohttp app and `main`).
"""
