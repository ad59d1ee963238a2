"""The one exception type for bad user input (the CLI prints it as one line and exits with code 2), and the two
rules every such message follows: a library's error shows its first line only, and a misspelt name gets a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PipelineError(Exception):
    """A recipe, data set or checkpoint the pipeline cannot use; the message names the field and a fix."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class TrainingStopped(PipelineError):
    """Training stopped on purpose (e.g. a non-finite loss) after saving what could be saved; exit code 3."""

    exit_code = 3


class TrainingInterrupted(PipelineError):
    """Training stopped by a signal (SIGINT, SIGTERM) after saving a checkpoint; exit code 128 + the signal."""

    def __init__(self, message: str, signal_number: int, quiet: bool = False):
        super().__init__(message)
        self.exit_code = 128 + signal_number
        self.quiet = quiet  # every process stops alike: one of them says so


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries write pages), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unusable(what: str, error: BaseException, field: str | None = None) -> PipelineError:
    """`what (first line of the error)` as a PipelineError: for the many exception types a library raises on input it
    cannot use (a corrupt file, a refused setting), which all mean the same to the user."""
    return PipelineError(f"{what} ({first_line(error)})", field=field)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'? ` for the closest of `choices`, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""
