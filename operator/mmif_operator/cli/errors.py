"""The plugin's exit codes and its one error type."""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0  # the run succeeded / the condition waited for holds / the command did what it said
    RUN_FAILED = 1  # the run ended Failed or Cancelled (or can no longer reach what was waited for)
    USAGE = 2  # bad arguments (argparse's own code)
    TIMEOUT = 3  # --timeout passed before the run got there
    ERROR = 4  # the API server refused or could not be reached; nothing found; the reader pod failed
    AWAITING_REVIEW = 5  # run --watch / watch: the run waits for a person's review


class CliError(Exception):
    """A failure to report in one line (and exit with `code`)."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.code = code
