"""The kopf handlers of every kind; importing this module registers them all.

kinds/pipeline/handler.py      one daemon per Pipeline: Service-mode app Deployments/Services, status
kinds/pipelinerun/handler.py   one daemon per PipelineRun: plan_run, then create -> patch status -> delete
kinds/pipelinerun/wip_handler.py   a timer per finished run asking for its work in progress deleted or archived
kinds/analysisjob/handler.py   one daemon per AnalysisJob (plan_analysis), its Jobs' index, triggered analyses
kinds/monitor/handler.py       one daemon per Monitor: scheduled test runs, their HealthReports, health
notifications/handler.py       one daemon per run with pending notifications: webhook and email deliveries
admission/handler.py           the admission webhooks recording who created a run or an analysis, and
                               who decided a run's review and when (only a user who may `review` runs)
admission/validation.py        the validating webhook: an app url may not name another namespace's app
core/runtime/startup.py        settings and the Kubernetes client (on.startup / on.cleanup)
core/runtime/jobs.py           index of the runs' Jobs + Job events waking the run loops (read-only)
"""

# Imported for their side effect: each module registers its handlers with kopf.
from mmif_operator.admission import handler as admission  # noqa: F401
from mmif_operator.admission import validation  # noqa: F401
from mmif_operator.core.runtime import jobs, startup  # noqa: F401
from mmif_operator.kinds.analysisjob import handler as analyses  # noqa: F401
from mmif_operator.kinds.monitor import handler as monitors  # noqa: F401
from mmif_operator.kinds.pipeline import handler as pipelines  # noqa: F401
from mmif_operator.kinds.pipelinerun import handler as runs  # noqa: F401
from mmif_operator.kinds.pipelinerun import wip_handler  # noqa: F401
from mmif_operator.kinds.project import handler as projects  # noqa: F401
from mmif_operator.notifications import handler as notifications  # noqa: F401
