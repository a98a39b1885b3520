"""The kopf handlers of every kind; importing this module registers them all.

kinds/pipeline/handler.py      one daemon per Pipeline: Service-mode app Deployments/Services, status
kinds/pipelinerun/handler.py   one daemon per PipelineRun: plan_run, then create -> patch status -> delete
kinds/analysisjob/handler.py   one daemon per AnalysisJob (plan_analysis), its Jobs' index, triggered analyses
notifications/handler.py       one daemon per run with pending notifications: webhook and email deliveries
admission/handler.py           the admission webhooks recording who created a run or an analysis, and
                               who decided a run's review and when (only a user who may `review` runs)
admission/validation.py        the validating webhook: an app url may not name another namespace's app
core/runtime/startup.py        settings and the Kubernetes client (on.startup / on.cleanup)
core/runtime/jobs.py           index of the runs' Jobs + Job events waking the run loops (read-only)
"""

from mmif_operator.admission import handler as admission  # noqa: F401
