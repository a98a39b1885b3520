"""PipelineRun: one batch through a Pipeline; its state machine (phases.py) drives it."""
