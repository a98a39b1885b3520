"""Names (and defaults) of the environment variables that configure `mmif-runner`.

The operator's Job builder imports these, so the names live in one place.
"""

from __future__ import annotations

# -- every subcommand ---------------------------------------------------------------------------
#: absolute run folder, e.g. /data/mmif-runs/run-1 (see paths.run_dir)
RUN_DIR = "MMIF_RUN_DIR"
#: where the one-line JSON summary goes (the pod's terminationMessagePath)
TERMINATION_LOG = "MMIF_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"

# -- prepare and step ---------------------------------------------------------------------------
#: the workspace mount path, e.g. /data; item locations are relative to it
WORKSPACE = "MMIF_WORKSPACE"
#: the run's UID, written to <run dir>/.run-uid by prepare; step and manifest check it when set;
#: for analyze and analysis-manifest, the source run's UID (its folder must hold it)
RUN_UID = "MMIF_RUN_UID"

# -- prepare ------------------------------------------------------------------------------------
#: the file (a mounted ConfigMap key, runner/inputs.py) holding {"owner": run uid, "items": spec.items};
#: exactly one of ITEMS_FILE / ITEMS_FROM. Items never travel in the environment.
ITEMS_FILE = "MMIF_ITEMS_FILE"
#: path, relative to the workspace, of a JSON Lines file with one item a line (spec.itemsFrom.path)
ITEMS_FROM = "MMIF_ITEMS_FROM"

#: set when the run's project has a record store and items may name records: where the prepare
#: pod mounts it read-only (records/store.py); an item naming a record without it fails
RECORDS_DIR = "MMIF_RECORDS_DIR"

# -- step ---------------------------------------------------------------------------------------
ITEM_INDEX = "MMIF_ITEM_INDEX"
STEP_INDEX = "MMIF_STEP_INDEX"
#: comma-separated step names, in order (also used by manifest)
STEPS = "MMIF_STEPS"
#: base URL of the CLAMS app, e.g. http://127.0.0.1:5000
APP_URL = "MMIF_APP_URL"
#: JSON object string -> string, sent as the query string of the POST
APP_PARAMS = "MMIF_APP_PARAMS"
#: seconds without an answer before a request counts as timed out
HTTP_TIMEOUT = "MMIF_HTTP_TIMEOUT"
DEFAULT_HTTP_TIMEOUT = 3600.0
#: seconds to wait for the app to accept TCP connections
APP_WAIT = "MMIF_APP_WAIT"
DEFAULT_APP_WAIT = 300.0
#: set when the app is this pod's own sidecar (Job mode): seconds it may take to listen after the
#: runner starts (the app's startupTimeoutSeconds); past them the step fails for good
#: (AppNotListening, exit 7) instead of being retried, and APP_WAIT does not apply
APP_STARTUP_TIMEOUT = "MMIF_APP_STARTUP_TIMEOUT"
#: set instead of APP_URL, APP_PARAMS and HTTP_TIMEOUT when the pod runs steps STEP_INDEX..
#: STEP_INDEX+len-1 in turn (they share the item's pod: kinds/pipelinerun/shared_pods.py): a JSON
#: list of {"url", "params", "timeout"?}, one for each of those steps
STEP_CALLS = "MMIF_STEP_CALLS"
#: set when the step has alternatives: the app chosen to serve this item, a JSON object
#: {"name", "image"?, "url"?}; written as `servedBy` into the step's result record and the manifest
SERVED_BY = "MMIF_SERVED_BY"

# -- manifest -----------------------------------------------------------------------------------
#: the file (a mounted ConfigMap key, runner/inputs.py) holding {"owner": uid, "itemStates":
#: status.itemStates (mmif_operator.core.itemstates.encode)}
ITEM_STATES_FILE = "MMIF_ITEM_STATES_FILE"
RUN_NAME = "MMIF_RUN_NAME"
RUN_PHASE = "MMIF_RUN_PHASE"

# -- publish ------------------------------------------------------------------------------------
#: the review decision the publish Job records (spec.review, as status.review copied it)
REVIEW_DECISION = "MMIF_REVIEW_DECISION"
REVIEW_COMMENT = "MMIF_REVIEW_COMMENT"
REVIEWER = "MMIF_REVIEWER"
REVIEW_DECIDED_AT = "MMIF_REVIEW_DECIDED_AT"
RECORDS = "MMIF_RECORDS"  # publish: the record store and the lineage's run-wide part (records/publisher.py)
RUN_NAMESPACE = "MMIF_RUN_NAMESPACE"
MANIFEST_PATH = "MMIF_MANIFEST_PATH"

# -- analyze and analysis-manifest ------------------------------------------------------------
#: absolute folder of the AnalysisJob (analysis_dir), the only one its pods may write
ANALYSIS_DIR = "MMIF_ANALYSIS_DIR"
#: the AnalysisJob's UID: <analysis dir>/.analysis-uid claims the folder (exit 5 on a mismatch)
ANALYSIS_UID = "MMIF_ANALYSIS_UID"
ANALYSIS_NAME = "MMIF_ANALYSIS_NAME"

# -- dispose (a finished run's work in progress, kinds/pipelinerun/wip.py) ---------------------
#: `Delete` or `Archive` (spec.workInProgress)
WIP_ACTION = "MMIF_WIP_ACTION"
#: absolute folder the run's folder is archived to (also removed by `Delete`)
ARCHIVE_DIR = "MMIF_ARCHIVE_DIR"

PREPARE = (WORKSPACE, RUN_DIR, RUN_UID, ITEMS_FILE, ITEMS_FROM, RECORDS_DIR, TERMINATION_LOG)
STEP = (
    WORKSPACE,
    RUN_DIR,
    RUN_UID,
    ITEM_INDEX,
    STEP_INDEX,
    STEPS,
    APP_URL,
    APP_PARAMS,
    HTTP_TIMEOUT,
    STEP_CALLS,
    APP_WAIT,
    APP_STARTUP_TIMEOUT,
    TERMINATION_LOG,
)
MANIFEST = (RUN_DIR, RUN_UID, STEPS, ITEM_STATES_FILE, RUN_NAME, RUN_PHASE, TERMINATION_LOG)
PUBLISH = (
    RUN_DIR,
    RUN_UID,
    RUN_NAME,
    RUN_NAMESPACE,
    MANIFEST_PATH,
    REVIEW_DECISION,
    REVIEW_COMMENT,
    REVIEWER,
    REVIEW_DECIDED_AT,
    RECORDS,
    TERMINATION_LOG,
)
ANALYZE = (
    RUN_DIR,
    RUN_UID,
    ANALYSIS_DIR,
    ANALYSIS_UID,
    ITEM_INDEX,
    APP_URL,
    APP_PARAMS,
    HTTP_TIMEOUT,
    APP_WAIT,
    APP_STARTUP_TIMEOUT,
    TERMINATION_LOG,
)
ANALYSIS_MANIFEST = (
    RUN_DIR,
    RUN_UID,
    ANALYSIS_DIR,
    ANALYSIS_UID,
    ANALYSIS_NAME,
    ITEM_STATES_FILE,
    RUN_PHASE,
    TERMINATION_LOG,
)
DISPOSE = (WORKSPACE, RUN_DIR, RUN_UID, WIP_ACTION, ARCHIVE_DIR, TERMINATION_LOG)
