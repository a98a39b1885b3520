"""Pure reconcile logic: from a run's spec, status and observed Jobs to a plan (no API calls)."""
