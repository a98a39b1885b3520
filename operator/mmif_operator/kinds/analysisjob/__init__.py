"""AnalysisJob: processed data from a run's outputs, on behalf of the run's requester."""
