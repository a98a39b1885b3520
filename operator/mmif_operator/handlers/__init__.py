"""The kopf handlers; importing this package registers them all.

startup.py    settings and the Kubernetes client (on.startup / on.cleanup)
jobs.py       index of the runs' Jobs + Job events waking the run loops (read-only)
runs.py       one daemon per PipelineRun: plan_run, then create -> patch status -> delete
loop.py       the daemons' shared skeleton: wait, one pass, retry with backoff
wakeups.py    wake-ups of the loops; expectations.py, deletions.py: a run loop's memory of
              the Jobs it just created and is deleting (optimisations, not state)
pipelines.py  one daemon per Pipeline: Service-mode app Deployments/Services and status
analyses.py   one daemon per AnalysisJob (plan_analysis), its Jobs' index, triggered analyses
admission.py  the admission webhooks recording who created a run or an analysis, and who
              decided a run's review and when (only a user who may `review` pipelineruns)
validation.py the validating webhook: an app url may not name another namespace's app Service
notifications.py one daemon per run with pending notifications: webhook and email deliveries
"""

from . import admission, analyses, jobs, notifications, pipelines, runs, startup, validation  # noqa: F401
